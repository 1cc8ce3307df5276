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
		return Reply{"total": len(list), "controllers": renderList(list, renderController)}, nil
	})}}
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
func (s *Server) poolOperations(engine *jobs.Service, inventory *hosts.Inventory) []Operation {
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
		return Reply{"total": len(out), "controllers": out, "pool_id": s.controllerID}, nil
	})}}
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
