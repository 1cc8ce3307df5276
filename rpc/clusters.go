package rpc

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
)

// JobCounter counts a cluster's jobs by state, for job_statistics.
type JobCounter interface {
	CountByState(ctx context.Context, clusterIDs ...int64) (map[int64]map[string]int, error)
}

// AlarmLister lists open alarms, for alarm_statistics (hosts.Alarms).
type AlarmLister interface {
	List(ctx context.Context, f hosts.AlarmFilter) ([]hosts.Alarm, error)
}

// clusters serves /v2/clusters: reading the inventory, filtered by access.
type clusters struct {
	*guard
	jobs   JobCounter  // nil until a job engine is wired
	alarms AlarmLister // nil: no alarm statistics
	// ping is the controller's own ping, answered here too.
	ping   Endpoint
	counts *countCache
	listed atomic.Pointer[renderedClusters]
}

func newClusters(g *guard, ping Endpoint, jobs JobCounter, alarms AlarmLister) *clusters {
	return &clusters{guard: g, ping: ping, jobs: jobs, alarms: alarms, counts: &countCache{jobs: jobs, alarms: alarms}}
}

// operations is the /v2/clusters table with what each needs.
func (h *clusters) operations() []Operation {
	return []Operation{
		{Name: "getAllClusterInfo", ReadOnly: true, Serve: withPolicy(h.guard, h.getAllClusterInfo)}, // r per cluster; others are left out
		{Name: "getClusterInfo", ReadOnly: true, Serve: onCluster(h.guard, rbac.Read, h.getClusterInfo)},
		{Name: "ping", ReadOnly: true, Auth: AuthOptional, Serve: h.ping},
	}
}

// getAllClusterInfo copies, for each cluster the caller may read, the
// cluster's rendering made once for the current inventory, policy and job
// counts, and adds the caller's privileges to it.
func (h *clusters) getAllClusterInfo(ctx context.Context, req *Request, p *rbac.Policy, in *struct {
	WithHosts bool `json:"with_hosts"`
}) (Reply, error) {
	snap, err := h.inventory.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := h.counts.get(ctx, snap)
	if err != nil {
		return nil, err
	}
	r := h.listed.Load()
	if r == nil || r.snap != snap || r.policy != p || r.counts != counts {
		r = &renderedClusters{snap: snap, policy: p, counts: counts}
		h.listed.Store(r)
	}
	fragments := r.fragments(h, in.WithHosts)
	visible, privs := readable(req, p, snap.Clusters)
	reply := Reply{"total": len(visible)}
	if len(visible) == 0 {
		reply["clusters"] = []any{} // present and empty: clients iterate it
		return reply, nil
	}
	// Each cluster's rendering, shared, with the caller's privileges added
	// before its closing brace.
	pieces := make(indented, 0, 2+4*len(visible))
	pieces = append(pieces, []byte("[\n"))
	for i, c := range visible {
		f := fragments[c.ID]
		end := len(f) - len(listedObjectEnd)
		sep := listedObjectEnd + ",\n"
		if i == len(visible)-1 {
			sep = listedObjectEnd + "\n"
		}
		pieces = append(pieces, []byte(listedIndent), f[:end], privilegeFields[privs[i]], []byte(sep))
	}
	pieces = append(pieces, []byte("    ]"))
	reply["clusters"] = pieces
	return reply, nil
}

// A listed cluster is an element of a reply field's list: two levels deep.
const (
	listedIndent    = "        "
	listedObjectEnd = "\n" + listedIndent + "}"
)

// privilegeFields are the effective_privileges field of a listed cluster
// for each set of privileges, encoded once.
var privilegeFields = func() [rbac.All + 1][]byte {
	var out [rbac.All + 1][]byte
	for p := range rbac.All + 1 {
		out[p] = []byte(",\n" + listedIndent + "    \"effective_privileges\": \"" + p.String() + "\"")
	}
	return out
}()

// renderedClusters are the clusters of one inventory snapshot rendered for
// listings under one policy and one set of job counts, without the
// caller's privileges; each variant is encoded once, on first use.
type renderedClusters struct {
	snap     *hosts.Snapshot
	policy   *rbac.Policy
	counts   *jobCounts
	once     [2]sync.Once
	rendered [2]map[int64][]byte // without and with hosts
}

func (r *renderedClusters) fragments(h *clusters, withHosts bool) map[int64][]byte {
	i := 0
	if withHosts {
		i = 1
	}
	r.once[i].Do(func() {
		m := make(map[int64][]byte, len(r.snap.Clusters))
		for _, c := range r.snap.Clusters {
			// A map of strings, numbers and slices of them always encodes.
			m[c.ID], _ = json.MarshalIndent(h.render(r.policy, c, r.counts.of(c.ID), r.counts.alarms[c.ID], withHosts), listedIndent, "    ")
		}
		r.rendered[i] = m
	})
	return r.rendered[i]
}

// countTTL is how old the job counts of a cluster listing may be: a listing
// of every cluster does not count the jobs of every cluster per request.
// getClusterInfo counts its cluster's jobs when asked.
const countTTL = time.Second

