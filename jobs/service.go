package jobs

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cmon-dev/cmon/sql"
)

// Service is the job engine of one controller: the API the RPC layer calls
// (Create, Get, List, Log, Kill, Delete, Clone, SetStatus) and, between Start
// and Stop, the workers, the scheduler and the housekeeping loops. Several
// Services (controllers) may share one database: the database is the queue.
type Service struct {
	db    *sql.DB
	reg   *Registry
	cfg   Config
	log   *slog.Logger
	clock Clock
	// wake tells an idle worker that a job may be waiting; it holds one token.
	wake chan struct{}
	// retention is cfg.Retention, changeable while running (SetRetention).
	retention atomic.Pointer[Retention]
	// outage says whether the database is unreachable, for the loops.
	outage dbOutage

	mu         sync.Mutex
	running    map[int64]context.CancelCauseFunc // jobs this controller runs
	instanceID string                            // this run's id, set by Start
	state      int                               // stateNew, stateStarted, stateStopped
	stopLoops  context.CancelFunc                // ends claiming and the background loops
	stopHouse  context.CancelFunc                // ends heartbeats and kill polling, after the drain
	jobsCtx    context.Context                   // parent of running jobs' contexts
	stopJobs   context.CancelCauseFunc           // cancels running jobs at the end of a drain
	workers    sync.WaitGroup
	loops      sync.WaitGroup
	// leftovers are the jobs reap failed whose node commands are to be ended.
	leftovers chan int64
	// idleHook, when set (by tests, before Start), is called by a worker that
	// found no job, just before it waits for a wake-up or the next poll.
	idleHook func()
}

const (
	stateNew = iota
	stateStarted
	stateStopped
)

// New makes a Service on a migrated database with the commands of reg.
func New(db *sql.DB, reg *Registry, cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("jobs: a command registry is required")
	}
	s := &Service{
		db:        db,
		reg:       reg,
		cfg:       cfg,
		log:       cfg.Logger, // the caller's logger names this controller (cmon: "controller")
		clock:     cfg.Clock,
		wake:      make(chan struct{}, 1),
		running:   map[int64]context.CancelCauseFunc{},
		leftovers: make(chan int64, maxReap),
	}
	s.SetRetention(cfg.Retention)
	return s, nil
}

// SetRetention changes how long and how many ended jobs are kept, from the
// next sweep on; what r leaves zero takes the defaults. The interval
// between sweeps is the one the engine started with.
func (s *Service) SetRetention(r Retention) {
	r = r.withDefaults()
	s.retention.Store(&r)
}

// poke wakes one idle worker, if any; it never blocks.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Registry is the Service's command registry.
func (s *Service) Registry() *Registry { return s.reg }

// CreateRequest is a new job as a client asks for it.
type CreateRequest struct {
	ClusterID int64
	Title     string // default: the command name
	Command   string
	JobData   json.RawMessage // a JSON object; absent or null is {}
	Tags      []string
	// Scheduled delays the start (a time in the past is refused); with a
	// Recurrence it is the earliest firing.
	Scheduled time.Time
	// Recurrence (5-field cron, or @hourly style) makes a recurring template
	// that creates a job at every firing, evaluated in TimeZone (IANA; "" UTC).
	Recurrence string
	TimeZone   string
	Owner      Owner
}

// Create validates and stores a job. A plain job is DEFINED and starts as soon
// as a worker is free; one with a future start time or a recurrence is
// SCHEDULED. Bad input returns an *InvalidError and stores nothing.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Job, error) {
	d, err := s.reg.Draft(req.Command, req.JobData, req.ClusterID)
	if err != nil {
		return nil, err
	}
	return s.CreateDraft(ctx, d, req)
}

// CreateDraft is Create for a draft the caller has resolved (and authorized)
// already: the draft stands for req's Command, JobData and ClusterID.
func (s *Service) CreateDraft(ctx context.Context, d *Draft, req CreateRequest) (*Job, error) {
	j, err := prepare(d)
	if err != nil {
		return nil, err
	}
	if pf := d.Command.Preflight; pf != nil {
		if err := pf(ctx, d.ClusterID, d.JobData); err != nil {
			return nil, invalid(ErrBadJobData, "invalid job_data for command %q: %v", d.Name, err)
		}
	}
	j.Owner, j.Created = req.Owner, s.clock.Now()
	if j.Title, err = checkTitle(req.Title, j.Command); err != nil {
		return nil, err
	}
	if j.Tags, err = normalizeTags(req.Tags); err != nil {
		return nil, err
	}
	now := j.Created
	if !req.Scheduled.IsZero() && req.Scheduled.Before(now.Add(-pastTolerance)) {
		return nil, invalid(ErrBadSchedule, "scheduled start %s is in the past", FormatTime(req.Scheduled))
	}
	if req.Scheduled.After(now) {
		j.Scheduled = req.Scheduled.UTC()
	}
	recurrence, tz := strings.TrimSpace(req.Recurrence), strings.TrimSpace(req.TimeZone)
	switch {
	case recurrence != "":
		sched, err := parseSchedule(recurrence, tz)
		if err != nil {
			return nil, err
		}
		j.NextFireAt = sched.next(maxTime(now, j.Scheduled))
		if j.NextFireAt.IsZero() {
			return nil, invalid(ErrBadSchedule, "recurrence %q never fires", recurrence)
		}
		j.Recurrence, j.TimeZone = recurrence, tz
		j.Status, j.StatusText = StatusScheduled, TextScheduled
	case tz != "":
		return nil, invalid(ErrBadSchedule, "a time zone needs a recurrence")
	case !j.Scheduled.IsZero():
		j.NextFireAt = j.Scheduled
		j.Status, j.StatusText = StatusScheduled, TextScheduled
	default:
		j.Status, j.StatusText = StatusDefined, TextDefined
	}
	return s.store(ctx, j)
}

