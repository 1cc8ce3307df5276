package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
)

// nodeSpec is a node as register_cluster and add_node take it.
type nodeSpec struct {
	Hostname string   `json:"hostname"`
	Port     int      `json:"port"`
	Role     string   `json:"role"`
	NodeType string   `json:"nodetype"`
	Tags     []string `json:"tags"`
	// HostKeyFingerprints ("SHA256:...", as ssh-keygen -lf prints them) pin
	// the node's host key instead of trusting the first one seen.
	HostKeyFingerprints []string `json:"host_key_fingerprints"`
}

// fingerprints maps a node's lower-case host name to its pinned host keys.
type fingerprints map[string][]string

func (f fingerprints) add(s nodeSpec) error {
	for _, fp := range s.HostKeyFingerprints {
		if !strings.HasPrefix(fp, "SHA256:") || len(fp) < 20 || len(fp) > 100 {
			return fmt.Errorf("node %s: host key fingerprint %q is not of the form SHA256:...", s.Hostname, fp)
		}
	}
	if len(s.HostKeyFingerprints) > 0 {
		f[strings.ToLower(strings.TrimSpace(s.Hostname))] = s.HostKeyFingerprints
	}
	return nil
}

// host checks a node spec and makes the host to store.
func (s nodeSpec) host() (hosts.Host, error) {
	h := hosts.Host{Hostname: strings.TrimSpace(s.Hostname), Port: s.Port, Role: s.Role, NodeType: s.NodeType, Tags: s.Tags}
	switch {
	case h.Hostname == "":
		return h, errors.New("a node needs a hostname")
	case !hosts.ValidHostname(h.Hostname):
		return h, fmt.Errorf("node hostname %q is not a valid host name or IP address", h.Hostname)
	case h.Port < 0 || h.Port > 65535:
		return h, fmt.Errorf("node %s: port %d is out of range", h.Hostname, h.Port)
	case len(h.Role) > 64 || len(h.NodeType) > 64:
		return h, fmt.Errorf("node %s: role and nodetype are at most 64 characters", h.Hostname)
	}
	return h, checkTags("node "+h.Hostname+" tags", h.Tags)
}

func checkTags(what string, tags []string) error {
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > maxTagLen {
			return fmt.Errorf("%s must be 1 to %d characters each", what, maxTagLen)
		}
	}
	return nil
}

// registerData is the job_data of register_cluster.
type registerData struct {
	ClusterName    string     `json:"cluster_name"`
	ClusterType    string     `json:"cluster_type"`
	Vendor         string     `json:"vendor"`
	Version        string     `json:"version"`
	Tags           []string   `json:"tags"`
	SSHUser        string     `json:"ssh_user"`
	SSHKeyFile     string     `json:"ssh_keyfile"`
	SSHPort        int        `json:"ssh_port"`
	Sudo           bool       `json:"sudo"`
	ServiceName    string     `json:"service_name"`
	ServiceCommand string     `json:"service_command"`
	Nodes          []nodeSpec `json:"nodes"`
}

// registration is register_cluster's checked job_data: the cluster to store
// (without facts, owner or state yet) and the host keys its nodes must have.
type registration struct {
	cluster      *hosts.Cluster
	fingerprints fingerprints
}

