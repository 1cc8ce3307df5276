package jobs

import (
	"errors"
	"log/slog"
	"time"
)

// Clock tells the time. The engine reads every stored time and every scheduling
// decision from it, so tests can move time forward; context deadlines
// (timeouts) and loop intervals use the real clock.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config tunes a Service. Zero values take the defaults named on each field.
type Config struct {
	// ControllerID names this controller among those sharing the database; it
	// must differ between controllers. Required.
	ControllerID string
	// Workers is how many jobs run at once on this controller (default 4;
	// negative: none, the Service only serves the API and the scheduler).
	Workers int
	// PollInterval is how often idle workers look for jobs created by other
	// controllers, and how often kills requested through them are noticed
	// (default 1s). Jobs created through this Service start at once.
	PollInterval time.Duration
	// SchedulerInterval is how often due scheduled and recurring jobs are
	// started (default 1s).
	SchedulerInterval time.Duration
	// HeartbeatInterval is how often this controller says it is alive
	// (default 5s); StaleAfter is how long a controller may stay silent before
	// the jobs it runs are failed by the others (default 6 heartbeats). It must
	// cover clock differences between the controllers' hosts.
	HeartbeatInterval time.Duration
	StaleAfter        time.Duration
	// MaxRunTime bounds every job, whatever its timeout_sec (default 24h).
	MaxRunTime time.Duration
	// KillGrace is how long a cancelled handler may take to return before the
	// job is ended without it (default 10s): a backstop for a handler that
	// ignores its cancellation. Node commands return within their transport's
	// stop bound (remote.Client.StopBound), so keep it above that; cmon
	// derives it from it.
	KillGrace time.Duration
	// DrainTimeout bounds Stop's wait for running jobs when its context has no
	// deadline (default 30s).
	DrainTimeout time.Duration
	Retention    Retention
	// Permit, when set, is asked before every job runs and every recurring
	// template fires (OwnerCheck): a job whose owner may no longer run it
	// fails, and its template is paused. Nil runs every job.
	Permit Permitter
	Clock  Clock        // default the real clock
	Logger *slog.Logger // default slog.Default()
	// Observer, when set, is told when each job starts and ends (metrics).
	Observer Observer
	// Leftovers, when set, ends the node commands still running for jobs
	// whose controller died (NodeLeftovers); nil leaves them running.
	Leftovers LeftoverEnder
	// Announce is what other controllers learn of this one (getControllers).
	Announce Announcement
}

// Retention deletes ended jobs (FINISHED, FAILED, ABORTED) and their messages.
type Retention struct {
	// MaxAge deletes jobs that ended longer ago (default 30 days, negative: never).
	MaxAge time.Duration
	// MaxCount keeps at most this many ended jobs, the newest (0: no limit).
	MaxCount int
	// BatchSize bounds each delete statement (default 500 rows).
	BatchSize int
	// MaxBatches bounds the work of one pass (default 20); the rest waits for
	// the next pass.
	MaxBatches int
	// Interval between passes (default 10 minutes, negative: no passes).
	Interval time.Duration
}

// withDefaults fills in what r leaves zero.
func (r Retention) withDefaults() Retention {
	if r.MaxAge == 0 {
		r.MaxAge = 30 * 24 * time.Hour
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 500
	}
	if r.MaxBatches <= 0 {
		r.MaxBatches = 20
	}
	if r.Interval == 0 {
		r.Interval = 10 * time.Minute
	}
	return r
}

func (c Config) withDefaults() (Config, error) {
	if c.ControllerID == "" {
		return c, errors.New("jobs: controller id is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Workers < 0 {
		c.Workers = 0
	}
	def(&c.PollInterval, time.Second)
	def(&c.SchedulerInterval, time.Second)
	def(&c.HeartbeatInterval, 5*time.Second)
	def(&c.StaleAfter, 6*c.HeartbeatInterval)
	if c.StaleAfter < 2*c.HeartbeatInterval {
		return c, errors.New("jobs: stale-after must be at least two heartbeat intervals")
	}
	def(&c.MaxRunTime, 24*time.Hour)
	def(&c.KillGrace, 10*time.Second)
	def(&c.DrainTimeout, 30*time.Second)
	c.Retention = c.Retention.withDefaults()
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Observer == nil {
		c.Observer = Observers(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Observer is told of job starts and ends (metrics, the event log).
type Observer interface {
	// JobStarted reports a job that began running waited after it was created.
	JobStarted(j *Job, waited time.Duration)
	// JobEnded reports a job's end after it ran for ran.
	JobEnded(j *Job, status Status, ran time.Duration)
}

// Observers tells each of its observers.
type Observers []Observer

func (o Observers) JobStarted(j *Job, waited time.Duration) {
	for _, x := range o {
		x.JobStarted(j, waited)
	}
}

func (o Observers) JobEnded(j *Job, status Status, ran time.Duration) {
	for _, x := range o {
		x.JobEnded(j, status, ran)
	}
}

// Announcement is what a controller tells the others sharing its database.
type Announcement struct {
	Addresses string // the RPC bind addresses, comma separated
	Port      int
	Version   string
	Hostname  string // the machine's host name
}
