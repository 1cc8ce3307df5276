package rpc

import (
	"context"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
)

// SystemInfo is what getSystemInfo and getStatus tell of this controller.
type SystemInfo struct {
	Started time.Time
	// Hostname is the machine's name.
	Hostname      string
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

// pingReply tells a client that it reached a cmon controller and which one.
type pingReply struct {
	Envelope
	Authenticated  bool   `json:"authenticated"`
	PackageName    string `json:"package_name"`
	PackageVersion string `json:"package_version"`
	RPCVersion     string `json:"rpc_version"`
	// PoolID, on /v2/info, is the pool the controller belongs to: the
	// controllers sharing one database, which share the controller_id too.
	PoolID string `json:"pool_id,omitempty"`
}

func (s *Server) infoPing(_ context.Context, req *Request, _ *none) (Reply, error) {
	r := s.pingReply(req)
	r.PoolID = s.controllerID
	return r, nil
}

func (s *Server) ping(_ context.Context, req *Request, _ *none) (Reply, error) {
	return s.pingReply(req), nil
}

func (s *Server) pingReply(req *Request) *pingReply {
	return &pingReply{Authenticated: req.Caller != nil, PackageName: "cmon", PackageVersion: s.version, RPCVersion: "2.0"}
}

// systemInfoReply is getSystemInfo's: what runs, where, since when.
type systemInfoReply struct {
	Envelope
	Version       string            `json:"version"`
	Build         map[string]string `json:"build"`
	NodeID        string            `json:"node_id"`
	Started       string            `json:"started"`
	UptimeSeconds int64             `json:"uptime_seconds"`
	Backend       string            `json:"backend"`
	SchemaVersion int               `json:"schema_version"`
	JobWorkers    int               `json:"job_workers"`
	BindAddresses []string          `json:"bind_addresses"`
	RPCPort       int               `json:"rpc_port"`
	TLSMinVersion string            `json:"tls_min_version"`
}

func (s *Server) getSystemInfo(ctx context.Context, _ *Request, _ *none) (Reply, error) {
	schema, err := s.system.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	build := map[string]string{"go_version": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, setting := range bi.Settings {
			switch setting.Key {
			case "vcs.revision", "vcs.time", "vcs.modified":
				build[strings.TrimPrefix(setting.Key, "vcs.")] = setting.Value
			}
		}
	}
	return &systemInfoReply{Version: s.version, Build: build, NodeID: s.node, Started: jobs.FormatTime(s.system.Started),
		UptimeSeconds: int64(time.Since(s.system.Started).Seconds()), Backend: s.system.Backend, SchemaVersion: schema,
		JobWorkers: s.system.Workers, BindAddresses: s.system.BindAddresses, RPCPort: s.system.Port, TLSMinVersion: "1.2"}, nil
}

// statusCheckTimeout bounds each part of getStatus.
const statusCheckTimeout = 5 * time.Second

// statusReply is getStatus's: ok or degraded, and each check.
type statusReply struct {
	Envelope
	Status string        `json:"status"`
	Checks []healthCheck `json:"checks"`
}

type healthCheck struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Error is told to superusers only.
	Error string `json:"error,omitempty"`
}

// getStatus runs the health checks; what failed is told to superusers only.
func (s *Server) getStatus(ctx context.Context, req *Request, _ *none) (Reply, error) {
	reply := &statusReply{Status: "ok", Checks: make([]healthCheck, 0, len(s.system.Checks))}
	for _, c := range s.system.Checks {
		cctx, cancel := context.WithTimeout(ctx, statusCheckTimeout)
		err := c.Check(cctx)
		cancel()
		check := healthCheck{Name: c.Name, OK: err == nil}
		if err != nil {
			reply.Status = "degraded"
			if req.Caller.IsSuperuser() {
				check.Error = err.Error()
			}
		}
		reply.Checks = append(reply.Checks, check)
	}
	return reply, nil
}

// ControllerLister lists the controllers sharing the database
// (*jobs.Service).
type ControllerLister interface {
	Controllers(ctx context.Context) ([]jobs.Controller, error)
}

// hostOperations is the /v2/host table.
func (s *Server) hostOperations(engine ControllerLister) []Operation {
	return []Operation{{Name: "getControllers", ReadOnly: true, Serve: anyone(func(ctx context.Context, _ *Request, _ *none) (Reply, error) {
		list, err := engine.Controllers(ctx)
		if err != nil {
			return nil, err
		}
		return &controllersReply{Total: len(list), Controllers: renderList(list, renderController)}, nil
	})}}
}