// parseRegister checks register_cluster's job_data.
func parseRegister(raw json.RawMessage) (*registration, error) {
	var d registerData
	if err := DecodeJobData(raw, &d); err != nil {
		return nil, err
	}
	fps := fingerprints{}
	c := &hosts.Cluster{Name: d.ClusterName, Type: d.ClusterType, Vendor: d.Vendor, Version: d.Version, Tags: d.Tags,
		SSHUser: d.SSHUser, SSHKeyFile: d.SSHKeyFile, SSHPort: d.SSHPort, Sudo: d.Sudo,
		ServiceName: d.ServiceName, ServiceCommand: d.ServiceCommand}
	if c.SSHPort == 0 {
		c.SSHPort = 22
	}
	for _, s := range d.Nodes {
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		if err := fps.add(s); err != nil {
			return nil, err
		}
		// Host names are case-insensitive, and so are the nodes' host key entries.
		if _, dup := findHost(c, h.Hostname); dup {
			return nil, fmt.Errorf("node %s is listed twice", h.Hostname)
		}
		c.Hosts = append(c.Hosts, h)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// The columns' sizes, so that a bad request fails here and not at the insert.
	switch {
	case len(c.Vendor) > 64 || len(c.Version) > 64:
		return nil, errors.New("vendor and version are at most 64 characters")
	case len(c.ServiceName) > 255:
		return nil, errors.New("service_name is at most 255 characters")
	case len(c.ServiceCommand) > 1024 || len(c.SSHKeyFile) > 1024:
		return nil, errors.New("service_command and ssh_keyfile are at most 1024 characters")
	case len(c.SSHUser) > 64:
		return nil, errors.New("ssh_user is at most 64 characters")
	case strings.ContainsAny(c.ServiceName, "\x00\n"):
		return nil, errors.New("service_name must be one line")
	}
	if err := checkTags("tags", c.Tags); err != nil {
		return nil, err
	}
	return &registration{cluster: c, fingerprints: fps}, nil
}

// factsScript prints a node's facts as key=value lines, one command per
// node. It needs nothing beyond POSIX sh, sed and coreutils.
const factsScript = `echo "os=$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | head -n 1)"
echo "kernel=$(uname -r)"
echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"
echo "mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo 2>/dev/null)"
echo "ssh=${SSH_CONNECTION:-}"`

// applyFacts fills in a host from the facts script's output.
func applyFacts(ctx context.Context, h *hosts.Host, out []byte) {
	var sshConn string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "os":
			h.OS = clipText(strings.ToValidUTF8(strings.Trim(v, `"'`), "\uFFFD"), 255)
		case "kernel":
			h.Kernel = clipText(strings.ToValidUTF8(v, "\uFFFD"), 255)
		case "cpus":
			h.CPUs, _ = strconv.Atoi(v)
		case "mem_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			h.MemoryMB = kb / 1024
		case "ssh":
			sshConn = v
		}
	}
	h.IP = hostIP(ctx, h.Hostname, sshConn)
}

