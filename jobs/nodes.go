package jobs

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cmon-dev/cmon/hosts"
)

// NodeDeps are what node commands need; cmon's main builds them. Zero values
// of the tuning fields take the defaults named on each.
type NodeDeps struct {
	Inventory *hosts.Inventory
	// Tree keeps each cluster's access-control object in step with the
	// inventory: it is created with the cluster, owned by who registered it.
	Tree ClusterObjects
	// SSH checks host keys strictly: every command after registration uses it.
	SSH *hosts.Client
	// Learn records the host keys of nodes not seen before, in the same store
	// as SSH: registration and add_node only. A key on record is checked even
	// by Learn, so a reinstalled node is never re-trusted silently.
	Learn *hosts.Client
	// HostKeys is the store behind SSH and Learn (hosts.DBKnownHosts). When
	// set, the keys of nodes that no cluster uses any more are forgotten: after
	// remove_cluster, remove_node, and the keys a failed registration or
	// add_node learned. Removing a cluster and registering it again is then
	// how an operator re-trusts a reinstalled node. Nil keeps every key.
	HostKeys HostKeyStore
	// OutputLimit is how many bytes of each stream of each node a result
	// keeps (default 256 KiB).
	OutputLimit int
	// ResultLimit bounds the output kept over all nodes and streams of one
	// job (default 2 MiB), so that a result, escaped as JSON, still fits the
	// database's result column and packet size.
	ResultLimit int
	// MaxMessages bounds the output lines logged as job messages per job
	// (default 1000); the job result holds the rest.
	MaxMessages int
	// FactsTimeout bounds connecting to a node and reading its facts when it
	// is registered (default 30s).
	FactsTimeout time.Duration
	// StopWait is how long a killed or timed-out command waits for its nodes
	// to confirm that their remote processes ended (default 5s). Keep it below
	// the engine's KillGrace, or the engine ends the job without its result.
	StopWait time.Duration
	// Parallelism bounds the nodes reached at once by a concurrent exec and by
	// registration (default hosts.DefaultParallelism).
	Parallelism int
	Log         *slog.Logger // default slog.Default()
}

// ClusterObjects creates and deletes tree objects, such as rbac.Store does.
type ClusterObjects interface {
	CreateObject(ctx context.Context, path string, ownerUserID, ownerGroupID int64) error
	DeleteObject(ctx context.Context, path string) error
}

// HostKeyStore is a host-key store that can forget a node, such as
// hosts.DBKnownHosts.
type HostKeyStore interface {
	hosts.KnownHosts
	Forget(ctx context.Context, hostport string) error
}

// Defaults of NodeDeps.
const (
	defaultNodeOutputLimit  = 256 << 10
	defaultNodeResultLimit  = 2 << 20
	defaultNodeMaxMessages  = 1000
	defaultNodeFactsTimeout = 30 * time.Second
	defaultNodeStopWait     = 5 * time.Second
	maxMessageLine          = 4096 // longer output lines are split over several messages
	minNodeOutputLimit      = 4 << 10
	maxFailuresInStatusText = 5
)

func (d NodeDeps) withDefaults() NodeDeps {
	if d.OutputLimit <= 0 {
		d.OutputLimit = defaultNodeOutputLimit
	}
	if d.ResultLimit <= 0 {
		d.ResultLimit = defaultNodeResultLimit
	}
	if d.MaxMessages <= 0 {
		d.MaxMessages = defaultNodeMaxMessages
	}
	if d.FactsTimeout <= 0 {
		d.FactsTimeout = defaultNodeFactsTimeout
	}
	if d.StopWait <= 0 {
		d.StopWait = defaultNodeStopWait
	}
	if d.Parallelism <= 0 {
		d.Parallelism = hosts.DefaultParallelism
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Learn == nil {
		// Registration then refuses unknown nodes with a clear host key error.
		d.Learn = d.SSH
	}
	return d
}

// NodeCommands lists the commands that reach nodes over SSH: exec, start,
// stop, restart, register_cluster, remove_cluster, add_node and remove_node.
func NodeCommands(d NodeDeps) []Command {
	n := &nodes{d.withDefaults()}
	return []Command{
		n.execCommand(),
		n.serviceCommand("start"),
		n.serviceCommand("stop"),
		n.serviceCommand("restart"),
		n.registerClusterCommand(),
		n.removeClusterCommand(),
		n.addNodeCommand(),
		n.removeNodeCommand(),
	}
}

// nodes holds the dependencies of the node commands, defaults applied.
type nodes struct{ NodeDeps }

// ready reports a controller built without what node commands need.
func (n *nodes) ready(command string) error {
	if n.Inventory == nil || n.SSH == nil || n.Tree == nil {
		return fmt.Errorf("%s is not available: this controller has no inventory, access tree or ssh client", command)
	}
	return nil
}

// cluster loads a job's cluster.
func (n *nodes) cluster(ctx context.Context, id int64) (*hosts.Cluster, error) {
	c, err := n.Inventory.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("cluster %d: %w", id, err)
	}
	return c, nil
}

