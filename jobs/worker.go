package jobs

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/sql"
)

// worker claims and runs jobs until the loops stop. After a successful claim it
// wakes another idle worker, so a burst of jobs fans out over all workers.
func (s *Service) worker(ctx context.Context) {
	defer s.workers.Done()
	var outageWait time.Duration
	for {
		if ctx.Err() != nil {
			return
		}
		j, err := s.claim(ctx)
		if err != nil && ctx.Err() == nil {
			// Lock waits end up here on MySQL: retry soon, not after a poll;
			// an unreachable database, later and later.
			wait := min(s.cfg.PollInterval, 200*time.Millisecond)
			switch {
			case s.outage.failed(s.log, err):
				outageWait = min(max(2*outageWait, wait), maxOutageWait)
				wait = outageWait
			case sql.IsConflict(err):
				// Other controllers won the jobs at the head of the queue
				// each time (on Galera, certification): routine under load.
				s.log.Debug("claim job lost to other controllers", "err", err)
			default:
				s.log.Warn("claim job", "err", err)
			}
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		outageWait = 0
		s.outage.answered(s.log)
		if j == nil {
			if s.idleHook != nil {
				s.idleHook()
			}
			timer := time.NewTimer(s.cfg.PollInterval)
			select {
			case <-s.wake:
			case <-timer.C:
			case <-ctx.Done():
			}
			timer.Stop()
			continue
		}
		s.poke()
		s.run(j)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// claim takes the oldest runnable DEFINED job for this controller, or returns
// nil. Runnable: a command this controller knows, and for an exclusive job no
// other exclusive job active on its cluster. MySQL/MariaDB skip rows another
// controller is claiming; SQLite has one writer at a time. The exclusive_lock
// unique index settles the race of two controllers claiming exclusive jobs of
// one cluster at once: the loser gets a unique violation and tries again.
func (s *Service) claim(ctx context.Context) (*Job, error) {
	names, nameArgs := sql.Placeholders(s.reg.Known())
	query := `SELECT j.job_id, j.cluster_id, j.is_exclusive FROM jobs j
		WHERE j.status = ? AND j.command IN (` + names + `)
		AND (j.is_exclusive = 0 OR j.cluster_id = 0 OR NOT EXISTS
			(SELECT 1 FROM jobs r WHERE r.exclusive_lock = j.cluster_id))
		ORDER BY j.job_id LIMIT 1` + s.db.ForUpdateSkipLocked()
	args := append([]any{StatusDefined}, nameArgs...)
	// A plain read first: idle polls then cost no write lock (SQLite) and no
	// locking read (MySQL).
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM jobs WHERE status = ? LIMIT 1", StatusDefined).Scan(&one)
	if errors.Is(err, stdsql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for defined jobs: %w", err)
	}
	for attempt := 0; attempt < 3; attempt++ {
		var j *Job
		err := s.db.InTx(ctx, func(tx *stdsql.Tx) error {
			j = nil // a try that lost to a conflict must not leave its job behind
			var id, clusterID int64
			var exclusive int
			err := tx.QueryRowContext(ctx, query, args...).Scan(&id, &clusterID, &exclusive)
			if errors.Is(err, stdsql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("select a job to claim: %w", err)
			}
			var lock any // NULL unless the job holds its cluster
			if exclusive != 0 && clusterID != 0 {
				lock = clusterID
			}
			// Only while this run's own heartbeat is current: a controller
			// back from a database outage must not take jobs that the others
			// would fail as its before its next heartbeat says it is alive.
			res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, status_text = ?, controller_id = ?,
				instance_id = ?, exclusive_lock = ? WHERE job_id = ? AND status = ?
				AND EXISTS (SELECT 1 FROM job_controllers c WHERE c.controller_id = ? AND c.instance_id = ? AND c.heartbeat >= ?)`,
				StatusDequeued, TextDequeued, s.cfg.ControllerID, s.instanceID, lock, id, StatusDefined,
				s.cfg.ControllerID, s.instanceID, sql.Millis(s.clock.Now().Add(-s.cfg.StaleAfter/2)))
			if err != nil {
				return fmt.Errorf("claim job %d: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil
			}
			j, err = getJob(ctx, tx, id)
			return err
		})
		if sql.IsUniqueViolation(err) {
			continue // another controller took the cluster just now
		}
		if j != nil && err == nil {
			s.log.Debug("job claimed", "job_id", j.ID, "attempt", attempt)
		}
		return j, err
	}
	return nil, nil
}

// run executes a claimed job and records its outcome; it never panics.
func (s *Service) run(j *Job) {
	log := s.log.With("job_id", j.ID, "command", j.Command)
	// The job's end is recorded under the engine's context, not the job's:
	// a kill must not cut the retries short, the end of a drain does.
	engine := s.jobsContext()
	ctx, cancel := context.WithCancelCause(engine)
	defer cancel(nil)
	s.mu.Lock()
	s.running[j.ID] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, j.ID)
		s.mu.Unlock()
	}()

	started, marked, err := s.markRunning(engine, j)
	if err != nil {
		log.Error("mark job running", "err", err)
		s.finish(engine, j, outcome{status: StatusFailed, text: "Could not start the job: " + err.Error(), exitCode: 1})
		return
	}
	if !marked {
		instance, killedBy := s.heldBy(j.ID)
		if instance != s.instanceID {
			// On Galera two controllers' claims of one job can both report
			// success (about 2 in 100 under contention); the row names one
			// run, and that one runs it.
			log.Info("job claimed by another controller as well: it runs there")
			return
		}
		// Killed between claim and start: do not run it.
		s.finish(engine, j, killedOutcome(killedBy))
		return
	}
	j.Status, j.StatusText, j.Started = StatusRunning, TextRunning, started
	s.cfg.Observer.JobStarted(j, started.Sub(j.Created))
	log.Info("job started")

	cmd, ok := s.reg.Lookup(j.Command)
	if !ok { // cannot happen: claim selects known commands only
		s.finish(engine, j, outcome{status: StatusFailed, text: fmt.Sprintf("unknown job command %q", j.Command), exitCode: 1})
		return
	}
	if err := s.permit(ctx, j); err != nil {
		var refused *RefusedError
		if !errors.As(err, &refused) {
			log.Error("check the job's owner", "err", err)
			s.finish(engine, j, outcome{status: StatusFailed, text: "Could not check the job's owner.", exitCode: 1})
			return
		}
		log.Warn("job refused: its owner may not run it", "reason", refused.Reason)
		if j.ParentJobID != 0 {
			s.pauseRefused(ctx, j.ParentJobID, refused.Reason)
		}
		s.finish(engine, j, outcome{status: StatusFailed, text: sql.Clip("Not run: "+refused.Reason+".", 255), exitCode: 1})
		return
	}
	timeout := s.cfg.MaxRunTime
	if t := jobTimeout(j.JobData, cmd.TimeoutPerNode); t > 0 && t < timeout {
		timeout = t
	}
	tctx, tcancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %s", ErrTimedOut, seconds(timeout)))
	defer tcancel()

	result, abandoned, err := s.invoke(tctx, cmd.Handler, j, log)
	o := s.judge(tctx, timeout, err, abandoned)
	o.result = encodeResult(result, log)
	s.finish(engine, j, o)
}

// markRunning moves a claimed job to RUNNING, unless it was killed or taken
// from this controller since the claim. The job has not started: while the
// database is unreachable the write is tried again, and the job runs once
// it is recorded, rather than failing for the outage.
func (s *Service) markRunning(ctx context.Context, j *Job) (started time.Time, marked bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, finishRetryFor)
	defer cancel()
	err = s.whileUnreachable(ctx, func() error {
		dbctx, cancel := dbContext()
		defer cancel()
		started = s.clock.Now()
		res, err := s.db.ExecContext(dbctx, `UPDATE jobs SET status = ?, status_text = ?, started = ?
			WHERE job_id = ? AND instance_id = ? AND status = ? AND kill_requested = 0`,
			StatusRunning, TextRunning, sql.Millis(started), j.ID, s.instanceID, StatusDequeued)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		marked = n == 1
		return nil
	})
	return started, marked, err
}

// jobsContext is the parent of running jobs' contexts.
func (s *Service) jobsContext() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobsCtx
}

// outcome is how a job ended.
type outcome struct {
	status   Status
	text     string
	exitCode int
	// signal is what a killed or timed-out job's commands were ended with.
	signal string
	result json.RawMessage
}

// The exit codes of jobs that did not end by themselves, as a shell reports
// a process ended by SIGTERM and as timeout(1) reports a timeout.
const (
	killedExitCode   = 128 + 15
	timedOutExitCode = 124
	endSignal        = "TERM"
)

// killedOutcome is the end of a job killed by user by.
func killedOutcome(by string) outcome {
	return outcome{status: StatusAborted, text: abortedText(by), exitCode: killedExitCode, signal: endSignal}
}

// invoke calls the handler, turning a panic into an error. If ctx ends and the
// handler does not return within KillGrace, it is abandoned (its goroutine is
// left behind) so that the job still ends.
func (s *Service) invoke(ctx context.Context, h Handler, j *Job, log *slog.Logger) (result any, abandoned bool, err error) {
	type ret struct {
		result any
		err    error
	}
	done := make(chan ret, 1)
	go func() {
		var r ret
		jc := *j // the handler's copy: it may not change the engine's view
		if fault := remote.Contain(func() { r.result, r.err = h.Run(ctx, &jc, &jobLogger{s: s, jobID: j.ID}) }); fault != nil {
			log.Error("job command panicked", remote.FaultAttrs(fault)...)
			r = ret{err: fmt.Errorf("job command panicked: %v", fault.(*remote.PanicError).Value)}
		}
		done <- r
	}()
	select {
	case r := <-done:
		return r.result, false, r.err
	case <-ctx.Done():
	}
	grace := time.NewTimer(s.cfg.KillGrace)
	defer grace.Stop()
	select {
	case r := <-done:
		return r.result, false, r.err
	case <-grace.C:
		log.Error("job command ignored its cancellation: abandoned", "grace", s.cfg.KillGrace)
		return nil, true, context.Cause(ctx)
	}
}

// judge decides the outcome from the handler's return and why its context
// ended. A handler that returned nil finished, even if a kill arrived late.
func (s *Service) judge(ctx context.Context, timeout time.Duration, err error, abandoned bool) outcome {
	if err == nil && !abandoned {
		return outcome{status: StatusFinished, text: TextFinished}
	}
	cause := context.Cause(ctx)
	var killed *killedError
	switch {
	case ctx.Err() != nil && errors.As(cause, &killed):
		return killedOutcome(killed.by)
	case ctx.Err() != nil && errors.Is(cause, ErrTimedOut):
		return outcome{status: StatusFailed, text: fmt.Sprintf("Job timed out after %s.", seconds(timeout)),
			exitCode: timedOutExitCode, signal: endSignal}
	case ctx.Err() != nil && errors.Is(cause, ErrControllerStopped):
		return outcome{status: StatusFailed, text: TextControllerStopped, exitCode: 1}
	}
	o := outcome{status: StatusFailed, text: err.Error(), exitCode: exitCode(err)}
	if ee := (*ExitError)(nil); errors.As(err, &ee) {
		o.signal = ee.Signal
	}
	return o
}

// seconds renders a duration as "N s", the unit of timeout_sec.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

// encodeResult stores a handler's result as a JSON object; other JSON values
// are wrapped as {"result": value}.
func encodeResult(result any, log *slog.Logger) json.RawMessage {
	if result == nil {
		return nil
	}
	b, err := json.Marshal(result)
	if err != nil {
		log.Warn("encode job result", "err", err)
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		if string(b) == "null" {
			return nil
		}
		b, _ = json.Marshal(map[string]json.RawMessage{"result": b})
	}
	return b
}

// withExit adds a job's exit code and signal to its result object, so that
// the result alone tells how the job ended.
func withExit(result json.RawMessage, code int, signal string) json.RawMessage {
	fields := map[string]json.RawMessage{}
	if len(result) > 0 && json.Unmarshal(result, &fields) != nil {
		return result
	}
	fields["exit_code"], _ = json.Marshal(code)
	fields["exit_signal"], _ = json.Marshal(signal)
	b, _ := json.Marshal(fields)
	return b
}

// finish records a job's end, releases its cluster, and logs the reason as a
// job message when it did not finish well. The update is conditional on this
// controller still holding the job: a job failed meanwhile by another
// controller (this one looked dead) keeps that verdict. A failing database is
// retried for a while, since nobody else ends a job of a live controller,
// until ctx ends: a stopping engine is not held up by a database that is down.
func (s *Service) finish(ctx context.Context, j *Job, o outcome) {
	log := s.log.With("job_id", j.ID, "command", j.Command)
	if o.signal != "" {
		o.result = withExit(o.result, o.exitCode, o.signal)
	}
	var ended time.Time
	var n int64
	retryCtx, cancel := context.WithTimeout(ctx, finishRetryFor)
	defer cancel()
	err := retryWrite(retryCtx, func(error) bool { return true }, func(err error) {
		log.Warn("record job end: retrying", "status", o.status, "err", err)
	}, func() error {
		var err error
		ended = s.clock.Now()
		n, err = s.recordEnd(j.ID, o, ended)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			log.Error("record job end: giving up, the engine is stopping; the job stays active until a controller recovers it",
				"status", o.status, "err", err)
		} else {
			log.Error("record job end: giving up, the job stays active until this controller restarts",
				"status", o.status, "err", err)
		}
		return
	}
	if n == 0 {
		log.Warn("job was ended by another controller meanwhile", "status", o.status)
		return
	}
	var ran time.Duration
	if !j.Started.IsZero() {
		ran = ended.Sub(j.Started)
	}
	s.cfg.Observer.JobEnded(j, o.status, ran)
	switch o.status {
	case StatusFinished:
		log.Info("job finished", "duration", ended.Sub(j.Started))
	case StatusAborted:
		log.Info("job aborted", "reason", o.text)
	default:
		log.Info("job failed", "reason", o.text, "exit_code", o.exitCode)
	}
}

// finishRetryFor bounds how long finish retries a failing database.
const finishRetryFor = 2 * time.Minute

// recordEnd is finish's update; it reports how many rows it changed (0 or 1).
func (s *Service) recordEnd(id int64, o outcome, ended time.Time) (int64, error) {
	ctx, cancel := dbContext()
	defer cancel()
	progress, hasProgress := "progress_percent", "has_progress"
	if o.status == StatusFinished {
		progress, hasProgress = "100", "1"
	}
	var result string
	if o.result != nil {
		result = string(o.result)
	}
	active, args := sql.Placeholders(activeStatuses)
	var n int64
	err := s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, status_text = ?, exit_code = ?, exit_signal = ?, ended = ?,
			result = ?, exclusive_lock = NULL, progress_percent = `+progress+`, has_progress = `+hasProgress+`
			WHERE job_id = ? AND instance_id = ? AND status IN (`+active+`)`,
			append([]any{o.status, o.text, o.exitCode, o.signal, sql.Millis(ended), result, id, s.instanceID}, args...)...)
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n == 0 || o.status == StatusFinished {
			return nil
		}
		// With the end, so that whoever sees the job ended also reads why.
		st := MessageFailed
		if o.status == StatusAborted {
			st = MessageWarning
		}
		return insertMessage(ctx, tx, id, ended, st, o.text)
	})
	if err != nil {
		return 0, fmt.Errorf("record end of job %d: %w", id, err)
	}
	return n, nil
}

// dbContext bounds an engine write that must happen even while stopping.
func dbContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// heldBy reads which controller run holds a job and who asked to kill it.
func (s *Service) heldBy(id int64) (instance, killedBy string) {
	ctx, cancel := dbContext()
	defer cancel()
	_ = s.db.QueryRowContext(ctx, "SELECT instance_id, killed_by FROM jobs WHERE job_id = ?", id).Scan(&instance, &killedBy)
	return instance, killedBy
}

// jobLogger is the Logger of one running job.
type jobLogger struct {
	s     *Service
	jobID int64
}

func (l *jobLogger) Message(ctx context.Context, st MessageStatus, text string) {
	l.s.addMessage(ctx, l.jobID, st, text)
}

// Messages appends lines in one statement per maxRowsPerInsert lines.
func (l *jobLogger) Messages(ctx context.Context, lines []LogLine) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := l.s.whileUnreachable(ctx, func() error { return insertMessages(ctx, l.s.db, l.jobID, l.s.clock.Now(), lines) })
	if err != nil {
		l.s.log.Warn("store job messages", "job_id", l.jobID, "lines", len(lines), "err", err)
	}
}

func (l *jobLogger) Progress(ctx context.Context, percent int) {
	percent = max(0, min(100, percent))
	l.update(ctx, "has_progress = 1, progress_percent = ?", percent)
}

func (l *jobLogger) StatusText(ctx context.Context, text string) {
	l.update(ctx, "status_text = ?", text)
}

func (l *jobLogger) update(ctx context.Context, set string, arg any) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := l.s.db.ExecContext(ctx, "UPDATE jobs SET "+set+" WHERE job_id = ? AND status = ?", arg, l.jobID, StatusRunning)
	if err != nil {
		l.s.log.Warn("update running job", "job_id", l.jobID, "err", err)
	}
}

var _ Logger = (*jobLogger)(nil)
