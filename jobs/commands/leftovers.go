package commands

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
)

// processLog records a job's node commands while they run (the engine's Logger does).
type processLog interface {
	NodeStarted(ctx context.Context, p jobs.NodeProcess)
	NodeEnded(ctx context.Context, p jobs.NodeProcess)
}

// recordProcesses makes r record each node's command while it runs, when
// log can: it sets r.req.OnStarted and returns what OnNodeDone calls.
func recordProcesses(ctx context.Context, log jobs.Logger, r *nodeRun, index map[string]int) (ended func(i int)) {
	procs, ok := log.(processLog)
	if !ok {
		return func(int) {}
	}
	var mu sync.Mutex
	pgids := make([]int, len(r.hosts))
	process := func(i, pgid int) jobs.NodeProcess {
		return jobs.NodeProcess{ClusterID: r.cluster.ID, Hostname: r.hosts[i].Hostname, Pgid: pgid, Sudo: r.req.Sudo.Enabled}
	}
	r.req.OnStarted = func(node string, pgid int) {
		i, ok := index[node]
		if !ok {
			return
		}
		mu.Lock()
		pgids[i] = pgid
		mu.Unlock()
		procs.NodeStarted(ctx, process(i, pgid))
	}
	return func(i int) {
		mu.Lock()
		pgid := pgids[i]
		mu.Unlock()
		if pgid != 0 {
			procs.NodeEnded(ctx, process(i, pgid))
		}
	}
}

// leftoverGrace is how long a left-over command gets between TERM and KILL.
const leftoverGrace = 5 * time.Second

// Answers of the command that ends a left-over process group.
const (
	leftoverEnded = "ended"
	leftoverGone  = "gone"
)

// NodeLeftovers ends left-over node commands over d's SSH client (with
// strict host keys), for Config.Leftovers.
func NodeLeftovers(d NodeDeps) jobs.LeftoverEnder { return &nodes{d.withDefaults()} }

// EndLeftovers ends each process group on its node, as a kill of the job
// would have, and logs each outcome in the job's log.
func (n *nodes) EndLeftovers(ctx context.Context, log jobs.Logger, ps []jobs.NodeProcess) {
	for _, p := range ps {
		status, text := n.endLeftover(ctx, p)
		log.Message(ctx, status, text)
	}
}

// endLeftover ends one process group and words the outcome for the job log.
func (n *nodes) endLeftover(ctx context.Context, p jobs.NodeProcess) (jobs.MessageStatus, string) {
	what := fmt.Sprintf("%s: the command left running when the controller stopped (process group %d)", p.Hostname, p.Pgid)
	c, err := n.Inventory.Get(ctx, p.ClusterID)
	if err != nil {
		return jobs.MessageWarning, fmt.Sprintf("%s could not be ended: its cluster %d is gone.", what, p.ClusterID)
	}
	h, ok := findHost(c, p.Hostname)
	if !ok {
		return jobs.MessageWarning, fmt.Sprintf("%s could not be ended: the host is no longer in cluster %s.", what, c.Name)
	}
	// Only a group that still exists is ended: one that ended with the
	// connection that carried it needs nothing.
	command := fmt.Sprintf("kill -0 -%d 2>/dev/null || { echo %s; exit 0; }; echo %s; %s",
		p.Pgid, leftoverGone, leftoverEnded, remote.EndGroupCommand(p.Pgid, leftoverGrace))
	res := n.SSH.RunMany(ctx, []remote.Target{hosts.TargetOf(c, h)}, remote.Request{Command: command,
		Sudo: remote.Sudo{Enabled: p.Sudo}, Timeout: leftoverGrace + n.FactsTimeout}, remote.FanOut{})
	nr := res.Nodes[0]
	switch {
	case nr.Err != nil:
		return jobs.MessageWarning, fmt.Sprintf("%s could not be ended: %s.", what, describeNodeError(ctx, nr))
	case nr.Result == nil || nr.Result.ExitStatus != 0:
		return jobs.MessageWarning, fmt.Sprintf("%s could not be ended: %s.", what, nodeProblem(ctx, nr))
	case strings.TrimSpace(string(nr.Result.Stdout)) == leftoverGone:
		return jobs.MessageSuccess, what + " had already ended."
	}
	return jobs.MessageSuccess, what + fmt.Sprintf(" was ended (TERM, then KILL after %g s).", leftoverGrace.Seconds())
}