// controllersReply is getControllers': every controller sharing the database.
type controllersReply struct {
	Envelope
	Total       int              `json:"total"`
	Controllers []wireController `json:"controllers"`
}

// wireController is a CmonController: cmon's fields, and those s9s
// controller --list reads (hostname, ip, port, version, role, status).
type wireController struct {
	ClassName       string   `json:"class_name"`
	ControllerID    string   `json:"controller_id"`
	Hostname        string   `json:"hostname"`
	IP              string   `json:"ip"`
	BindAddresses   []string `json:"bind_addresses"`
	Port            int      `json:"port"`
	Version         string   `json:"version"`
	Role            string   `json:"role"`
	Status          string   `json:"hoststatus"`
	Started         string   `json:"started"`
	LastHeartbeat   string   `json:"last_heartbeat"`
	IsMonitorLeader bool     `json:"is_monitor_leader"`
	IsSelf          bool     `json:"is_self"`
}

func renderController(c jobs.Controller) wireController {
	addrs := c.BindAddresses()
	w := wireController{ClassName: "CmonController", ControllerID: c.ID, Hostname: c.Hostname, BindAddresses: addrs,
		Port: c.Port, Version: c.Version, Role: "controller", Status: hosts.HostOnline, Started: jobs.FormatTime(c.Started),
		LastHeartbeat: jobs.FormatTime(c.Heartbeat), IsMonitorLeader: c.Leader, IsSelf: c.Self}
	if len(addrs) > 0 {
		w.IP = addrs[0] // where clients reach it
	}
	if w.Hostname == "" {
		w.Hostname = w.IP
	}
	return w
}

// poolOperations is the /v2/poolcontrollers table, which the reference web
// UI's backend reads to route requests among a pool's controllers.
func (s *Server) poolOperations(engine ControllerLister, inventory Inventory) []Operation {
	return []Operation{{Name: "listcontrollers", ReadOnly: true, Serve: anyone(func(ctx context.Context, _ *Request, _ *none) (Reply, error) {
		list, err := engine.Controllers(ctx)
		if err != nil {
			return nil, err
		}
		all, err := inventory.List(ctx)
		if err != nil {
			return nil, err
		}
		// Every controller of the pool serves every cluster: they share one
		// database.
		ids := make([]string, len(all))
		for i, c := range all {
			ids[i] = strconv.FormatInt(c.ID, 10)
		}
		out := make([]wirePoolController, len(list))
		for i, c := range list {
			out[i] = renderPoolController(i+1, c, ids)
		}
		return &poolReply{Total: len(out), Controllers: out, PoolID: s.controllerID}, nil
	})}}
}

// poolReply is listcontrollers', as cmon-proxy's api.GetControllersResponse.
type poolReply struct {
	Envelope
	Total       int                  `json:"total"`
	Controllers []wirePoolController `json:"controllers"`
	PoolID      string               `json:"pool_id"`
}

// wirePoolController is a pool controller as cmon-proxy's api.PoolController
// reads it. Its controller_id is a number there: the controller's place in
// the list by id; its own id is the properties' dynamic_id.
type wirePoolController struct {
	ControllerID int            `json:"controller_id"`
	Hostname     string         `json:"hostname"`
	Port         int            `json:"port"`
	Properties   wirePoolMember `json:"properties"`
	ReportTS     string         `json:"report_ts"`
	Status       string         `json:"status"`
	Clusters     []string       `json:"clusters"`
}

type wirePoolMember struct {
	// Role is main_controller for the controller that runs the health
	// monitor, member for the others.
	Role      string `json:"role"`
	DynamicID string `json:"dynamic_id"`
}

func renderPoolController(n int, c jobs.Controller, clusters []string) wirePoolController {
	role := "member"
	if c.Leader {
		role = "main_controller"
	}
	host := "" // the pool's router connects to it: an address it listens on
	if addrs := c.BindAddresses(); len(addrs) > 0 {
		host = addrs[0]
	}
	return wirePoolController{ControllerID: n, Hostname: host, Port: c.Port, Properties: wirePoolMember{Role: role, DynamicID: c.ID},
		ReportTS: jobs.FormatTime(c.Heartbeat), Status: "active", Clusters: clusters}
}