// hostIP is the node's address: the literal, else what its name resolves to
// here, else the address the node says it was reached at (SSH_CONNECTION).
func hostIP(ctx context.Context, hostname, sshConn string) string {
	if ip := net.ParseIP(hostname); ip != nil {
		return ip.String()
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if addrs, err := net.DefaultResolver.LookupIPAddr(rctx, hostname); err == nil && len(addrs) > 0 {
		for _, a := range addrs {
			if a.IP.To4() != nil {
				return a.IP.String()
			}
		}
		return addrs[0].IP.String()
	}
	if f := strings.Fields(sshConn); len(f) == 4 && net.ParseIP(f[2]) != nil {
		return f[2]
	}
	return ""
}

// probed is one node after connecting to it and reading its facts.
type probed struct {
	Hostname string `json:"hostname"`
	IP       string `json:"ip,omitempty"`
	OS       string `json:"os,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	CPUs     int    `json:"cpus,omitempty"`
	MemoryMB int64  `json:"memory_mb,omitempty"`
	Error    string `json:"error,omitempty"`
}

// probe connects to each host of c with the learning client (recording host
// keys not yet on record), reads its facts and marks it online. It returns
// the hosts filled in, a report per node, and an error naming every node that
// failed. Keys learned by a probe that fails are forgotten (see forget).
func (n *nodes) probe(ctx context.Context, log Logger, c *hosts.Cluster, hs []hosts.Host, fps fingerprints) ([]hosts.Host, []probed, error) {
	targets := make([]hosts.Target, len(hs))
	for i, h := range hs {
		targets[i] = hosts.TargetOf(c, h)
		targets[i].HostKeyFingerprints = fps[strings.ToLower(h.Hostname)]
	}
	unknown := n.unknownKeys(ctx, targets)
	res := n.Learn.RunMany(ctx, targets,
		// Close: the strict client serves the nodes from now on; these
		// connections would only sit idle in the learning client's pool.
		hosts.Request{Command: factsScript, Sudo: hosts.Sudo{Enabled: c.Sudo}, Timeout: n.FactsTimeout,
			OutputLimit: 64 << 10, Close: true},
		hosts.FanOut{Concurrent: true, Parallelism: n.Parallelism})
	out := make([]hosts.Host, len(hs))
	reports := make([]probed, len(hs))
	var failed []string
	now := time.Now().UTC()
	for i, nr := range res.Nodes {
		h := hs[i]
		problem := nodeProblem(ctx, nr)
		if problem != "" && nr.Err == nil && nr.Result != nil {
			if msg := strings.TrimSpace(string(nr.Result.Stderr)); msg != "" {
				problem += ": " + clipText(strings.ToValidUTF8(msg, "\uFFFD"), 300)
			}
		}
		if problem != "" {
			failed = append(failed, h.Hostname+" "+problem)
			reports[i] = probed{Hostname: h.Hostname, Error: problem}
			log.Message(ctx, MessageFailed, fmt.Sprintf("%s: %s.", h.Hostname, problem))
			continue
		}
		applyFacts(ctx, &h, nr.Result.Stdout)
		h.Status, h.LastSeen, h.Message = hosts.HostOnline, now, "Up and running."
		out[i] = h
		reports[i] = probed{Hostname: h.Hostname, IP: h.IP, OS: h.OS, Kernel: h.Kernel, CPUs: h.CPUs, MemoryMB: h.MemoryMB}
		log.Message(ctx, MessageSuccess, fmt.Sprintf("%s: %s, kernel %s, %d CPUs, %d MB of memory, address %s.",
			h.Hostname, orUnknown(h.OS), orUnknown(h.Kernel), h.CPUs, h.MemoryMB, orUnknown(h.IP)))
	}
	if ctx.Err() != nil || len(failed) > 0 {
		n.forget(ctx, log, unknown)
		if ctx.Err() != nil {
			return nil, reports, context.Cause(ctx)
		}
		return nil, reports, fmt.Errorf("%d of %d nodes failed: %s", len(failed), len(hs), strings.Join(failed, "; "))
	}
	return out, reports, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// unknownKeys lists the targets with no host key on record, whose keys a
// failed probe should not leave behind. Without a key store, none.
func (n *nodes) unknownKeys(ctx context.Context, targets []hosts.Target) []string {
	if n.HostKeys == nil {
		return nil
	}
	var out []string
	for _, t := range targets {
		keys, err := n.HostKeys.Lookup(ctx, t.Addr())
		if err == nil && len(keys) == 0 {
			out = append(out, t.Addr())
		}
	}
	return out
}

// forget removes the host keys of nodes ("host:port") that no cluster uses,
// so that trust in a node ends when cmon stops managing it. Failures are
// logged, never fatal: the cluster change they follow has happened.
func (n *nodes) forget(ctx context.Context, log Logger, addrs []string) {
	if n.HostKeys == nil || len(addrs) == 0 {
		return
	}
	// Done even after a kill: the keys must not outlive a failed registration.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	clusters, err := n.Inventory.List(ctx)
	if err != nil {
		n.Log.WarnContext(ctx, "forget host keys: list clusters", "err", err)
		return
	}
	used := map[string]bool{}
	for _, c := range clusters {
		for _, h := range c.Hosts {
			used[hosts.TargetOf(c, h).Addr()] = true
		}
	}
	for _, a := range addrs {
		if used[a] {
			continue
		}
		if keys, err := n.HostKeys.Lookup(ctx, a); err == nil && len(keys) == 0 {
			continue // never learned: nothing to forget
		}
		if err := n.HostKeys.Forget(ctx, a); err != nil {
			n.Log.WarnContext(ctx, "forget host key", "node", a, "err", err)
			continue
		}
		log.Message(ctx, MessageDebug, fmt.Sprintf("Forgot the host key of %s: no cluster uses it.", a))
	}
}

// registerClusterCommand is "register_cluster" (alias "add_cluster"): it
// connects to every node (learning host keys), reads their facts, and stores
// the cluster only if every node answered; the job's user owns it.
func (n *nodes) registerClusterCommand() Command {
	c := Command{
		Name:      "register_cluster",
		Access:    Access{Need: rbac.Write, OnRoot: true, ClusterOptional: true, SuperuserFields: []string{"ssh_keyfile"}},
		Aliases:   []string{"add_cluster"},
		Exclusive: true,
	}
	c.Validate, c.Handler = Parsed(parseRegister, n.registerCluster)
	return c
}

func (n *nodes) registerCluster(ctx context.Context, job *Job, r *registration, log Logger) (any, error) {
	if err := n.ready("register_cluster"); err != nil {
		return nil, err
	}
	c, fps := r.cluster, r.fingerprints
	// Checked early to spare the nodes; Create settles a race for the name.
	if _, err := n.Inventory.GetByName(ctx, c.Name); err == nil {
		return nil, fmt.Errorf("a cluster named %q exists", c.Name)
	} else if !errors.Is(err, hosts.ErrClusterNotFound) {
		return nil, err
	}
	log.Message(ctx, MessageSuccess, fmt.Sprintf("Registering cluster %q with %d nodes.", c.Name, len(c.Hosts)))
	filled, reports, err := n.probe(ctx, log, c, c.Hosts, fps)
	result := map[string]any{"cluster_name": c.Name, "nodes": reports}
	if err != nil {
		return result, fmt.Errorf("cluster %q was not registered: %w", c.Name, err)
	}
	c.Hosts = filled
	c.State, c.StatusText = hosts.DeriveState(len(filled), len(filled))
	if err := n.Inventory.Create(ctx, c); err != nil {
		if errors.Is(err, hosts.ErrClusterExists) {
			err = fmt.Errorf("a cluster named %q exists", c.Name)
		}
		return result, fmt.Errorf("cluster %q was not registered: %w", c.Name, err)
	}
	// The cluster is created first, so that of two registrations racing for a
	// name only the winner creates (or replaces a stale) tree object.
	if err := n.Tree.CreateObject(ctx, rbac.ClusterPath(c.Name), job.UserID, job.GroupID); err != nil {
		if derr := n.Inventory.Delete(context.WithoutCancel(ctx), c.ID); derr != nil {
			err = errors.Join(err, derr)
		}
		return result, fmt.Errorf("cluster %q was not registered: %w", c.Name, err)
	}
	result["cluster_id"] = c.ID
	n.Log.InfoContext(ctx, "cluster registered", "job_id", job.ID, "cluster_id", c.ID, "cluster", c.Name, "nodes", len(c.Hosts))
	log.Message(ctx, MessageSuccess, fmt.Sprintf("Cluster %q registered with id %d and %d nodes.", c.Name, c.ID, len(c.Hosts)))
	return result, nil
}

// clusterRefData is the job_data of remove_cluster: the cluster may also be
// named there (the registry's Draft settles it as the job's cluster).
type clusterRefData struct {
	ClusterID  int64 `json:"cluster_id"`
	ClusterID2 int64 `json:"clusterid"`
}

// removeClusterCommand is "remove_cluster": it deletes the cluster and its
// hosts from the inventory (its jobs stay) and forgets the host keys of its
// nodes that no other cluster uses.
func (n *nodes) removeClusterCommand() Command {
	c := Command{
		Name:      "remove_cluster",
		Access:    Access{Need: rbac.Write, OnRoot: true, ClusterInJobData: true},
		Exclusive: true,
	}
	c.Validate, c.Handler = Parsed(decoded[clusterRefData], n.removeCluster)
	return c
}

func (n *nodes) removeCluster(ctx context.Context, job *Job, _ *clusterRefData, log Logger) (any, error) {
	if err := n.ready("remove_cluster"); err != nil {
		return nil, err
	}
	c, err := n.cluster(ctx, job.ClusterID)
	if err != nil {
		return nil, err
	}
	if err := n.Inventory.Delete(ctx, c.ID); err != nil {
		return nil, fmt.Errorf("remove cluster %q: %w", c.Name, err)
	}
	if err := n.Tree.DeleteObject(ctx, rbac.ClusterPath(c.Name)); err != nil {
		// The cluster is gone; a stale object is replaced when the name is
		// registered again.
		log.Message(ctx, MessageWarning, fmt.Sprintf("The access-control object of cluster %q was not removed: %v.", c.Name, err))
	}
	n.Log.InfoContext(ctx, "cluster removed", "job_id", job.ID, "cluster_id", c.ID, "cluster", c.Name)
	log.Message(ctx, MessageSuccess, fmt.Sprintf("Cluster %q (id %d) removed with its %d nodes.", c.Name, c.ID, len(c.Hosts)))
	addrs := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		addrs[i] = hosts.TargetOf(c, h).Addr()
	}
	n.forget(ctx, log, addrs)
	return map[string]any{"cluster_id": c.ID, "cluster_name": c.Name}, nil
}

// nodeData is the job_data of add_node and remove_node.
type nodeData struct {
	Node *nodeSpec `json:"node"`
}

func parseNodeData(raw json.RawMessage, full bool) (*nodeSpec, error) {
	var d nodeData
	if err := DecodeJobData(raw, &d); err != nil {
		return nil, err
	}
	if d.Node == nil || strings.TrimSpace(d.Node.Hostname) == "" {
		return nil, errors.New("job_data needs \"node\": {\"hostname\": ...}")
	}
	if full {
		if _, err := d.Node.host(); err != nil {
			return nil, err
		}
		if err := (fingerprints{}).add(*d.Node); err != nil {
			return nil, err
		}
	}
	return d.Node, nil
}

// addNodeCommand is "add_node": it connects to the node (learning its host
// key), reads its facts and adds it to the job's cluster.
func (n *nodes) addNodeCommand() Command {
	c := Command{
		Name:      "add_node",
		Access:    Access{Need: rbac.Write | rbac.Execute},
		Exclusive: true,
	}
	c.Validate, c.Handler = Parsed(func(raw json.RawMessage) (*nodeSpec, error) { return parseNodeData(raw, true) }, n.addNode)
	return c
}

func (n *nodes) addNode(ctx context.Context, job *Job, spec *nodeSpec, log Logger) (any, error) {
	if err := n.ready("add_node"); err != nil {
		return nil, err
	}
	h, _ := spec.host()
	fps := fingerprints{}
	if err := fps.add(*spec); err != nil {
		return nil, err
	}
	c, err := n.cluster(ctx, job.ClusterID)
	if err != nil {
		return nil, err
	}
	if _, dup := findHost(c, h.Hostname); dup {
		return nil, fmt.Errorf("node %s is already in cluster %q", h.Hostname, c.Name)
	}
	filled, reports, err := n.probe(ctx, log, c, []hosts.Host{h}, fps)
	result := map[string]any{"cluster_id": c.ID, "nodes": reports}
	if err != nil {
		return result, fmt.Errorf("node %s was not added: %w", h.Hostname, err)
	}
	h = filled[0]
	if err := n.Inventory.AddHost(ctx, c.ID, &h); err != nil {
		n.forget(ctx, log, []string{hosts.TargetOf(c, h).Addr()})
		return result, fmt.Errorf("node %s was not added: %w", h.Hostname, err)
	}
	// Recomputes the cluster's state with the new node online.
	check := hosts.HostCheck{HostID: h.ID, Online: true, Message: h.Message, At: h.LastSeen}
	if _, state, err := n.Inventory.RecordChecks(ctx, c.ID, []hosts.HostCheck{check}); err != nil {
		n.Log.WarnContext(ctx, "update cluster state", "cluster_id", c.ID, "err", err)
	} else {
		result["state"] = state
	}
	result["host_id"] = h.ID
	n.Log.InfoContext(ctx, "node added", "job_id", job.ID, "cluster_id", c.ID, "node", h.Hostname)
	log.Message(ctx, MessageSuccess, fmt.Sprintf("Node %s added to cluster %q.", h.Hostname, c.Name))
	return result, nil
}

// removeNodeCommand is "remove_node": it removes a node from the job's
// cluster and forgets its host key if no other cluster uses the node.
func (n *nodes) removeNodeCommand() Command {
	c := Command{
		Name:      "remove_node",
		Access:    Access{Need: rbac.Write | rbac.Execute},
		Exclusive: true,
	}
	c.Validate, c.Handler = Parsed(func(raw json.RawMessage) (*nodeSpec, error) { return parseNodeData(raw, false) }, n.removeNode)
	return c
}

func (n *nodes) removeNode(ctx context.Context, job *Job, spec *nodeSpec, log Logger) (any, error) {
	if err := n.ready("remove_node"); err != nil {
		return nil, err
	}
	c, err := n.cluster(ctx, job.ClusterID)
	if err != nil {
		return nil, err
	}
	h, ok := findHost(c, spec.Hostname)
	if !ok {
		return nil, fmt.Errorf("node %s is not in cluster %q", spec.Hostname, c.Name)
	}
	if err := n.Inventory.RemoveHost(ctx, c.ID, h.Hostname); err != nil {
		return nil, err
	}
	result := map[string]any{"cluster_id": c.ID, "hostname": h.Hostname}
	// No checks: only the state is derived again, from the nodes left.
	if _, state, err := n.Inventory.RecordChecks(ctx, c.ID, nil); err != nil {
		n.Log.WarnContext(ctx, "update cluster state", "cluster_id", c.ID, "err", err)
	} else {
		result["state"] = state
	}
	n.Log.InfoContext(ctx, "node removed", "job_id", job.ID, "cluster_id", c.ID, "node", h.Hostname)
	log.Message(ctx, MessageSuccess, fmt.Sprintf("Node %s removed from cluster %q.", h.Hostname, c.Name))
	n.forget(ctx, log, []string{hosts.TargetOf(c, h).Addr()})
	return result, nil
}
