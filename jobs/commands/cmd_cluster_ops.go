package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// Bounds of the cluster-wide commands' waits.
const (
	// defaultNodeWait bounds one node's restart and return to health in a
	// rolling restart, and a reboot's wait, when timeout_sec names none.
	defaultNodeWait = 10 * time.Minute
	// probeInterval is the pause between two checks of a node coming back.
	probeInterval = time.Second
	// probeTimeout bounds one check, connecting included: a node that does
	// not answer within it counts as down for that check.
	probeTimeout = 10 * time.Second
)

// clusterWideData is the job_data of stop_cluster, start_cluster and
// rolling_restart: the reference's {"clusterid": N}, and what to do on a
// node's failure.
type clusterWideData struct {
	ClusterID  int64   `json:"clusterid"`
	ClusterID2 int64   `json:"cluster_id"`
	TimeoutSec float64 `json:"timeout_sec"` // per node
	// AbortOnError (default true) leaves the nodes after a failed one alone.
	AbortOnError *bool `json:"abort_on_error"`
}

func (d *clusterWideData) abort() bool { return d.AbortOnError == nil || *d.AbortOnError }

func (d *clusterWideData) timeout() time.Duration {
	return time.Duration(d.TimeoutSec * float64(time.Second))
}

// clusterWide is the declaration the cluster-wide commands share: x on the
// cluster, which job_data may name, one such job on a cluster at a time,
// and timeout_sec bounding each node rather than the whole job.
func clusterWide(name string) jobs.Command {
	return jobs.Command{Name: name, Exclusive: true, TimeoutPerNode: true, Access: jobs.Access{Need: rbac.Execute, ClusterInJobData: true}}
}

// clusterServiceCommand is stop_cluster or start_cluster: the service action
// on every node of the cluster, one at a time, in registration order or,
// reversed, in the opposite one: a cluster stops in the reverse of the order
// it starts in. timeout_sec bounds each node's command.
func (n *nodes) clusterServiceCommand(name, action string, reversed bool) jobs.Command {
	c := clusterWide(name)
	c.Validate, c.Handler = jobs.Parsed(decoded[clusterWideData], func(ctx context.Context, job *jobs.Job, d *clusterWideData, log jobs.Logger) (any, error) {
		cl, err := n.clusterOf(ctx, name, job)
		if err != nil {
			return nil, err
		}
		order := slices.Clone(cl.Hosts)
		if reversed {
			slices.Reverse(order)
		}
		return n.serviceOn(ctx, job, log, cl, order, action, remote.FanOut{AbortOnError: d.abort()}, d.timeout())
	})
	return c
}

// rollingNode is one node's part of a rolling restart's result.
type rollingNode struct {
	nodeReport
	// Healthy: the node's service answered its status check after the restart.
	Healthy bool `json:"healthy"`
	// HealthySec is how long after the restart began the node was healthy.
	HealthySec float64 `json:"healthy_sec,omitempty"`
}

// rollingRestartCommand is "rolling_restart": the cluster's nodes restarted
// one at a time in registration order; before the next one, the node must
// answer the health check again (its service's status action exits 0), all
// within timeout_sec per node.
func (n *nodes) rollingRestartCommand() jobs.Command {
	c := clusterWide("rolling_restart")
	c.Validate, c.Handler = jobs.Parsed(decoded[clusterWideData], n.rollingRestart)
	return c
}

