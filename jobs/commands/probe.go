package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/sql"
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
			return fmt.Errorf("node %s: host key fingerprint %q is not of the form \"SHA256:<base64>\"", s.Hostname, fp)
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
		if t == "" || utf8.RuneCountInString(t) > jobs.MaxTagLen {
			return fmt.Errorf("%s must be 1 to %d characters each", what, jobs.MaxTagLen)
		}
	}
	return nil
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
			h.OS = sql.Clip(strings.ToValidUTF8(strings.Trim(v, `"'`), "\uFFFD"), 255)
		case "kernel":
			h.Kernel = sql.Clip(strings.ToValidUTF8(v, "\uFFFD"), 255)
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
func (n *nodes) probe(ctx context.Context, log jobs.Logger, c *hosts.Cluster, hs []hosts.Host, fps fingerprints) ([]hosts.Host, []probed, error) {
	targets := make([]remote.Target, len(hs))
	for i, h := range hs {
		targets[i] = hosts.TargetOf(c, h)
		targets[i].HostKeyFingerprints = fps[strings.ToLower(h.Hostname)]
	}
	unknown := n.unknownKeys(ctx, targets)
	res := n.Learn.RunMany(ctx, targets,
		// Close: the strict client serves the nodes from now on; these
		// connections would only sit idle in the learning client's pool.
		remote.Request{Command: factsScript, Sudo: remote.Sudo{Enabled: c.Sudo}, Timeout: n.FactsTimeout,
			OutputLimit: 64 << 10, Close: true},
		remote.FanOut{Concurrent: true, Parallelism: n.Parallelism})
	out := make([]hosts.Host, len(hs))
	reports := make([]probed, len(hs))
	var failed []string
	now := time.Now().UTC()
	for i, nr := range res.Nodes {
		h := hs[i]
		problem := nodeProblem(ctx, nr)
		if problem != "" && nr.Err == nil && nr.Result != nil {
			if msg := strings.TrimSpace(string(nr.Result.Stderr)); msg != "" {
				problem += ": " + sql.Clip(strings.ToValidUTF8(msg, "\uFFFD"), 300)
			}
		}
		if problem != "" {
			failed = append(failed, h.Hostname+" "+problem)
			reports[i] = probed{Hostname: h.Hostname, Error: problem}
			log.Message(ctx, jobs.MessageFailed, fmt.Sprintf("%s: %s.", h.Hostname, problem))
			continue
		}
		applyFacts(ctx, &h, nr.Result.Stdout)
		h.Status, h.LastSeen, h.Message = hosts.HostOnline, now, "Up and running."
		out[i] = h
		reports[i] = probed{Hostname: h.Hostname, IP: h.IP, OS: h.OS, Kernel: h.Kernel, CPUs: h.CPUs, MemoryMB: h.MemoryMB}
		log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("%s: %s, kernel %s, %d CPUs, %d MB of memory, address %s.",
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
func (n *nodes) unknownKeys(ctx context.Context, targets []remote.Target) []string {
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
func (n *nodes) forget(ctx context.Context, log jobs.Logger, addrs []string) {
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
		log.Message(ctx, jobs.MessageDebug, fmt.Sprintf("Forgot the host key of %s: no cluster uses it.", a))
	}
}