// prepare checks a draft's job_data with its command, for a new job.
func prepare(d *Draft) (*Job, error) {
	if v := d.Command.Validate; v != nil {
		if err := v(d.JobData); err != nil {
			return nil, invalid(ErrBadJobData, "invalid job_data for command %q: %v", d.Name, err)
		}
	}
	return &Job{Command: d.Name, JobData: d.JobData, ClusterID: d.ClusterID, Exclusive: d.Command.Exclusive}, nil
}

func checkTitle(title, command string) (string, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		return command, nil
	}
	if utf8.RuneCountInString(title) > maxTitleLen {
		return "", invalidf("title is longer than %d characters", maxTitleLen)
	}
	return title, nil
}

// store inserts a prepared job and returns it as stored.
// The job is read back inside the transaction that inserts it, so it is
// returned as created (DEFINED), as the reference controller replies, even
// when a worker claims it the moment it is committed.
func (s *Service) store(ctx context.Context, j *Job) (*Job, error) {
	var created *Job
	err := s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		id, err := insertJob(ctx, tx, j)
		if err != nil {
			return err
		}
		created, err = getJob(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if created.Status == StatusDefined {
		s.poke()
	}
	s.log.InfoContext(ctx, "job created", "job_id", created.ID, "command", created.Command, "status", created.Status,
		"cluster_id", created.ClusterID, "user", created.UserName)
	return created, nil
}

// Get returns one job, or an error wrapping ErrNotFound.
func (s *Service) Get(ctx context.Context, id int64) (*Job, error) {
	return getJob(ctx, s.db, id)
}

// List returns the jobs matching f, newest first, and how many match in all.
func (s *Service) List(ctx context.Context, f Filter) ([]*Job, int, error) {
	return listJobs(ctx, s.db, f)
}

// JobLog is a job with a page of its messages (getJobLog).
type JobLog struct {
	Job      *Job
	Messages []Message
	Total    int // all the job's messages, not only this page
}

// Log returns a job and a page of its messages; messages are readable while the
// job runs.
func (s *Service) Log(ctx context.Context, id int64, q MessageQuery) (*JobLog, error) {
	total := countBeside(ctx, s.db, fmt.Sprintf("messages of job %d", id), "SELECT COUNT(*) FROM job_messages WHERE job_id = ?", id)
	j, err := s.Get(ctx, id)
	var msgs []Message
	if err == nil {
		msgs, err = pageOfMessages(ctx, s.db, id, q)
	}
	n, cerr := total()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return &JobLog{Job: j, Messages: msgs, Total: n}, nil
}

// Kill aborts a job on behalf of user by (a name, for the status text). A job
// that has not started (DEFINED, SCHEDULED, PAUSED: this ends a recurring
// template's schedule) is ABORTED at once; a running one has its handler's
// context cancelled by the controller that runs it, which then marks it
// ABORTED. Killing an ended job is an *InvalidError wrapping ErrWrongState.
func (s *Service) Kill(ctx context.Context, id int64, by string) (*Job, error) {
	now := s.clock.Now()
	killed := killedOutcome(by)
	unclaimed, args := sql.Placeholders(unclaimedStatuses)
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET status = ?, status_text = ?, exit_code = ?, exit_signal = ?,
		result = ?, ended = ?, kill_requested = 1, killed_by = ? WHERE job_id = ? AND status IN (`+unclaimed+`)`,
		append([]any{killed.status, killed.text, killed.exitCode, killed.signal, string(withExit(nil, killed.exitCode, killed.signal)),
			sql.Millis(now), by, id}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("abort job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		s.addMessage(ctx, id, MessageWarning, abortedText(by))
		s.log.InfoContext(ctx, "job aborted before it ran", "job_id", id, "by", by)
		return s.Get(ctx, id)
	}
	active, args := sql.Placeholders(activeStatuses)
	res, err = s.db.ExecContext(ctx, `UPDATE jobs SET kill_requested = 1, killed_by = ?, status_text = ?
		WHERE job_id = ? AND status IN (`+active+`) AND kill_requested = 0`, append([]any{by, TextKillRequested, id}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("request kill of job %d: %w", id, err)
	}
	j, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	n, _ := res.RowsAffected()
	if n == 0 && !j.Status.Active() {
		return nil, invalid(ErrWrongState, "job %d has already ended (%s)", id, j.Status)
	}
	if n == 1 {
		s.addMessage(ctx, id, MessageWarning, fmt.Sprintf("Kill requested by user %s.", by))
	}
	s.log.InfoContext(ctx, "job kill requested", "job_id", id, "by", j.KilledBy, "controller", j.ControllerID)
	s.cancelLocal(id, j.KilledBy)
	return j, nil
}

func abortedText(by string) string {
	if by == "" {
		return "Job was aborted."
	}
	return fmt.Sprintf("Job was aborted by user %s.", by)
}

// cancelLocal cancels a job this controller runs, if it runs it.
func (s *Service) cancelLocal(id int64, by string) {
	s.mu.Lock()
	cancel := s.running[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel(&killedError{by: by})
	}
}

// Delete removes an ended job (FINISHED, FAILED, ABORTED) or one waiting for
// its time (SCHEDULED, PAUSED: deleting a recurring template ends its
// schedule; its children stay) with its messages. Other jobs are an
// *InvalidError wrapping ErrWrongState: kill them first.
func (s *Service) Delete(ctx context.Context, id int64) error {
	var status Status
	err := s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		st, args := sql.Placeholders(deletableStatuses)
		res, err := tx.ExecContext(ctx, "DELETE FROM jobs WHERE job_id = ? AND status IN ("+st+")", append([]any{id}, args...)...)
		if err != nil {
			return fmt.Errorf("delete job %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			j, err := getJob(ctx, tx, id)
			if err != nil {
				return err
			}
			status = j.Status
			return nil
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM job_messages WHERE job_id = ?", id); err != nil {
			return fmt.Errorf("delete messages of job %d: %w", id, err)
		}
		for _, table := range []string{"job_tags", "job_processes"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE job_id = ?", id); err != nil {
				return fmt.Errorf("delete job %d from %s: %w", id, table, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if status != "" {
		return invalid(ErrWrongState, "job %d is %s: only ended jobs and scheduled or paused jobs can be deleted", id, status)
	}
	s.log.InfoContext(ctx, "job deleted", "job_id", id)
	return nil
}

// Clone creates a new DEFINED job with the spec, title, cluster and tags of job
// id, owned by owner; the clone of a recurring template runs once, now.
func (s *Service) Clone(ctx context.Context, id int64, owner Owner) (*Job, error) {
	src, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	d, err := s.reg.DraftOf(src)
	if err != nil {
		return nil, err
	}
	j, err := prepare(d)
	if err != nil {
		return nil, err
	}
	j.Title, j.Tags, j.Owner = src.Title, src.Tags, owner
	j.Created, j.Status, j.StatusText = s.clock.Now(), StatusDefined, TextDefined
	return s.store(ctx, j)
}

// SetStatus pauses (PAUSED) or resumes (SCHEDULED) a job waiting for its time,
// typically a recurring template (updateJobInstance). A resumed recurring job
// next fires at its first firing from now: firings missed while paused are not
// made up. Setting the status a job already has is a no-op.
func (s *Service) SetStatus(ctx context.Context, id int64, to Status) (*Job, error) {
	if to != StatusPaused && to != StatusScheduled {
		return nil, invalid(ErrWrongState, "a job's status can only be set to PAUSED or SCHEDULED, not %q", to)
	}
	j, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Status == to {
		return j, nil
	}
	if !j.Status.Waiting() {
		return nil, invalid(ErrWrongState, "job %d is %s: only scheduled and paused jobs can be paused or resumed", id, j.Status)
	}
	var res stdsql.Result
	if to == StatusPaused {
		res, err = s.db.ExecContext(ctx, "UPDATE jobs SET status = ?, status_text = ? WHERE job_id = ? AND status = ?",
			StatusPaused, TextPaused, id, StatusScheduled)
	} else {
		next := j.Scheduled
		if j.Recurring() {
			sched, perr := parseSchedule(j.Recurrence, j.TimeZone)
			if perr != nil {
				return nil, perr
			}
			next = sched.next(maxTime(s.clock.Now(), j.Scheduled))
		}
		res, err = s.db.ExecContext(ctx, `UPDATE jobs SET status = ?, status_text = ?, next_fire_at = ?
			WHERE job_id = ? AND status = ?`, StatusScheduled, TextScheduled, sql.Millis(next), id, StatusPaused)
	}
	if err != nil {
		return nil, fmt.Errorf("set status of job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Changed under us (fired, killed, deleted): report what it is now.
		if j, err = s.Get(ctx, id); err != nil {
			return nil, err
		}
		if j.Status != to {
			return nil, invalid(ErrWrongState, "job %d is %s: only scheduled and paused jobs can be paused or resumed", id, j.Status)
		}
		return j, nil
	}
	s.log.InfoContext(ctx, "job status set", "job_id", id, "status", to)
	return s.Get(ctx, id)
}

// addMessage appends a job message, logging instead of failing: the log of a
// job must never decide its outcome.
func (s *Service) addMessage(ctx context.Context, jobID int64, st MessageStatus, text string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.whileUnreachable(ctx, func() error { return insertMessage(ctx, s.db, jobID, s.clock.Now(), st, text) }); err != nil {
		s.log.Warn("store job message", "job_id", jobID, "err", err)
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