// findHost finds a cluster's host by its name (case-insensitively, as DNS
// names are) or its IP address.
func findHost(c *hosts.Cluster, name string) (hosts.Host, bool) {
	name = strings.TrimSpace(name)
	for _, h := range c.Hosts {
		if strings.EqualFold(h.Hostname, name) || (h.IP != "" && h.IP == name) {
			return h, true
		}
	}
	return hosts.Host{}, false
}

// tagSelector picks hosts by their tags (RPort's {operator, tags}).
type tagSelector struct {
	Operator string   `json:"operator"`
	Tags     []string `json:"tags"`
}

// check normalizes the operator (default OR, as in RPort) and the tags.
func (s *tagSelector) check() error {
	op := strings.ToUpper(strings.TrimSpace(s.Operator))
	switch op {
	case "":
		op = "OR"
	case "AND", "OR":
	default:
		return fmt.Errorf("job_data field \"host_tags.operator\" must be \"AND\" or \"OR\", not %q", s.Operator)
	}
	s.Operator = op
	var tags []string
	for _, t := range s.Tags {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return errors.New("job_data field \"host_tags.tags\" must list at least one tag")
	}
	s.Tags = tags
	return nil
}

func (s *tagSelector) matches(h hosts.Host) bool {
	has := func(t string) bool { return slices.Contains(h.Tags, t) }
	if s.Operator == "AND" {
		for _, t := range s.Tags {
			if !has(t) {
				return false
			}
		}
		return true
	}
	return slices.ContainsFunc(s.Tags, has)
}