func (n *nodes) rollingRestart(ctx context.Context, job *jobs.Job, d *clusterWideData, log jobs.Logger) (any, error) {
	c, err := n.clusterOf(ctx, "rolling_restart", job)
	if err != nil {
		return nil, err
	}
	restart, err := serviceCommandLine(c, "restart")
	if err != nil {
		return nil, err
	}
	status, _ := serviceCommandLine(c, "status")
	wait := d.timeout()
	if wait <= 0 {
		wait = defaultNodeWait
	}
	sudo := remote.Sudo{Enabled: c.Sudo}
	result := map[string]any{"action": "restart", "service": c.ServiceName, "command": restart, "health_check": status}
	report := make([]rollingNode, 0, len(c.Hosts))
	var failed []string
	for i, h := range c.Hosts {
		if ctx.Err() != nil {
			break
		}
		if len(failed) > 0 && d.abort() {
			report = append(report, rollingNode{nodeReport: nodeReport{Hostname: h.Hostname, ExitStatus: -1,
				Error: "not run: an earlier node failed and abort_on_error is set"}})
			continue
		}
		began := time.Now()
		log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Restarting node %d of %d: %s: %s", i+1, len(c.Hosts), h.Hostname, restart))
		rep := n.run(ctx, withProgress(log, i, len(c.Hosts)), nodeRun{client: n.SSH, cluster: c, hosts: []hosts.Host{h},
			req: remote.Request{Command: restart, Sudo: sudo, Timeout: wait}})
		node := rollingNode{nodeReport: rep.Nodes[0]}
		if node.problem == "" {
			answered := func(p probe) bool { return p.answered }
			if ok, last := n.waitUntil(ctx, c, h, began.Add(wait), status, sudo, answered); !ok {
				node.Error = fmt.Sprintf("restarted but not healthy within %s (last check: %s)", wait, last)
			} else {
				node.Healthy, node.HealthySec = true, time.Since(began).Seconds()
				log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("%s: healthy again after %.1fs.", h.Hostname, node.HealthySec))
			}
		}
		if node.Error != "" && ctx.Err() == nil {
			failed = append(failed, h.Hostname+" "+node.Error)
			log.Message(ctx, jobs.MessageFailed, h.Hostname+": "+node.Error+".")
		}
		report = append(report, node)
	}
	result["nodes"] = report
	if ctx.Err() != nil {
		return result, context.Cause(ctx)
	}
	if len(failed) > 0 {
		return result, fmt.Errorf("rolling restart: %d of %d nodes failed: %s", len(failed), len(c.Hosts), strings.Join(failed, "; "))
	}
	log.Progress(ctx, 100)
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Rolling restart of %d nodes of cluster %q: done.", len(c.Hosts), c.Name))
	return result, nil
}

// probe is one check of a node: whether it answered (the command ran and
// exited 0), its output, and why not.
type probe struct {
	answered bool
	stdout   string
	problem  string
}

// check runs command once on h as a probe: its output is not logged.
func (n *nodes) check(ctx context.Context, c *hosts.Cluster, h hosts.Host, command string, sudo remote.Sudo) probe {
	res := n.SSH.RunMany(ctx, []remote.Target{hosts.TargetOf(c, h)},
		remote.Request{Command: command, Sudo: sudo, Timeout: probeTimeout, OutputLimit: minNodeOutputLimit}, remote.FanOut{})
	nr := res.Nodes[0]
	if problem := nodeProblem(ctx, nr); problem != "" {
		return probe{problem: problem}
	}
	return probe{answered: true, stdout: strings.TrimSpace(string(nr.Result.Stdout))}
}

// waitUntil checks h with command every probeInterval until done accepts a
// check, or deadline or ctx ends. It tells whether done accepted one, and
// the last failed check's problem.
func (n *nodes) waitUntil(ctx context.Context, c *hosts.Cluster, h hosts.Host, deadline time.Time, command string,
	sudo remote.Sudo, done func(probe) bool) (bool, string) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	last := "none answered"
	for {
		p := n.check(ctx, c, h, command, sudo)
		if done(p) {
			return true, ""
		}
		if p.problem != "" {
			last = p.problem
		}
		select {
		case <-ctx.Done():
			return false, last
		case <-time.After(probeInterval):
		}
	}
}

// progressShare is a Logger whose progress is step's share of the job's, of
// steps equal steps.
type progressShare struct {
	jobs.Logger
	step, steps int
}

func withProgress(log jobs.Logger, step, steps int) jobs.Logger {
	return progressShare{log, step, steps}
}

func (l progressShare) Progress(ctx context.Context, percent int) {
	l.Logger.Progress(ctx, (l.step*100+percent)/l.steps)
}

// Messages keeps batched writes batched.
func (l progressShare) Messages(ctx context.Context, lines []jobs.LogLine) {
	writeLines(ctx, l.Logger, lines)
}

// bootIDCommand prints the node's boot id, which a reboot changes; nodes
// without one print nothing and are judged by going down and up alone.
const bootIDCommand = "cat /proc/sys/kernel/random/boot_id 2>/dev/null || true"

// rebootData is reboot's job_data: {"clusterid": N, "node": {"hostname": ...}}.
type rebootData struct {
	serviceData
	TimeoutSec float64 `json:"timeout_sec"`
}

func parseReboot(raw json.RawMessage) (*rebootData, error) {
	d, err := decoded[rebootData](raw)
	if err != nil {
		return nil, err
	}
	return d, d.checkNode()
}

