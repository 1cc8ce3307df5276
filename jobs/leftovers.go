package jobs

import (
	"context"
	"fmt"
	"time"

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

// NodeStarted records a node command the job runs, for recovery to end
// should this controller die meanwhile. Commands that run node commands
// check their Logger for it (and NodeEnded).
func (l *jobLogger) NodeStarted(ctx context.Context, p NodeProcess) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := l.s.db.ExecContext(ctx, `INSERT INTO job_processes (job_id, cluster_id, hostname, pgid, sudo, started)
		VALUES (?, ?, ?, ?, ?, ?)`, l.jobID, p.ClusterID, p.Hostname, p.Pgid, boolInt(p.Sudo), sql.Millis(l.s.clock.Now())); err != nil {
		l.s.log.Warn("record a node command", "job_id", l.jobID, "host", p.Hostname, "err", err)
	}
}

// NodeEnded forgets a node command once it has ended.
func (l *jobLogger) NodeEnded(ctx context.Context, p NodeProcess) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := l.s.db.ExecContext(ctx, "DELETE FROM job_processes WHERE job_id = ? AND hostname = ? AND pgid = ?",
		l.jobID, p.Hostname, p.Pgid); err != nil {
		l.s.log.Warn("forget a node command", "job_id", l.jobID, "host", p.Hostname, "err", err)
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