// pickHosts selects hosts of c: those named (in the order given), those
// matching tags (in the cluster's order), or all of them.
func pickHosts(c *hosts.Cluster, names []string, tags *tagSelector) ([]hosts.Host, error) {
	var out []hosts.Host
	switch {
	case len(names) > 0:
		var unknown []string
		seen := map[int64]bool{}
		for _, name := range names {
			h, ok := findHost(c, name)
			if !ok {
				unknown = append(unknown, name)
				continue
			}
			if !seen[h.ID] {
				seen[h.ID] = true
				out = append(out, h)
			}
		}
		if len(unknown) == 1 {
			return nil, fmt.Errorf("node %s is not in cluster %q", unknown[0], c.Name)
		}
		if len(unknown) > 1 {
			return nil, fmt.Errorf("nodes %s are not in cluster %q", strings.Join(unknown, ", "), c.Name)
		}
	case tags != nil:
		for _, h := range c.Hosts {
			if tags.matches(h) {
				out = append(out, h)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no node of cluster %q has the tags %s (%s)", c.Name, strings.Join(tags.Tags, ", "), tags.Operator)
		}
	default:
		out = c.Hosts
		if len(out) == 0 {
			return nil, fmt.Errorf("cluster %q has no nodes", c.Name)
		}
	}
	return out, nil
}

// nodeRun is one command on some hosts of a cluster.
type nodeRun struct {
	client  *hosts.Client
	cluster *hosts.Cluster
	hosts   []hosts.Host
	req     hosts.Request
	opt     hosts.FanOut
	// base64 renders output in the result as base64 and logs a summary per
	// node instead of output lines (binary output makes no log lines).
	base64 bool
}

// nodeReport is one node's part of a run's result.
type nodeReport struct {
	Hostname   string `json:"hostname"`
	ExitStatus int    `json:"exit_status"`
	ExitSignal string `json:"exit_signal"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	Truncated  bool   `json:"truncated"`
	Started    string `json:"started"`
	Ended      string `json:"ended"`
	// Error is why the node failed ("exit status 1", "unreachable: ..."),
	// "" when it exited 0.
	Error string `json:"error"`
	// problem is Error before pending nodes get their longer reason.
	problem string
	pending bool
}

// runReport is the result object of a run: every node in the order run, and
// the host names by outcome.
type runReport struct {
	Nodes       []nodeReport `json:"nodes"`
	Responded   []string     `json:"responded"`
	Unreachable []string     `json:"unreachable"`
	Unapproved  []string     `json:"unapproved"`
	Pending     []string     `json:"pending"`
}

// err is nil when every node exited 0, else an error naming the nodes that
// failed and why; its exit code is the first failed node's exit status.
func (r *runReport) err() error {
	var failed, notRun []string
	code := 0
	for _, n := range r.Nodes {
		switch {
		case n.problem == "":
		case n.pending:
			notRun = append(notRun, n.Hostname)
		default:
			failed = append(failed, n.Hostname+" "+n.problem)
			if code == 0 && n.ExitStatus > 0 && n.ExitStatus < 256 {
				code = n.ExitStatus
			}
		}
	}
	if len(failed) == 0 && len(notRun) == 0 {
		return nil
	}
	var b strings.Builder
	if len(failed) > 0 {
		fmt.Fprintf(&b, "%d of %d nodes failed: %s", len(failed), len(r.Nodes), strings.Join(failed[:min(len(failed), maxFailuresInStatusText)], "; "))
		if more := len(failed) - maxFailuresInStatusText; more > 0 {
			fmt.Fprintf(&b, "; and %d more", more)
		}
		if len(notRun) > 0 {
			b.WriteString("; not run: " + strings.Join(notRun, ", "))
		}
	} else {
		fmt.Fprintf(&b, "%d of %d nodes did not run: %s", len(notRun), len(r.Nodes), strings.Join(notRun, ", "))
	}
	if code == 0 {
		code = 1
	}
	return &ExitError{Code: code, Err: errors.New(b.String())}
}

// run runs r on its hosts: output lines go to the job log as they arrive,
// progress as nodes finish, and the result reports every node. On kill or
// timeout it waits at most StopWait for the nodes to end their commands.
func (n *nodes) run(ctx context.Context, log Logger, r nodeRun) *runReport {
	targets := make([]hosts.Target, len(r.hosts))
	index := make(map[string]int, len(r.hosts))
	for i, h := range r.hosts {
		targets[i] = hosts.TargetOf(r.cluster, h)
		index[targets[i].Addr()] = i
	}
	if r.req.OutputLimit <= 0 {
		r.req.OutputLimit = max(minNodeOutputLimit, min(n.OutputLimit, n.ResultLimit/(2*max(1, len(targets)))))
	}
	out := newOutputLog(log, n.MaxMessages, r.hosts, index)
	if !r.base64 {
		r.req.OnOutput = func(c hosts.Chunk) { out.write(ctx, c) }
	}

	var mu sync.Mutex // guards finished and done against a late OnNodeDone
	finished := make([]*hosts.NodeResult, len(targets))
	done := 0
	r.opt.OnNodeDone = func(nr hosts.NodeResult) {
		i := index[nr.Target.Addr()]
		mu.Lock()
		finished[i] = &nr
		done++
		percent := done * 100 / len(targets)
		mu.Unlock()
		if out.closed.Load() {
			return // the handler has returned without this node
		}
		out.flush(ctx, i)
		logNode(ctx, log, r.hosts[i].Hostname, nodeProblem(ctx, nr), nr.Result, r.base64)
		log.Progress(ctx, percent)
	}

	fanned := make(chan *hosts.FanOutResult, 1)
	go func() { fanned <- r.client.RunMany(ctx, targets, r.req, r.opt) }()
	var res *hosts.FanOutResult
	select {
	case res = <-fanned:
	case <-ctx.Done():
		// The client ends the remote commands; give it a moment to confirm.
		wait := time.NewTimer(n.StopWait)
		select {
		case res = <-fanned:
		case <-wait.C:
			n.Log.WarnContext(ctx, "nodes did not confirm the end of their commands in time; reporting without them",
				"cluster", r.cluster.Name, "wait", n.StopWait)
		}
		wait.Stop()
	}
	out.closed.Store(true)

	if res == nil {
		// Build what is known; nodes still stopping count as pending.
		mu.Lock()
		res = &hosts.FanOutResult{Nodes: make([]hosts.NodeResult, len(targets))}
		for i, t := range targets {
			if finished[i] != nil {
				res.Nodes[i] = *finished[i]
			} else {
				res.Nodes[i] = hosts.NodeResult{Target: t, Outcome: hosts.Pending}
			}
		}
		mu.Unlock()
	}
	rep := &runReport{Nodes: []nodeReport{}, Responded: []string{}, Unreachable: []string{}, Unapproved: []string{}, Pending: []string{}}
	for i, nr := range res.Nodes {
		name := r.hosts[i].Hostname
		nodeRep := reportOf(ctx, name, nr, r.base64)
		if nr.Outcome == hosts.Pending {
			if r.opt.AbortOnError && ctx.Err() == nil {
				nodeRep.Error = "not run: an earlier node failed and abort_on_error is set"
			} else {
				nodeRep.Error = "not run: the job was stopped"
			}
			log.Message(ctx, MessageWarning, name+": "+nodeRep.Error+".")
		}
		rep.Nodes = append(rep.Nodes, nodeRep)
		switch nr.Outcome {
		case hosts.Responded:
			rep.Responded = append(rep.Responded, name)
		case hosts.Unreachable:
			rep.Unreachable = append(rep.Unreachable, name)
		case hosts.Unapproved:
			rep.Unapproved = append(rep.Unapproved, name)
		default:
			rep.Pending = append(rep.Pending, name)
		}
	}
	return rep
}

// reportOf renders one node's result.
func reportOf(ctx context.Context, name string, nr hosts.NodeResult, b64 bool) nodeReport {
	rep := nodeReport{Hostname: name, ExitStatus: -1}
	if res := nr.Result; res != nil {
		rep.ExitStatus, rep.ExitSignal = res.ExitStatus, res.ExitSignal
		rep.Stdout, rep.Stderr = renderOutput(res.Stdout, b64), renderOutput(res.Stderr, b64)
		rep.Truncated = res.StdoutTruncated || res.StderrTruncated
		rep.Started, rep.Ended = FormatTime(res.Started), FormatTime(res.Ended)
	}
	rep.problem = nodeProblem(ctx, nr)
	rep.pending = nr.Outcome == hosts.Pending
	rep.Error = rep.problem
	return rep
}

// renderOutput is output for the result: base64, or UTF-8 text with invalid
// bytes replaced.
func renderOutput(b []byte, b64 bool) string {
	if b64 {
		return base64.StdEncoding.EncodeToString(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// nodeProblem says why a node counts as failed, "" when it exited 0.
func nodeProblem(ctx context.Context, nr hosts.NodeResult) string {
	switch {
	case nr.Outcome == hosts.Pending:
		return "not run"
	case nr.Err != nil:
		return describeNodeError(ctx, nr)
	case nr.Result == nil:
		return "no result"
	case nr.Result.ExitStatus != 0:
		s := fmt.Sprintf("exit status %d", nr.Result.ExitStatus)
		if sig := nr.Result.ExitSignal; sig != "" {
			s += " (signal " + sig + ")"
		}
		return s
	}
	return ""
}

// describeNodeError words a node's error without the node's address, which
// the caller puts in front.
func describeNodeError(ctx context.Context, nr hosts.NodeResult) string {
	var e *hosts.Error
	if !errors.As(nr.Err, &e) {
		return nr.Err.Error()
	}
	what := e.Kind.Error()
	// The job's own kill or timeout reaches the node as a cancellation: say which.
	if errors.Is(e.Kind, hosts.ErrKilled) {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, ErrTimedOut):
			what = "timed out (job timeout)"
		case errors.Is(cause, ErrKilled):
			what = "killed (job aborted)"
		}
	}
	if e.Err != nil {
		what += ": " + e.Err.Error()
	}
	switch nr.Outcome {
	case hosts.Unreachable:
		return "unreachable: " + what
	case hosts.Unapproved:
		return "refused: " + what
	}
	return what
}

// logNode logs how a node ended: a summary line, with the output size when
// output is not logged line by line.
func logNode(ctx context.Context, log Logger, name, problem string, res *hosts.Result, b64 bool) {
	switch {
	case problem != "":
		log.Message(ctx, MessageFailed, name+": "+problem+".")
	case b64 && res != nil:
		log.Message(ctx, MessageSuccess, fmt.Sprintf("%s: exit status 0, %d bytes of stdout, %d bytes of stderr.",
			name, len(res.Stdout), len(res.Stderr)))
	default:
		log.Message(ctx, MessageSuccess, name+": exit status 0.")
	}
}

// outputLog turns streamed output into job messages: whole lines prefixed
// with the host name, stdout as JOB_SUCCESS and stderr as JOB_WARNING, at most
// max lines per job. The hosts client serializes the output of one node, and
// each node has its own buffers, so only the counters are shared.
type outputLog struct {
	log   Logger
	max   int64
	index map[string]int
	nodes []*nodeLines
	sent  atomic.Int64
	// closed drops output that arrives after the handler returned (a node
	// that did not confirm its end within StopWait).
	closed atomic.Bool
}

type nodeLines struct {
	name           string
	stdout, stderr []byte
}

func newOutputLog(log Logger, max int, hs []hosts.Host, index map[string]int) *outputLog {
	o := &outputLog{log: log, max: int64(max), index: index, nodes: make([]*nodeLines, len(hs))}
	for i, h := range hs {
		o.nodes[i] = &nodeLines{name: h.Hostname}
	}
	return o
}

func (o *outputLog) write(ctx context.Context, c hosts.Chunk) {
	i, ok := o.index[c.Node]
	if !ok || o.closed.Load() || o.sent.Load() > o.max {
		return
	}
	nl := o.nodes[i]
	buf, status := &nl.stdout, MessageSuccess
	if c.Stream == hosts.Stderr {
		buf, status = &nl.stderr, MessageWarning
	}
	data := append(*buf, c.Data...)
	start := 0
	for {
		end := bytes.IndexByte(data[start:], '\n')
		if end >= 0 {
			o.emit(ctx, nl.name, status, data[start:start+end])
			start += end + 1
			continue
		}
		if len(data)-start < maxMessageLine {
			break
		}
		// A very long line goes out in pieces, each cut at a rune boundary.
		cut := start + maxMessageLine
		for cut > start && !utf8.RuneStart(data[cut]) {
			cut--
		}
		if cut == start {
			cut = start + maxMessageLine
		}
		o.emit(ctx, nl.name, status, data[start:cut])
		start = cut
	}
	*buf = append(data[:0], data[start:]...)
}

// flush logs a node's unterminated last lines once its command has ended.
func (o *outputLog) flush(ctx context.Context, i int) {
	nl := o.nodes[i]
	if len(nl.stdout) > 0 {
		o.emit(ctx, nl.name, MessageSuccess, nl.stdout)
		nl.stdout = nil
	}
	if len(nl.stderr) > 0 {
		o.emit(ctx, nl.name, MessageWarning, nl.stderr)
		nl.stderr = nil
	}
}

func (o *outputLog) emit(ctx context.Context, name string, status MessageStatus, line []byte) {
	if o.closed.Load() {
		return
	}
	switch n := o.sent.Add(1); {
	case n == o.max+1:
		o.log.Message(ctx, MessageWarning, fmt.Sprintf("More output than %d lines: the rest is in the job result only.", o.max))
		return
	case n > o.max:
		return
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	o.log.Message(ctx, status, name+": "+strings.ToValidUTF8(string(line), "\uFFFD"))
}

// shellQuote makes s one single-quoted shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// clipText shortens s to at most n bytes at a rune boundary, for columns of
// bounded size.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