// rebootCommand is "reboot": the cluster's reboot command on one node, as
// root (through sudo unless cmon logs in as root). The job then waits until
// the node has gone down and answers again, or its boot id changed, within
// timeout_sec (default 10 minutes), and reports how long that took.
func (n *nodes) rebootCommand() jobs.Command {
	c := clusterWide("reboot")
	c.Validate, c.Handler = jobs.Parsed(parseReboot, n.reboot)
	return c
}

func (n *nodes) reboot(ctx context.Context, job *jobs.Job, d *rebootData, log jobs.Logger) (any, error) {
	c, err := n.clusterOf(ctx, "reboot", job)
	if err != nil {
		return nil, err
	}
	h, ok := findHost(c, d.Node.Hostname)
	if !ok {
		return nil, fmt.Errorf("node %s is not in cluster %q", d.Node.Hostname, c.Name)
	}
	wait := time.Duration(d.TimeoutSec * float64(time.Second))
	if wait <= 0 {
		wait = defaultNodeWait
	}
	command := c.RebootCommand
	if strings.TrimSpace(command) == "" {
		command = hosts.DefaultRebootCommand
	}
	sudo := remote.Sudo{Enabled: c.SSHUser != "root"}
	before := n.check(ctx, c, h, bootIDCommand, remote.Sudo{})
	if !before.answered {
		return nil, fmt.Errorf("node %s was not rebooted: it does not answer: %s", h.Hostname, before.problem)
	}
	result := map[string]any{"hostname": h.Hostname, "command": command, "boot_id_before": before.stdout}
	began := time.Now()
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Rebooting %s: %s", h.Hostname, command))
	n.Log.InfoContext(ctx, "rebooting node", "job_id", job.ID, "cluster_id", c.ID, "node", h.Hostname)
	// The connection may end before the command does, or the command be
	// ended by a signal: the node going down is what a reboot does. Only a
	// command that exited with an error by itself is a failure.
	rep := n.run(ctx, log, nodeRun{client: n.SSH, cluster: c, hosts: []hosts.Host{h},
		req: remote.Request{Command: command, Sudo: sudo, Timeout: probeTimeout, Close: true}})
	result["nodes"] = rep.Nodes
	if ctx.Err() != nil {
		return result, context.Cause(ctx)
	}
	if res := rep.Nodes[0]; len(rep.Responded) == 1 && res.ExitStatus > 0 && res.ExitSignal == "" {
		return result, &jobs.ExitError{Code: max(1, min(res.ExitStatus, 255)),
			Err: fmt.Errorf("reboot of %s failed: %s", h.Hostname, res.problem)}
	}
	var down time.Duration
	back := func(p probe) bool {
		switch {
		case !p.answered:
			if down == 0 {
				down = time.Since(began)
				log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("%s is down (%.1fs after the reboot command).", h.Hostname, down.Seconds()))
			}
			return false
		case down > 0:
			return true
		default: // answering without having been seen down: rebooted if its boot id changed
			return p.stdout != "" && before.stdout != "" && p.stdout != before.stdout
		}
	}
	var last probe
	ok, problem := n.waitUntil(ctx, c, h, began.Add(wait), bootIDCommand, remote.Sudo{}, func(p probe) bool {
		last = p
		return back(p)
	})
	took := time.Since(began)
	result["boot_id_after"], result["down_after_sec"], result["took_sec"] = last.stdout, down.Seconds(), took.Seconds()
	switch {
	case ctx.Err() != nil:
		return result, context.Cause(ctx)
	case !ok && down == 0:
		return result, fmt.Errorf("%s did not go down within %s of the reboot command", h.Hostname, wait)
	case !ok:
		return result, fmt.Errorf("%s did not come back within %s of the reboot command (last check: %s)", h.Hostname, wait, problem)
	}
	// Only now, the reboot confirmed: the node went down and came back.
	n.Log.InfoContext(ctx, "node rebooted", "job_id", job.ID, "cluster_id", c.ID, "node", h.Hostname, "took", took)
	n.event(ctx, c.ID, h.Hostname, fmt.Sprintf("Node %s rebooted by %s (job %d).", h.Hostname, job.UserName, job.ID))
	log.Progress(ctx, 100)
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("%s rebooted: reachable again after %.1fs.", h.Hostname, took.Seconds()))
	return result, nil
}
