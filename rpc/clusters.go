package rpc

import (
	"context"
	"maps"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
)

// JobCounter counts a cluster's jobs by state, for job_statistics.
type JobCounter interface {
	CountByState(ctx context.Context, clusterIDs ...int64) (map[int64]map[string]int, error)
}

// clusters serves /v2/clusters: reading the inventory, filtered by access.
type clusters struct {
	*guard
	jobs JobCounter // nil until a job engine is wired
	// ping is the controller's own ping, answered here too.
	ping Endpoint
}

// operations is the /v2/clusters table with what each needs.
func (h *clusters) operations() []Operation {
	return []Operation{
		{Name: "getAllClusterInfo", Serve: withPolicy(h.guard, h.getAllClusterInfo)}, // r per cluster; others are left out
		{Name: "getClusterInfo", Serve: onCluster(h.guard, rbac.Read, h.getClusterInfo)},
		{Name: "ping", Auth: AuthOptional, Serve: h.ping},
	}
}

func (h *clusters) getAllClusterInfo(ctx context.Context, req *Request, p *rbac.Policy, in *struct {
	WithHosts bool `json:"with_hosts"`
}) (Reply, error) {
	all, err := h.inventory.List(ctx)
	if err != nil {
		return nil, err
	}
	visible, privs := readable(req, p, all)
	counts, err := h.jobCounts(ctx, visible...)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for i, c := range visible {
		out = append(out, h.render(p, c, privs[i], counts[c.ID], in.WithHosts))
	}
	reply := Reply{"total": len(out)}
	if len(out) > 0 {
		reply["clusters"] = out
	}
	return reply, nil
}

// clusterInfoRequest is getClusterInfo's input.
type clusterInfoRequest struct {
	clusterRef
	WithHosts *bool `json:"with_hosts"`
}

func (h *clusters) getClusterInfo(ctx context.Context, req *Request, p *rbac.Policy, c *hosts.Cluster, in *clusterInfoRequest) (Reply, error) {
	counts, err := h.jobCounts(ctx, c)
	if err != nil {
		return nil, err
	}
	priv := p.Privileges(req.Caller, rbac.ClusterPath(c.Name))
	return Reply{"cluster": h.render(p, c, priv, counts[c.ID], in.WithHosts == nil || *in.WithHosts)}, nil
}

// jobCounts counts the jobs of cs by status, in one query.
func (h *clusters) jobCounts(ctx context.Context, cs ...*hosts.Cluster) (map[int64]map[string]int, error) {
	if h.jobs == nil {
		return nil, nil
	}
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return h.jobs.CountByState(ctx, ids...)
}

// render is the CmonClusterInfo wire shape.
func (h *clusters) render(p *rbac.Policy, c *hosts.Cluster, priv rbac.Privileges, counts map[string]int, withHosts bool) map[string]any {
	byState := map[string]int{"DEFINED": 0, "DEQUEUED": 0, "RUNNING": 0, "FINISHED": 0, "FAILED": 0, "ABORTED": 0}
	maps.Copy(byState, counts)
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	out := map[string]any{
		"class_name":              "CmonClusterInfo",
		"cdt_path":                "/",
		"cluster_id":              c.ID,
		"cluster_name":            c.Name,
		"cluster_type":            c.Type,
		"state":                   c.State,
		"status_text":             c.StatusText,
		"vendor":                  c.Vendor,
		"version":                 c.Version,
		"tags":                    tags,
		"effective_privileges":    priv.String(),
		"maintenance_mode_active": false,
		"managed":                 true,
		"job_statistics": map[string]any{
			"class_name": "CmonJobStatistics", "cluster_id": c.ID, "by_state": byState,
		},
	}
	if o, ok := p.Object(rbac.ClusterPath(c.Name)); ok {
		maps.Copy(out, ownerFields(p, o))
		out["acl"] = p.ACL(o)
	}
	if withHosts {
		out["hosts"] = renderList(c.Hosts, func(host hosts.Host) map[string]any { return renderHost(c, host) })
	}
	return out
}

// renderHost is the CmonHost wire shape; lastseen is Unix seconds, as the
// original controller sends it.
func renderHost(c *hosts.Cluster, h hosts.Host) map[string]any {
	tags := h.Tags
	if tags == nil {
		tags = []string{}
	}
	var lastSeen int64
	if !h.LastSeen.IsZero() {
		lastSeen = h.LastSeen.Unix()
	}
	return map[string]any{
		"class_name": "CmonHost",
		"cdt_path":   "/" + c.Name,
		"hostId":     h.ID,
		"clusterid":  c.ID,
		"hostname":   h.Hostname,
		"ip":         h.IP,
		"port":       h.Port,
		"role":       h.Role,
		"nodetype":   h.NodeType,
		"tags":       tags,
		"hoststatus": h.Status,
		"connected":  h.Status == hosts.HostOnline,
		"lastseen":   lastSeen,
		"message":    h.Message,
		"distribution": map[string]any{
			"name": h.OS, "kernel": h.Kernel,
		},
		"cpu_count": h.CPUs,
		"memory_mb": h.MemoryMB,
	}
}
