package jobs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// dbOutage tracks whether the engine's database is unreachable, so that the
// engine's loops say so once when an outage starts and once when it ends,
// not at every attempt, and the workers wait longer between attempts.
type dbOutage struct {
	down  atomic.Bool // the fast path of answered
	mu    sync.Mutex
	since time.Time
}

// failed tells whether err says the database is unreachable, and logs the
// start of an outage.
func (o *dbOutage) failed(log *slog.Logger, err error) bool {
	if !sql.IsUnavailable(err) {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down.Load() {
		o.down.Store(true)
		o.since = time.Now()
		log.Warn("database unreachable: the job engine waits for it", "err", err)
	}
	return true
}

// answered records that the database served a request, and logs the end of
// an outage.
func (o *dbOutage) answered(log *slog.Logger) {
	if !o.down.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down.Load() {
		o.down.Store(false)
		log.Info("database reachable again: the job engine resumes", "outage", time.Since(o.since).Round(time.Millisecond))
	}
}

// maxOutageWait bounds a worker's wait between claims while the database is
// unreachable: long enough not to hammer it, short enough to resume soon.
const maxOutageWait = 5 * time.Second

// retryWrite runs write until it succeeds, fails with an error retryable
// does not accept, or ctx ends (or would before the next try), waiting
// longer each time; onRetry, when set, hears of each failure retried.
func retryWrite(ctx context.Context, retryable func(error) bool, onRetry func(error), write func() error) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, maxOutageWait) {
		err := write()
		if err == nil || !retryable(err) {
			return err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
		if !sleep(ctx, wait) {
			return err
		}
	}
}

// whileUnreachable is retryWrite for writes worth repeating only while the
// database is unreachable, such as during a move to another Galera node.
func (s *Service) whileUnreachable(ctx context.Context, write func() error) error {
	return retryWrite(ctx, func(err error) bool { return s.outage.failed(s.log, err) }, nil, write)
}
