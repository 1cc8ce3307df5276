package rpc

import "context"

// controllerOperations is the /v2/controller table.
func (s *Server) controllerOperations() []Operation {
	return []Operation{
		{Name: "ping", ReadOnly: true, Auth: AuthOptional, Serve: anyone(s.ping)},
	}
}

// ping tells a client that it reached a cmon controller and which one.
func (s *Server) ping(_ context.Context, req *Request, _ *none) (Reply, error) {
	return Reply{
		"authenticated":   req.Caller != nil,
		"package_name":    "cmon",
		"package_version": s.version,
		"rpc_version":     "2.0",
	}, nil
}
