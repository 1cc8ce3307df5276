package rpc

import (
	"context"
	"errors"
	"maps"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
)

// JobCounter counts a cluster's jobs by state, for job_statistics.
type JobCounter interface {
	CountByState(ctx context.Context, clusterID int64) (map[string]int, error)
}

// clusters serves /v2/clusters: reading the inventory, filtered by access.
type clusters struct {
	*guard
	jobs JobCounter // nil until a job engine is wired
	// ping is the controller's own ping, answered here too.
	ping Handler
}

// operations is the /v2/clusters table with what each needs.
func (h *clusters) operations() []Operation {
	return []Operation{
		{Name: "getAllClusterInfo", Access: anyone, Handler: h.getAllClusterInfo}, // r per cluster; others are left out
		{Name: "getClusterInfo", Access: h.onCluster(rbac.Read), Handler: h.getClusterInfo},
		{Name: "ping", Auth: AuthOptional, Access: anyone, Handler: h.ping},
	}
}

func (h *clusters) getAllClusterInfo(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		WithHosts bool `json:"with_hosts"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	all, err := h.inventory.List(ctx)
	if err != nil {
		return nil, err
	}
	visible, privs, err := h.readable(ctx, req, all)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for i, c := range visible {
		rendered, err := h.render(ctx, req, c, privs[i], in.WithHosts)
		if err != nil {
			return nil, err
		}
		out = append(out, rendered)
	}
	reply := Reply{"total": len(out)}
	if len(out) > 0 {
		reply["clusters"] = out
	}
	return reply, nil
}

// clusterRef selects a cluster by id or name.
type clusterRef struct {
	ID   int64  `json:"cluster_id"`
	Name string `json:"cluster_name"`
}

// findCluster loads the referenced cluster; unknown clusters are ObjectNotFound.
func findCluster(ctx context.Context, inv *hosts.Inventory, ref clusterRef) (*hosts.Cluster, error) {
	var c *hosts.Cluster
	var err error
	switch {
	case ref.ID > 0:
		c, err = inv.Get(ctx, ref.ID)
	case ref.Name != "":
		c, err = inv.GetByName(ctx, ref.Name)
	default:
		return nil, InvalidRequest("Field 'cluster_id' or 'cluster_name' is required.")
	}
	if errors.Is(err, hosts.ErrClusterNotFound) {
		return nil, NotFound("Cluster was not found.")
	}
	return c, err
}

func (h *clusters) getClusterInfo(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		WithHosts *bool `json:"with_hosts"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	c := req.cluster
	priv := req.policy.Privileges(req.Caller, rbac.ClusterPath(c.Name))
	rendered, err := h.render(ctx, req, c, priv, in.WithHosts == nil || *in.WithHosts)
	if err != nil {
		return nil, err
	}
	return Reply{"cluster": rendered}, nil
}

// render is the CmonClusterInfo wire shape.
func (h *clusters) render(ctx context.Context, req *Request, c *hosts.Cluster, priv rbac.Privileges, withHosts bool) (map[string]any, error) {
	byState := map[string]int{"DEFINED": 0, "DEQUEUED": 0, "RUNNING": 0, "FINISHED": 0, "FAILED": 0, "ABORTED": 0}
	if h.jobs != nil {
		counts, err := h.jobs.CountByState(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		for state, n := range counts {
			byState[state] = n
		}
	}
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
	if o, ok := req.policy.Object(rbac.ClusterPath(c.Name)); ok {
		maps.Copy(out, ownerFields(req.policy, o))
		out["acl"] = req.policy.ACL(o)
	}
	if withHosts {
		hostList := make([]map[string]any, 0, len(c.Hosts))
		for _, host := range c.Hosts {
			hostList = append(hostList, renderHost(c, host))
		}
		out["hosts"] = hostList
	}
	return out, nil
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
