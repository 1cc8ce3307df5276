package jobs

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cmon-dev/cmon/sql"
	"github.com/google/uuid"
)

// Start registers this controller's run, fails the jobs that were running under
// controllers that are gone (this controller's previous run, or one whose
// heartbeat is stale), and starts the workers, the scheduler and the
// housekeeping loops. DEFINED and SCHEDULED jobs left from before simply run.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateNew {
		s.mu.Unlock()
		return errors.New("jobs: service already started")
	}
	s.instanceID = uuid.NewString()
	s.mu.Unlock()

	if err := s.register(ctx); err != nil {
		return err
	}
	if _, err := s.reap(ctx); err != nil {
		return err
	}

	loopCtx, stopLoops := context.WithCancel(context.Background())
	houseCtx, stopHouse := context.WithCancel(context.Background())
	jobsCtx, stopJobs := context.WithCancelCause(context.Background())
	s.mu.Lock()
	s.state, s.stopLoops, s.stopHouse, s.jobsCtx, s.stopJobs = stateStarted, stopLoops, stopHouse, jobsCtx, stopJobs
	s.mu.Unlock()

	for range s.cfg.Workers {
		s.workers.Add(1)
		go s.worker(loopCtx)
	}
	s.every(loopCtx, s.cfg.SchedulerInterval, true, "scheduler", func(ctx context.Context) error {
		_, err := s.fireDue(ctx)
		return err
	})
	if s.cfg.Retention.Interval > 0 {
		s.every(loopCtx, s.cfg.Retention.Interval, false, "retention", func(ctx context.Context) error {
			_, err := s.retain(ctx)
			return err
		})
	}
	s.every(houseCtx, s.cfg.HeartbeatInterval, false, "heartbeat", s.heartbeat)
	s.every(houseCtx, s.cfg.PollInterval, false, "kill poll", s.pollKills)
	s.loops.Add(1)
	go s.endLeftovers(houseCtx)
	s.poke()
	s.log.InfoContext(ctx, "job engine started", "instance_id", s.instanceID, "workers", s.cfg.Workers,
		"commands", s.reg.Names())
	return nil
}

// Stop stops claiming jobs and lets running ones finish until ctx ends (or
// DrainTimeout, if ctx has no deadline); jobs still running then have their
// context cancelled and are marked FAILED, "The controller stopped while the
// job was running.". The Service cannot be started again.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateStarted {
		s.state = stateStopped
		s.mu.Unlock()
		return nil
	}
	s.state = stateStopped
	s.mu.Unlock()

	s.stopLoops()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.DrainTimeout)
		defer cancel()
	}
	drained := make(chan struct{})
	go func() { s.workers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.running)
		s.mu.Unlock()
		s.log.Warn("stopping with jobs still running: cancelling them", "jobs", n)
		s.stopJobs(ErrControllerStopped)
		<-drained // bounded: handlers get KillGrace, then their jobs are ended without them
	}
	s.stopJobs(ErrControllerStopped)
	s.stopHouse()
	s.loops.Wait()

	dctx, cancel := dbContext()
	defer cancel()
	if _, err := s.db.ExecContext(dctx, "DELETE FROM job_controllers WHERE controller_id = ? AND instance_id = ?",
		s.cfg.ControllerID, s.instanceID); err != nil {
		return fmt.Errorf("unregister controller: %w", err)
	}
	s.log.Info("job engine stopped", "instance_id", s.instanceID)
	return nil
}

