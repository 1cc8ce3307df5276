package jobs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/sql"
)

// NodeProcess is a node command a job runs: the process group it runs in on
// the node. It is recorded while the command runs, so that when the
// controller dies meanwhile, recovery (this controller's next start, or a
// survivor) ends the command as a kill would.
type NodeProcess struct {
	ClusterID int64
	Hostname  string
	Pgid      int
	Sudo      bool
}

// LeftoverEnder ends the node commands of a job whose controller died, and
// says in the job's log what it did.
type LeftoverEnder interface {
	EndLeftovers(ctx context.Context, log Logger, ps []NodeProcess)
}

// processLog records a job's node commands while they run (jobLogger).
type processLog interface {
	NodeStarted(ctx context.Context, p NodeProcess)
	NodeEnded(ctx context.Context, p NodeProcess)
}

func (l *jobLogger) NodeStarted(ctx context.Context, p NodeProcess) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := l.s.db.ExecContext(ctx, `INSERT INTO job_processes (job_id, cluster_id, hostname, pgid, sudo, started)
		VALUES (?, ?, ?, ?, ?, ?)`, l.jobID, p.ClusterID, p.Hostname, p.Pgid, boolInt(p.Sudo), sql.Millis(l.s.clock.Now())); err != nil {
		l.s.log.Warn("record a node command", "job_id", l.jobID, "host", p.Hostname, "err", err)
	}
}

func (l *jobLogger) NodeEnded(ctx context.Context, p NodeProcess) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := l.s.db.ExecContext(ctx, "DELETE FROM job_processes WHERE job_id = ? AND hostname = ? AND pgid = ?",
		l.jobID, p.Hostname, p.Pgid); err != nil {
		l.s.log.Warn("forget a node command", "job_id", l.jobID, "host", p.Hostname, "err", err)
	}
}

// recordProcesses makes r record each node's command while it runs, when
// log can: it sets r.req.OnStarted and returns what OnNodeDone calls.
func recordProcesses(ctx context.Context, log Logger, r *nodeRun, index map[string]int) (ended func(i int)) {
	procs, ok := log.(processLog)
	if !ok {
		return func(int) {}
	}
	var mu sync.Mutex
	pgids := make([]int, len(r.hosts))
	process := func(i, pgid int) NodeProcess {
		return NodeProcess{ClusterID: r.cluster.ID, Hostname: r.hosts[i].Hostname, Pgid: pgid, Sudo: r.req.Sudo.Enabled}
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

// queueLeftovers hands a job failed by reap to the loop that ends its node
// commands; it never blocks (reap handles at most maxReap jobs a pass).
func (s *Service) queueLeftovers(jobID int64) {
	if s.cfg.Leftovers == nil {
		return
	}
	select {
	case s.leftovers <- jobID:
	default:
		s.log.Warn("too many jobs to recover at once: their node commands are left running", "job_id", jobID)
	}
}

// endLeftovers ends the recorded node commands of the jobs reap failed,
// until ctx ends.
func (s *Service) endLeftovers(ctx context.Context) {
	defer s.loops.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.leftovers:
			if err := s.endLeftoversOf(ctx, id); err != nil && ctx.Err() == nil {
				s.log.Warn("end the node commands of a recovered job", "job_id", id, "err", err)
			}
		}
	}
}

func (s *Service) endLeftoversOf(ctx context.Context, jobID int64) error {
	rows, err := s.db.QueryContext(ctx, "SELECT cluster_id, hostname, pgid, sudo FROM job_processes WHERE job_id = ? ORDER BY hostname", jobID)
	if err != nil {
		return fmt.Errorf("read node commands: %w", err)
	}
	var ps []NodeProcess
	for rows.Next() {
		var p NodeProcess
		if err := rows.Scan(&p.ClusterID, &p.Hostname, &p.Pgid, &p.Sudo); err != nil {
			rows.Close()
			return fmt.Errorf("read node commands: %w", err)
		}
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read node commands: %w", err)
	}
	if len(ps) == 0 {
		return nil
	}
	s.cfg.Leftovers.EndLeftovers(ctx, &jobLogger{s: s, jobID: jobID}, ps)
	if _, err := s.db.ExecContext(ctx, "DELETE FROM job_processes WHERE job_id = ?", jobID); err != nil {
		return fmt.Errorf("forget node commands: %w", err)
	}
	return nil
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
func NodeLeftovers(d NodeDeps) LeftoverEnder { return &nodes{d.withDefaults()} }

// EndLeftovers ends each process group on its node, as a kill of the job
// would have, and logs each outcome in the job's log.
func (n *nodes) EndLeftovers(ctx context.Context, log Logger, ps []NodeProcess) {
	for _, p := range ps {
		status, text := n.endLeftover(ctx, p)
		log.Message(ctx, status, text)
	}
}

// endLeftover ends one process group and words the outcome for the job log.
func (n *nodes) endLeftover(ctx context.Context, p NodeProcess) (MessageStatus, string) {
	what := fmt.Sprintf("%s: the command left running when the controller stopped (process group %d)", p.Hostname, p.Pgid)
	c, err := n.Inventory.Get(ctx, p.ClusterID)
	if err != nil {
		return MessageWarning, fmt.Sprintf("%s could not be ended: its cluster %d is gone.", what, p.ClusterID)
	}
	h, ok := findHost(c, p.Hostname)
	if !ok {
		return MessageWarning, fmt.Sprintf("%s could not be ended: the host is no longer in cluster %s.", what, c.Name)
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
		return MessageWarning, fmt.Sprintf("%s could not be ended: %s.", what, describeNodeError(ctx, nr))
	case nr.Result == nil || nr.Result.ExitStatus != 0:
		return MessageWarning, fmt.Sprintf("%s could not be ended: %s.", what, nodeProblem(ctx, nr))
	case strings.TrimSpace(string(nr.Result.Stdout)) == leftoverGone:
		return MessageSuccess, what + " had already ended."
	}
	return MessageSuccess, what + " was ended (TERM, then KILL after " + seconds(leftoverGrace) + ")."
}
