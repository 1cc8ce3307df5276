package commands

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
)

// nodeRun is one command on some hosts of a cluster.
type nodeRun struct {
	client  Runner
	cluster *hosts.Cluster
	hosts   []hosts.Host
	req     remote.Request
	opt     remote.FanOut
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
	code, signal := 0, ""
	for _, n := range r.Nodes {
		switch {
		case n.problem == "":
		case n.pending:
			notRun = append(notRun, n.Hostname)
		default:
			failed = append(failed, n.Hostname+" "+n.problem)
			if code == 0 && n.ExitStatus > 0 && n.ExitStatus < 256 {
				code, signal = n.ExitStatus, n.ExitSignal
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
	return &jobs.ExitError{Code: code, Signal: signal, Err: errors.New(b.String())}
}

// run runs r on its hosts: output lines go to the job log as they arrive,
// progress as nodes finish, and the result reports every node. On kill or
// timeout the runner ends the nodes' commands and returns, bounded.
func (n *nodes) run(ctx context.Context, log jobs.Logger, r nodeRun) *runReport {
	targets := make([]remote.Target, len(r.hosts))
	index := make(map[string]int, len(r.hosts))
	for i, h := range r.hosts {
		targets[i] = hosts.TargetOf(r.cluster, h)
		index[targets[i].Addr()] = i
	}
	if r.req.OutputLimit <= 0 {
		r.req.OutputLimit = max(minNodeOutputLimit, min(n.OutputLimit, n.ResultLimit/(2*max(1, len(targets)))))
	}
	out := newOutputLog(ctx, log, n.MaxMessages, r.hosts, index)
	if !r.base64 {
		r.req.OnOutput = func(c remote.Chunk) { out.write(ctx, c) }
	}
	ended := recordProcesses(ctx, log, &r, index)
	done := 0 // OnNodeDone calls are serialized
	r.opt.OnNodeDone = func(nr remote.NodeResult) {
		i := index[nr.Target.Addr()]
		ended(i)
		done++
		out.flush(ctx, i)
		logNode(ctx, log, r.hosts[i].Hostname, nodeProblem(ctx, nr), nr.Result, r.base64)
		log.Progress(ctx, done*100/len(targets))
	}
	res := r.client.RunMany(ctx, targets, r.req, r.opt)
	out.writeBatch()

	names := func(nr remote.NodeResult) string { return r.hosts[index[nr.Target.Addr()]].Hostname }
	rep := &runReport{Nodes: []nodeReport{}, Responded: res.Names(remote.Responded, names),
		Unreachable: res.Names(remote.Unreachable, names), Unapproved: res.Names(remote.Unapproved, names),
		Pending: res.Names(remote.Pending, names)}
	for i, nr := range res.Nodes {
		name := r.hosts[i].Hostname
		nodeRep := reportOf(ctx, name, nr, r.base64)
		if nr.Outcome == remote.Pending {
			if r.opt.AbortOnError && ctx.Err() == nil {
				nodeRep.Error = "not run: an earlier node failed and abort_on_error is set"
			} else {
				nodeRep.Error = "not run: the job was stopped"
			}
			log.Message(ctx, jobs.MessageWarning, name+": "+nodeRep.Error+".")
		}
		rep.Nodes = append(rep.Nodes, nodeRep)
	}
	return rep
}

// reportOf renders one node's result.
func reportOf(ctx context.Context, name string, nr remote.NodeResult, b64 bool) nodeReport {
	rep := nodeReport{Hostname: name, ExitStatus: -1}
	if res := nr.Result; res != nil {
		rep.ExitStatus, rep.ExitSignal = res.ExitStatus, res.ExitSignal
		rep.Stdout, rep.Stderr = renderOutput(res.Stdout, b64), renderOutput(res.Stderr, b64)
		rep.Truncated = res.StdoutTruncated || res.StderrTruncated
		rep.Started, rep.Ended = jobs.FormatTime(res.Started), jobs.FormatTime(res.Ended)
	}
	rep.problem = nodeProblem(ctx, nr)
	rep.pending = nr.Outcome == remote.Pending
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
func nodeProblem(ctx context.Context, nr remote.NodeResult) string {
	switch {
	case nr.Outcome == remote.Pending:
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
func describeNodeError(ctx context.Context, nr remote.NodeResult) string {
	var e *remote.Error
	if !errors.As(nr.Err, &e) {
		return nr.Err.Error()
	}
	what := e.Kind.Error()
	// The job's own kill or timeout reaches the node as a cancellation: say which.
	if errors.Is(e.Kind, remote.ErrKilled) {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, jobs.ErrTimedOut):
			what = "timed out (job timeout)"
		case errors.Is(cause, jobs.ErrKilled):
			what = "killed (job aborted)"
		}
	}
	if e.Err != nil {
		what += ": " + e.Err.Error()
	}
	switch {
	case errors.Is(e.Kind, remote.ErrSetup):
		return what // the controller's own configuration: the node is not at fault
	case nr.Outcome == remote.Unreachable:
		return "unreachable: " + what
	case nr.Outcome == remote.Unapproved:
		return "refused: " + what
	}
	return what
}

// logNode logs how a node ended: a summary line, with the output size when
// output is not logged line by line.
func logNode(ctx context.Context, log jobs.Logger, name, problem string, res *remote.Result, b64 bool) {
	switch {
	case problem != "":
		log.Message(ctx, jobs.MessageFailed, name+": "+problem+".")
	case b64 && res != nil:
		log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("%s: exit status 0, %d bytes of stdout, %d bytes of stderr.",
			name, len(res.Stdout), len(res.Stderr)))
	default:
		log.Message(ctx, jobs.MessageSuccess, name+": exit status 0.")
	}
}