// every runs fn every interval until ctx ends; errors are logged, and the next
// pass tries again.
func (s *Service) every(ctx context.Context, interval time.Duration, now bool, what string, fn func(context.Context) error) {
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if now {
				switch err := fn(ctx); {
				case err == nil:
					s.outage.answered(s.log)
				case ctx.Err() != nil, s.outage.failed(s.log, err):
				default:
					s.log.Warn("job engine "+what, "err", err)
				}
			}
			now = true
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// register records this controller's new run; a row left by its previous run is
// replaced, which marks that run dead.
func (s *Service) register(ctx context.Context) error {
	now := sql.Millis(s.clock.Now())
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM job_controllers WHERE controller_id = ?", s.cfg.ControllerID); err != nil {
			return fmt.Errorf("register controller: %w", err)
		}
		a := s.cfg.Announce
		if _, err := tx.ExecContext(ctx, `INSERT INTO job_controllers (controller_id, instance_id, started, heartbeat,
			addresses, port, version, hostname) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, s.cfg.ControllerID, s.instanceID, now, now,
			sql.Clip(a.Addresses, 255), a.Port, sql.Clip(a.Version, 64), sql.Clip(a.Hostname, 255)); err != nil {
			return fmt.Errorf("register controller: %w", err)
		}
		return nil
	})
}

// heartbeat tells the other controllers this one is alive, then fails the jobs
// of those that are not.
func (s *Service) heartbeat(ctx context.Context) error {
	now := s.clock.Now()
	res, err := s.db.ExecContext(ctx, "UPDATE job_controllers SET heartbeat = ? WHERE controller_id = ? AND instance_id = ?",
		sql.Millis(now), s.cfg.ControllerID, s.instanceID)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var other string
		err := s.db.QueryRowContext(ctx, "SELECT instance_id FROM job_controllers WHERE controller_id = ?", s.cfg.ControllerID).Scan(&other)
		if err == nil {
			s.log.Error("another controller runs with this controller id: give each controller its own",
				"other_instance_id", other)
		} else if errors.Is(err, stdsql.ErrNoRows) {
			if err := s.register(ctx); err != nil {
				return err
			}
		}
	}
	// Rows of controllers gone for a day only clutter the table; their jobs, if
	// any are left, are reaped because their row is missing.
	if _, err := s.db.ExecContext(ctx, "DELETE FROM job_controllers WHERE heartbeat < ? AND controller_id <> ?",
		sql.Millis(now.Add(-24*time.Hour)), s.cfg.ControllerID); err != nil {
		return fmt.Errorf("forget old controllers: %w", err)
	}
	_, err = s.reap(ctx)
	return err
}

// maxReap bounds the jobs one pass of reap fails.
const maxReap = 500

// reap fails DEQUEUED and RUNNING jobs whose controller run is gone: a previous
// run of this controller id, or a run whose heartbeat is missing or stale. This
// controller's own running jobs are never reaped: it knows them.
func (s *Service) reap(ctx context.Context) (int, error) {
	now := s.clock.Now()
	active, args := sql.Placeholders(activeStatuses)
	rows, err := s.db.QueryContext(ctx, `SELECT j.job_id, j.instance_id FROM jobs j
		WHERE j.status IN (`+active+`) AND j.instance_id <> ? AND (j.controller_id = ? OR NOT EXISTS
			(SELECT 1 FROM job_controllers c WHERE c.controller_id = j.controller_id
				AND c.instance_id = j.instance_id AND c.heartbeat >= ?))
		ORDER BY j.job_id LIMIT ?`,
		append(args, s.instanceID, s.cfg.ControllerID, sql.Millis(now.Add(-s.cfg.StaleAfter)), maxReap)...)
	if err != nil {
		return 0, fmt.Errorf("find jobs of dead controllers: %w", err)
	}
	type orphan struct {
		id       int64
		instance string
	}
	var orphans []orphan
	for rows.Next() {
		var o orphan
		if err := rows.Scan(&o.id, &o.instance); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find jobs of dead controllers: %w", err)
		}
		orphans = append(orphans, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find jobs of dead controllers: %w", err)
	}
	n := 0
	for _, o := range orphans {
		res, err := s.db.ExecContext(ctx, `UPDATE jobs SET status = ?, status_text = ?, exit_code = 1, ended = ?,
			exclusive_lock = NULL WHERE job_id = ? AND instance_id = ? AND status IN (`+active+`)`,
			append([]any{StatusFailed, TextControllerStopped, sql.Millis(now), o.id, o.instance}, args...)...)
		if err != nil {
			return n, fmt.Errorf("fail job %d of a dead controller: %w", o.id, err)
		}
		if k, _ := res.RowsAffected(); k == 1 {
			n++
			s.addMessage(ctx, o.id, MessageFailed, TextControllerStopped)
			s.log.Warn("job failed: its controller is gone", "job_id", o.id, "dead_instance_id", o.instance)
			s.queueLeftovers(o.id)
		}
	}
	return n, nil
}

// pollKills notices kills requested through other controllers for the jobs
// this one runs (kills through this one cancel at once).
func (s *Service) pollKills(ctx context.Context) error {
	s.mu.Lock()
	n := len(s.running)
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	active, args := sql.Placeholders(activeStatuses)
	rows, err := s.db.QueryContext(ctx, `SELECT job_id, killed_by FROM jobs
		WHERE status IN (`+active+`) AND instance_id = ? AND kill_requested = 1`, append(args, s.instanceID)...)
	if err != nil {
		return fmt.Errorf("poll kill requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var by string
		if err := rows.Scan(&id, &by); err != nil {
			return fmt.Errorf("poll kill requests: %w", err)
		}
		s.cancelLocal(id, by)
	}
	return rows.Err()
}