// countCache keeps the job counts of every cluster of a snapshot for up to
// countTTL; one count runs at a time.
type countCache struct {
	jobs   JobCounter
	alarms AlarmLister
	mu     sync.Mutex
	cur    *jobCounts
}

// jobCounts are the job counts by state, and the open alarms, of every
// cluster of a snapshot.
type jobCounts struct {
	snap      *hosts.Snapshot
	at        time.Time
	byCluster map[int64]map[string]int
	alarms    map[int64]*wireAlarmStats
}

func (c *jobCounts) of(id int64) map[string]int { return c.byCluster[id] }

func (c *countCache) get(ctx context.Context, snap *hosts.Snapshot) (*jobCounts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && c.cur.snap == snap && ((c.jobs == nil && c.alarms == nil) || time.Since(c.cur.at) < countTTL) {
		return c.cur, nil
	}
	counts := &jobCounts{snap: snap, at: time.Now()}
	ids := make([]int64, len(snap.Clusters))
	for i, cl := range snap.Clusters {
		ids[i] = cl.ID
	}
	if c.jobs != nil {
		var err error
		if counts.byCluster, err = c.jobs.CountByState(ctx, ids...); err != nil {
			return nil, err
		}
	}
	var err error
	if counts.alarms, err = alarmStats(ctx, c.alarms, ids); err != nil {
		return nil, err
	}
	c.cur = counts
	return counts, nil
}

// clusterInfoRequest is getClusterInfo's input.
type clusterInfoRequest struct {
	clusterRef
	WithHosts *bool `json:"with_hosts"`
}

func (h *clusters) getClusterInfo(ctx context.Context, req *Request, p *rbac.Policy, c *hosts.Cluster, in *clusterInfoRequest) (Reply, error) {
	var counts map[string]int
	if h.jobs != nil {
		byCluster, err := h.jobs.CountByState(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		counts = byCluster[c.ID]
	}
	stats, err := alarmStats(ctx, h.alarms, []int64{c.ID})
	if err != nil {
		return nil, err
	}
	info := h.render(p, c, counts, stats[c.ID], in.WithHosts == nil || *in.WithHosts)
	info["effective_privileges"] = p.Privileges(req.Caller, rbac.ClusterPath(c.Name)).String()
	return Reply{"cluster": info}, nil
}

// alarmStats counts the open alarms of clusters ids; none without a lister.
func alarmStats(ctx context.Context, alarms AlarmLister, ids []int64) (map[int64]*wireAlarmStats, error) {
	var list []hosts.Alarm
	if alarms != nil {
		var err error
		if list, err = alarms.List(ctx, hosts.AlarmFilter{ClusterIDs: ids}); err != nil {
			return nil, err
		}
	}
	return countAlarms(ids, list), nil
}

// render is the CmonClusterInfo wire shape but for effective_privileges,
// which is the caller's own.
func (h *clusters) render(p *rbac.Policy, c *hosts.Cluster, counts map[string]int, alarms *wireAlarmStats, withHosts bool) map[string]any {
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
		"maintenance_mode_active": c.InMaintenance("", time.Now()),
		"managed":                 true,
		"job_statistics": map[string]any{
			"class_name": "CmonJobStatistics", "cluster_id": c.ID, "by_state": byState,
		},
		"alarm_statistics": alarms,
		// cmon manages no database accounts or schemas of its own: an empty
		// list is the honest answer, where the reference's UI wants a list.
		"databases":             []any{},
		"cluster_auto_recovery": false,
		"node_auto_recovery":    false,
	}
	if o, ok := p.Object(rbac.ClusterPath(c.Name)); ok {
		maps.Copy(out, ownerFields(p, o))
		// s9s reads the owners as objects.
		out["owner"] = map[string]any{"class_name": "CmonUser", "user_id": o.OwnerUserID, "user_name": p.UserName(o.OwnerUserID)}
		out["group_owner"] = map[string]any{"class_name": "CmonGroup", "group_id": o.OwnerGroupID, "group_name": p.GroupName(o.OwnerGroupID)}
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
	port := h.Port
	if port == 0 && c.Type == hosts.ClusterGeneric {
		port = c.SSHPort // no service of a known kind: the node is reached on its SSH port
	}
	return map[string]any{
		"class_name": "CmonHost",
		"cdt_path":   "/" + c.Name,
		"hostId":     h.ID,
		"clusterid":  c.ID,
		"hostname":   h.Hostname,
		"ip":         h.IP,
		"port":       port,
		"role":       h.Role,
		"nodetype":   h.NodeType,
		"tags":       tags,
		"hoststatus": h.Status,
		// A host in a maintenance period keeps its status; this says why its
		// alarms are held back.
		"maintenance_mode_active": c.InMaintenance(h.Hostname, time.Now()),
		"connected":               h.Status == hosts.HostOnline,
		"lastseen":                lastSeen,
		"message":                 h.Message,
		"distribution": map[string]any{
			"name": h.OS, "kernel": h.Kernel,
		},
		"cpu_count": h.CPUs,
		"memory_mb": h.MemoryMB,
	}
}
