package rpc

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/jobs"
)

// SystemInfo is what getSystemInfo and getStatus tell of this controller.
type SystemInfo struct {
	Started       time.Time
	Backend       string // the database, without secrets
	Workers       int
	BindAddresses []string
	Port          int
	SchemaVersion func(context.Context) (int, error)
	// Checks are getStatus's: the database, the job queue, the monitor.
	Checks []HealthCheck
}

// HealthCheck is one part of getStatus: nil from Check is healthy.
type HealthCheck struct {
	Name  string
	Check func(context.Context) error
}

// controllerOperations is the /v2/controller table.
func (s *Server) controllerOperations() []Operation {
	ops := []Operation{
		{Name: "ping", ReadOnly: true, Auth: AuthOptional, Serve: anyone(s.ping)},
		// The reference's generated client's liveness call: answered as ping.
		{Name: "heartBeat", ReadOnly: true, Auth: AuthOptional, Serve: anyone(s.ping)},
	}
	if s.system != nil {
		ops = append(ops,
			Operation{Name: "getSystemInfo", ReadOnly: true, Serve: superuser(s.getSystemInfo)},
			Operation{Name: "getStatus", ReadOnly: true, Serve: anyone(s.getStatus)})
	}
	return ops
}

// infoOperations is the /v2/info table: the reference web UI's backend pings
// there, without logging in, at start-up and to test a controller.
func (s *Server) infoOperations() []Operation {
	return []Operation{{Name: "ping", ReadOnly: true, Auth: AuthOptional, Serve: anyone(s.infoPing)}}
}

// infoPing is ping with the pool the controller belongs to: the controllers
// sharing one database, which share the controller_id too.
func (s *Server) infoPing(ctx context.Context, req *Request, in *none) (Reply, error) {
	r, err := s.ping(ctx, req, in)
	if err != nil {
		return nil, err
	}
	r["pool_id"] = s.controllerID
	return r, nil
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

func (s *Server) getSystemInfo(ctx context.Context, _ *Request, _ *none) (Reply, error) {
	schema, err := s.system.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	build := map[string]any{"go_version": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, setting := range bi.Settings {
			switch setting.Key {
			case "vcs.revision", "vcs.time", "vcs.modified":
				build[strings.TrimPrefix(setting.Key, "vcs.")] = setting.Value
			}
		}
	}
	return Reply{
		"version":         s.version,
		"build":           build,
		"controller_id":   s.controllerID,
		"node_id":         s.node,
		"started":         jobs.FormatTime(s.system.Started),
		"uptime_seconds":  int64(time.Since(s.system.Started).Seconds()),
		"backend":         s.system.Backend,
		"schema_version":  schema,
		"job_workers":     s.system.Workers,
		"bind_addresses":  s.system.BindAddresses,
		"rpc_port":        s.system.Port,
		"tls_min_version": "1.2",
	}, nil
}

// statusCheckTimeout bounds each part of getStatus.
const statusCheckTimeout = 5 * time.Second

// getStatus runs the health checks; what failed is told to superusers only.
func (s *Server) getStatus(ctx context.Context, req *Request, _ *none) (Reply, error) {
	healthy := true
	checks := make([]map[string]any, 0, len(s.system.Checks))
	for _, c := range s.system.Checks {
		cctx, cancel := context.WithTimeout(ctx, statusCheckTimeout)
		err := c.Check(cctx)
		cancel()
		entry := map[string]any{"name": c.Name, "ok": err == nil}
		if err != nil {
			healthy = false
			if req.Caller.IsSuperuser() {
				entry["error"] = err.Error()
			}
		}
		checks = append(checks, entry)
	}
	status := "ok"
	if !healthy {
		status = "degraded"
	}
	return Reply{"status": status, "checks": checks}, nil
}

// hostOperations is the /v2/host table.
func (s *Server) hostOperations(engine *jobs.Service) []Operation {
	return []Operation{{Name: "getControllers", ReadOnly: true, Serve: anyone(func(ctx context.Context, _ *Request, _ *none) (Reply, error) {
		list, err := engine.Controllers(ctx)
		if err != nil {
			return nil, err
		}
		return Reply{"total": len(list), "controllers": renderList(list, func(c jobs.Controller) map[string]any {
			var addrs []string
			if c.Addresses != "" {
				addrs = strings.Split(c.Addresses, ",")
			}
			return map[string]any{"class_name": "CmonController", "controller_id": c.ID, "bind_addresses": renderList(addrs, func(a string) string { return a }),
				"port": c.Port, "version": c.Version, "started": jobs.FormatTime(c.Started), "last_heartbeat": jobs.FormatTime(c.Heartbeat),
				"is_monitor_leader": c.Leader, "is_self": c.Self}
		})}, nil
	})}}
}
