package sql

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Shared state that controllers serve from memory is versioned by name in
// the change_versions table. A writer bumps the name's version after its
// change, or in the same transaction; a reader that reads the versions after
// its request began and reloads what moved sees every change committed
// before that request, whichever controller made it.

// Versions are the change versions by name, as one read found them.
type Versions map[string]int64

// Execer runs a statement: a *DB or a transaction.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error)
}

// changeClock coalesces version reads: a caller waits for a read that began
// after it asked (never one already under way, which may have missed a
// change committed just before), so one read serves every caller that
// arrived while the previous one ran, and a busy controller reads the
// versions a bounded number of times however many requests it serves.
//
// An embedded database belongs to one controller (its data directory is
// locked), so only this process changes it: its versions are read again
// only after a local change.
type changeClock struct {
	mu      sync.Mutex
	running *versionRead // under way: callers arriving now may not use it
	waiting *versionRead // starts when running ends: any caller may join it
	// localWrites counts this process's committed bumps, so that a request
	// pinned to versions it has since changed itself reads them again.
	localWrites atomic.Int64
	// pending are the transactions that bumped a version and have not
	// committed yet.
	pending map[*stdsql.Tx]bool
	// last is the latest read and the local writes counted before it began
	// (used for the embedded database only).
	last       Versions
	lastWrites int64
}

type versionRead struct {
	done     chan struct{}
	versions Versions
	err      error
}

// versionReadTimeout bounds one shared read, whatever its callers' contexts.
const versionReadTimeout = 15 * time.Second

// Bump moves the version of name, through ex: the transaction that made the
// change, or the database after the change committed.
func (db *DB) Bump(ctx context.Context, ex Execer, name string) error {
	if _, err := ex.ExecContext(ctx, "UPDATE change_versions SET version = version + 1 WHERE name = ?", name); err != nil {
		return fmt.Errorf("bump the %s version: %w", name, err)
	}
	c := &db.changes
	tx, inTx := ex.(*stdsql.Tx)
	if !inTx {
		c.localWrites.Add(1)
		return nil
	}
	// Counted once the transaction commits (InTx): a read between the
	// bump and the commit would see the old state under the new count.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[*stdsql.Tx]bool{}
	}
	c.pending[tx] = true
	return nil
}

// ended counts the bumps of a transaction that ended, if it committed.
func (c *changeClock) ended(tx *stdsql.Tx, committed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[tx] {
		delete(c.pending, tx)
		if committed {
			c.localWrites.Add(1)
		}
	}
}

type pinKey struct{}

type pinned struct {
	versions    Versions
	localWrites int64
}

// Pin reads the versions once for a request and keeps them in the context,
// so that every cache the request consults checks them without another
// read; a change the request makes itself unpins it.
func (db *DB) Pin(ctx context.Context) (context.Context, error) {
	writes := db.changes.localWrites.Load()
	v, err := db.readVersions(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, pinKey{}, &pinned{versions: v, localWrites: writes}), nil
}

// Version is the version of name as of ctx: pinned, or read now.
func (db *DB) Version(ctx context.Context, name string) (int64, error) {
	if p, ok := ctx.Value(pinKey{}).(*pinned); ok && p.localWrites == db.changes.localWrites.Load() {
		return p.versions[name], nil
	}
	v, err := db.readVersions(ctx)
	return v[name], err
}

func (db *DB) readVersions(ctx context.Context) (Versions, error) {
	c := &db.changes
	writes := c.localWrites.Load()
	exclusive := db.Dialect == SQLite
	if exclusive {
		c.mu.Lock()
		last, lastWrites := c.last, c.lastWrites
		c.mu.Unlock()
		if last != nil && lastWrites == writes {
			return last, nil
		}
	}
	v, err := db.sharedVersionRead(ctx)
	if exclusive && err == nil {
		c.mu.Lock()
		if c.last == nil || writes >= c.lastWrites {
			c.last, c.lastWrites = v, writes
		}
		c.mu.Unlock()
	}
	return v, err
}

// sharedVersionRead returns the result of a read that began after the call.
func (db *DB) sharedVersionRead(ctx context.Context) (Versions, error) {
	c := &db.changes
	c.mu.Lock()
	r := c.waiting
	switch {
	case r != nil:
		c.mu.Unlock()
	case c.running == nil:
		r = &versionRead{done: make(chan struct{})}
		c.running = r
		c.mu.Unlock()
		db.runVersionRead(ctx, r)
	default:
		r = &versionRead{done: make(chan struct{})}
		c.waiting = r
		previous := c.running
		c.mu.Unlock()
		<-previous.done // bounded by versionReadTimeout
		c.mu.Lock()
		c.running, c.waiting = r, nil
		c.mu.Unlock()
		db.runVersionRead(ctx, r)
	}
	select {
	case <-r.done:
		return r.versions, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runVersionRead reads for every caller waiting on r, so one caller's
// cancellation does not fail the others.
func (db *DB) runVersionRead(ctx context.Context, r *versionRead) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), versionReadTimeout)
	defer cancel()
	r.versions, r.err = db.queryVersions(ctx)
	c := &db.changes
	c.mu.Lock()
	if c.running == r {
		c.running = nil
	}
	c.mu.Unlock()
	close(r.done)
}

func (db *DB) queryVersions(ctx context.Context) (Versions, error) {
	rows, err := db.QueryContext(ctx, "SELECT name, version FROM change_versions")
	if err != nil {
		return nil, fmt.Errorf("read change versions: %w", err)
	}
	defer rows.Close()
	v := Versions{}
	for rows.Next() {
		var name string
		var version int64
		if err := rows.Scan(&name, &version); err != nil {
			return nil, fmt.Errorf("read change versions: %w", err)
		}
		v[name] = version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read change versions: %w", err)
	}
	return v, nil
}

// Cached holds state loaded from the database at one version of a change
// name and loads it again when the version moved: at most one load at a
// time, and none while the version stands.
type Cached[T any] struct {
	db   *DB
	name string
	load func(ctx context.Context) (T, error)
	mu   sync.Mutex
	cur  atomic.Pointer[cachedValue[T]]
}

type cachedValue[T any] struct {
	version int64
	value   T
}

// NewCached serves load's result while name's version stands.
func NewCached[T any](db *DB, name string, load func(ctx context.Context) (T, error)) *Cached[T] {
	return &Cached[T]{db: db, name: name, load: load}
}

// Get returns the state as of ctx's versions. The state is loaded after the
// version was read: a change committed in between is loaded early and loaded
// again when its bump is seen, never missed.
func (c *Cached[T]) Get(ctx context.Context) (T, error) {
	version, err := c.db.Version(ctx, c.name)
	if err != nil {
		var zero T
		return zero, err
	}
	if p := c.cur.Load(); p != nil && p.version >= version {
		return p.value, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.cur.Load(); p != nil && p.version >= version {
		return p.value, nil
	}
	value, err := c.load(ctx)
	if err != nil {
		return value, err
	}
	c.cur.Store(&cachedValue[T]{version: version, value: value})
	return value, nil
}
