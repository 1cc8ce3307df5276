package rbac

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// ErrThrottled refuses a login attempt while its user name, from its client
// address, or the address itself is locked out after repeated attempts.
var ErrThrottled = errors.New("too many failed login attempts")

// ThrottledError is ErrThrottled with the time the lockout ends.
type ThrottledError struct{ Until time.Time }

func (e *ThrottledError) Error() string { return ErrThrottled.Error() }
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// ThrottleLimits configure brute-force protection: after MaxFailures failed
// attempts within Window, a user name is locked out from that client address
// for Lockout. An address is locked out for all names after AddressFactor
// times as many.
type ThrottleLimits struct {
	MaxFailures int
	Window      time.Duration
	Lockout     time.Duration
}

// DefaultThrottleLimits lock a name out of an address after 10 failures in 15
// minutes, for 15 minutes.
var DefaultThrottleLimits = ThrottleLimits{MaxFailures: 10, Window: 15 * time.Minute, Lockout: 15 * time.Minute}

// AddressFactor is how many more failures a client address may have, over
// all names, than one name from it: many users can share one address (a NAT,
// a bastion), while one address trying many names is spraying passwords.
const AddressFactor = 5

// Throttle counts login attempts in the database, so that every controller
// sharing it applies one count, and a restart forgets nothing. An attempt is
// counted before its password is checked (Reserve) and refunded when it
// succeeds, so parallel attempts cannot slip past the limit. Known and
// unknown user names are counted alike: lockouts reveal nothing.
type Throttle struct {
	db     *sql.DB
	limits ThrottleLimits
	now    func() time.Time
}

// NewThrottle makes a throttle over db with the given limits.
func NewThrottle(db *sql.DB, limits ThrottleLimits) *Throttle {
	return &Throttle{db: db, limits: limits, now: time.Now}
}

// throttleKey is one counter: a name from an address, or the address alone.
type throttleKey struct {
	name, address string
	limit         int
}

func (t *Throttle) keys(name, address string) []throttleKey {
	return []throttleKey{
		{name: name, address: address, limit: t.limits.MaxFailures},
		{address: address, limit: t.limits.MaxFailures * AddressFactor},
	}
}

// Reserve counts an attempt for name from address before it is checked, or
// refuses it with a *ThrottledError while a lockout lasts. The attempt that
// reaches a limit is still let through; the ones after it are not.
func (t *Throttle) Reserve(ctx context.Context, name, address string) error {
	now := t.now()
	keys := t.keys(name, address)
	for _, k := range keys {
		// Made outside the counting transaction: two transactions inserting
		// one key deadlock on MariaDB.
		_, err := t.db.ExecContext(ctx, "INSERT INTO login_attempts (user_name, address, attempts, window_start) VALUES (?, ?, 0, ?)",
			k.name, k.address, sql.Millis(now))
		if err != nil && !sql.IsUniqueViolation(err) {
			return fmt.Errorf("count login attempt: %w", err)
		}
	}
	return t.db.InTx(ctx, func(tx *stdsql.Tx) error {
		var until time.Time
		for _, k := range keys {
			attempts, start, locked, err := t.counter(ctx, tx, k, now)
			if err != nil {
				return fmt.Errorf("count login attempt: %w", err)
			}
			if lockedUntil := sql.Time(locked); now.Before(lockedUntil) {
				until = maxTime(until, lockedUntil)
				continue
			}
			if now.Sub(sql.Time(start)) > t.limits.Window {
				attempts, start = 0, sql.Millis(now)
			}
			attempts++
			locked = 0
			if attempts >= k.limit {
				locked, attempts, start = sql.Millis(now.Add(t.limits.Lockout)), 0, sql.Millis(now)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE login_attempts SET attempts = ?, window_start = ?, locked_until = ? WHERE user_name = ? AND address = ?",
				attempts, start, locked, k.name, k.address); err != nil {
				return fmt.Errorf("count login attempt: %w", err)
			}
		}
		if !until.IsZero() {
			return &ThrottledError{Until: until}
		}
		return nil
	})
}

// counter reads a key's counter under a lock for the transaction, making it
// again when a purge took it meanwhile.
func (t *Throttle) counter(ctx context.Context, tx *stdsql.Tx, k throttleKey, now time.Time) (attempts int, start, locked int64, err error) {
	for try := 0; ; try++ {
		err = tx.QueryRowContext(ctx, "SELECT attempts, window_start, locked_until FROM login_attempts WHERE user_name = ? AND address = ?"+
			t.db.ForUpdate(), k.name, k.address).Scan(&attempts, &start, &locked)
		if !errors.Is(err, stdsql.ErrNoRows) || try > 0 {
			return attempts, start, locked, err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO login_attempts (user_name, address, attempts, window_start) VALUES (?, ?, 0, ?)",
			k.name, k.address, sql.Millis(now))
		if err != nil && !sql.IsUniqueViolation(err) {
			return 0, 0, 0, err
		}
	}
}

// Refund gives back an attempt that did not count against its user: it
// succeeded (the name's failures from the address are forgotten), or it was
// never checked (the controller was busy).
func (t *Throttle) Refund(ctx context.Context, name, address string, succeeded bool) error {
	ctx = context.WithoutCancel(ctx)
	_, err := t.db.ExecContext(ctx, "UPDATE login_attempts SET attempts = attempts - 1 WHERE user_name = '' AND address = ? AND attempts > 0", address)
	if err == nil && succeeded {
		_, err = t.db.ExecContext(ctx, "UPDATE login_attempts SET attempts = 0, locked_until = 0 WHERE user_name = ? AND address = ?", name, address)
	} else if err == nil {
		_, err = t.db.ExecContext(ctx, "UPDATE login_attempts SET attempts = attempts - 1 WHERE user_name = ? AND address = ? AND attempts > 0", name, address)
	}
	if err != nil {
		return fmt.Errorf("refund login attempt: %w", err)
	}
	return nil
}

// Purge deletes counters whose window and lockout have both passed.
func (t *Throttle) Purge(ctx context.Context) (int64, error) {
	now := t.now()
	res, err := t.db.ExecContext(ctx, "DELETE FROM login_attempts WHERE window_start < ? AND locked_until < ?",
		sql.Millis(now.Add(-t.limits.Window)), sql.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("purge login attempts: %w", err)
	}
	return res.RowsAffected()
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
