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
	// self, when known, is listed among each cluster's hosts.
	self *controllerHost
}

func newClusters(g *guard, ping Endpoint, jobs JobCounter, alarms AlarmLister, self *controllerHost) *clusters {
	return &clusters{guard: g, ping: ping, jobs: jobs, alarms: alarms, counts: &countCache{jobs: jobs, alarms: alarms}, self: self}
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
func (h *clusters) getAllClusterInfo(ctx context.Context, req *Request, p Policy, in *struct {
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
	return listClusters(visible, privs, fragments), nil
}

// listClusters is the listing of visible clusters from their fragments,
// with the caller's privileges on each.
func listClusters(visible []*hosts.Cluster, privs []rbac.Privileges, fragments map[int64][]byte) Reply {
	if len(visible) == 0 {
		return &clustersReply{clusters: [][]byte{[]byte("[]")}} // present and empty: clients iterate it
	}
	// Each cluster's rendering, shared, with the caller's privileges added
	// before its closing brace.
	pieces := make([][]byte, 0, 2+4*len(visible))
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
	return &clustersReply{Total: len(visible), clusters: pieces}
}

// clustersReply is getAllClusterInfo's. Its clusters are encoded ahead,
// once for every caller, and copied into the reply as they are.
type clustersReply struct {
	Envelope
	Total    int `json:"total"`
	clusters [][]byte
}

func (r *clustersReply) spliced() (string, [][]byte) { return "clusters", r.clusters }

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
	policy   Policy
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
			// Strings, numbers and slices of them always encode.
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

func (h *clusters) getClusterInfo(ctx context.Context, req *Request, p Policy, c *hosts.Cluster, in *clusterInfoRequest) (Reply, error) {
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
	info.EffectivePrivileges = p.Privileges(req.Caller, rbac.ClusterPath(c.Name)).String()
	return &clusterReply{Cluster: info}, nil
}

// clusterReply is getClusterInfo's.
type clusterReply struct {
	Envelope
	Cluster *wireCluster `json:"cluster"`
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

// wireCluster is a CmonClusterInfo as s9s's S9sCluster and cmon-proxy's
// api.Cluster read it.
type wireCluster struct {
	ClassName             string          `json:"class_name"`
	CdtPath               string          `json:"cdt_path"`
	ClusterID             int64           `json:"cluster_id"`
	ClusterName           string          `json:"cluster_name"`
	ClusterType           string          `json:"cluster_type"`
	State                 string          `json:"state"`
	StatusText            string          `json:"status_text"`
	Vendor                string          `json:"vendor"`
	Version               string          `json:"version"`
	Tags                  []string        `json:"tags"`
	MaintenanceModeActive bool            `json:"maintenance_mode_active"`
	Managed               bool            `json:"managed"`
	JobStatistics         wireJobStats    `json:"job_statistics"`
	AlarmStatistics       *wireAlarmStats `json:"alarm_statistics"`
	Databases             []struct{}      `json:"databases"`
	ClusterAutoRecovery   bool            `json:"cluster_auto_recovery"`
	NodeAutoRecovery      bool            `json:"node_auto_recovery"`
	*owners                               // when the cluster's tree object is there
	Owner                 *wireOwnerUser  `json:"owner,omitempty"`
	GroupOwner            *wireOwnerGroup `json:"group_owner,omitempty"`
	ACL                   string          `json:"acl,omitempty"`
	Hosts                 []wireHost      `json:"hosts,omitempty"`
	// EffectivePrivileges are the caller's own; a listing adds them to each
	// cluster encoded for every caller.
	EffectivePrivileges string `json:"effective_privileges,omitempty"`
}

// wireJobStats is a CmonJobStatistics: a cluster's jobs by state.
type wireJobStats struct {
	ClassName string         `json:"class_name"`
	ClusterID int64          `json:"cluster_id"`
	ByState   map[string]int `json:"by_state"`
}

// wireOwnerUser and wireOwnerGroup are the owners as s9s reads them.
type wireOwnerUser struct {
	ClassName string `json:"class_name"`
	UserID    int64  `json:"user_id"`
	UserName  string `json:"user_name"`
}

type wireOwnerGroup struct {
	ClassName string `json:"class_name"`
	GroupID   int64  `json:"group_id"`
	GroupName string `json:"group_name"`
}

// render is cluster c for the wire but for effective_privileges, which are
// the caller's own.
func (h *clusters) render(p Policy, c *hosts.Cluster, counts map[string]int, alarms *wireAlarmStats, withHosts bool) *wireCluster {
	byState := map[string]int{"DEFINED": 0, "DEQUEUED": 0, "RUNNING": 0, "FINISHED": 0, "FAILED": 0, "ABORTED": 0}
	maps.Copy(byState, counts)
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	now := time.Now()
	out := &wireCluster{ClassName: "CmonClusterInfo", CdtPath: "/", ClusterID: c.ID, ClusterName: c.Name, ClusterType: c.Type,
		State: c.State, StatusText: c.StatusText, Vendor: c.Vendor, Version: c.Version, Tags: tags,
		MaintenanceModeActive: c.InMaintenance("", now), Managed: true,
		JobStatistics:   wireJobStats{ClassName: "CmonJobStatistics", ClusterID: c.ID, ByState: byState},
		AlarmStatistics: alarms,
		// cmon manages no database accounts or schemas of its own: an empty
		// list is the honest answer, where the reference's UI wants a list.
		Databases: []struct{}{}}
	if o, ok := p.Object(rbac.ClusterPath(c.Name)); ok {
		own := ownersOf(p, o)
		out.owners = &own
		out.Owner = &wireOwnerUser{ClassName: "CmonUser", UserID: own.OwnerUserID, UserName: own.OwnerUserName}
		out.GroupOwner = &wireOwnerGroup{ClassName: "CmonGroup", GroupID: own.OwnerGroupID, GroupName: own.OwnerGroupName}
		out.ACL = p.ACL(o)
	}
	if withHosts {
		out.Hosts = make([]wireHost, 0, len(c.Hosts)+1)
		for _, host := range c.Hosts {
			out.Hosts = append(out.Hosts, renderHost(c, host, out.ACL, now))
		}
		if h.self != nil {
			out.Hosts = append(out.Hosts, h.self.asHostOf(c, out.ACL))
		}
	}
	return out
}

// wireHost is a CmonHost as s9s's S9sNode and cmon-proxy's api.Host read
// it; lastseen is Unix seconds, as the original controller sends it. A
// host's ACL is its cluster's.
type wireHost struct {
	ClassName string   `json:"class_name"`
	CdtPath   string   `json:"cdt_path"`
	ACL       string   `json:"acl"`
	HostID    int64    `json:"hostId"`
	UniqueID  int64    `json:"unique_id"`
	ClusterID int64    `json:"clusterid"`
	Hostname  string   `json:"hostname"`
	IP        string   `json:"ip"`
	Port      int      `json:"port"`
	Role      string   `json:"role"`
	NodeType  string   `json:"nodetype"`
	Tags      []string `json:"tags"`
	Status    string   `json:"hoststatus"`
	// MaintenanceModeActive: a host in a maintenance period keeps its
	// status; this says why its alarms are held back.
	MaintenanceModeActive bool `json:"maintenance_mode_active"`
	// MaintenanceMode is "none" or "active".
	MaintenanceMode string           `json:"maintenance_mode"`
	Connected       bool             `json:"connected"`
	Container       bool             `json:"container"`
	LastSeen        int64            `json:"lastseen"`
	Message         string           `json:"message"`
	Logfile         string           `json:"logfile"`
	Version         string           `json:"version"`
	Distribution    wireDistribution `json:"distribution"`
	CPUCount        int              `json:"cpu_count"`
	MemoryMB        int64            `json:"memory_mb"`
}

// wireDistribution is the host's system: the health monitor learns its name
// and kernel; the release, codename and type are not told apart.
type wireDistribution struct {
	Name     string `json:"name"`
	Kernel   string `json:"kernel"`
	Release  string `json:"release"`
	Codename string `json:"codename"`
	Type     string `json:"type"`
}

func maintenanceMode(active bool) string {
	if active {
		return "active"
	}
	return "none"
}

func renderHost(c *hosts.Cluster, h hosts.Host, acl string, now time.Time) wireHost {
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
	inMaintenance := c.InMaintenance(h.Hostname, now)
	return wireHost{ClassName: "CmonHost", CdtPath: "/" + c.Name, ACL: acl, HostID: h.ID, UniqueID: h.ID, ClusterID: c.ID,
		Hostname: h.Hostname, IP: h.IP, Port: port, Role: h.Role, NodeType: h.NodeType, Tags: tags, Status: h.Status,
		MaintenanceModeActive: inMaintenance, MaintenanceMode: maintenanceMode(inMaintenance),
		Connected: h.Status == hosts.HostOnline, LastSeen: lastSeen, Message: h.Message, Version: c.Version,
		Distribution: wireDistribution{Name: h.OS, Kernel: h.Kernel}, CPUCount: h.CPUs, MemoryMB: h.MemoryMB}
}

// controllerHost is this controller as the reference lists it among each
// cluster's hosts (nodetype controller): the reference's web UI counts a
// cluster's nodes as its hosts but one.
type controllerHost struct {
	hostname, ip, version string
	port                  int
}

func (ch *controllerHost) asHostOf(c *hosts.Cluster, acl string) wireHost {
	return wireHost{ClassName: "CmonHost", CdtPath: "/" + c.Name, ACL: acl, ClusterID: c.ID, Hostname: ch.hostname, IP: ch.ip,
		Port: ch.port, Role: "controller", NodeType: "controller", Tags: []string{}, Status: hosts.HostOnline,
		MaintenanceMode: maintenanceMode(false), Connected: true, LastSeen: time.Now().Unix(), Version: ch.version}
}
