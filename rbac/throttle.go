package rbac

import (
	"errors"
	"sync"
	"time"
)

// ErrThrottled refuses a login attempt while its user name or client address
// is locked out after repeated failures.
var ErrThrottled = errors.New("too many failed login attempts")

// ThrottleLimits configure brute-force protection: after SlowAfter failures
// within Window each attempt waits longer; after MaxFailures the key is locked
// out for Lockout.
type ThrottleLimits struct {
	SlowAfter   int
	MaxFailures int
	Window      time.Duration
	Lockout     time.Duration
	// Step is the added delay per failure past SlowAfter, capped at MaxDelay.
	Step     time.Duration
	MaxDelay time.Duration
}

// DefaultThrottleLimits slow a name or address after 3 failures in 15 minutes
// and lock it out for 15 minutes after 10.
var DefaultThrottleLimits = ThrottleLimits{SlowAfter: 3, MaxFailures: 10, Window: 15 * time.Minute,
	Lockout: 15 * time.Minute, Step: 500 * time.Millisecond, MaxDelay: 3 * time.Second}

// AddressFactor is how many more failures a client address may have than a
// user name: many users can share one address (a NAT, a bastion).
const AddressFactor = 5

func (l ThrottleLimits) scaled(factor int) ThrottleLimits {
	l.SlowAfter *= factor
	l.MaxFailures *= factor
	return l
}

// maxThrottleKeys bounds memory under a spray of distinct names or addresses.
const maxThrottleKeys = 100_000

// Throttle counts failed logins per key (a user name, a client address). It
// treats known and unknown user names alike, so lockouts reveal nothing.
type Throttle struct {
	limits ThrottleLimits
	now    func() time.Time
	mu     sync.Mutex
	keys   map[string]*failures
}

type failures struct {
	count       int
	first       time.Time
	lockedUntil time.Time
}

// NewThrottle makes a throttle with the given limits.
func NewThrottle(limits ThrottleLimits, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{limits: limits, now: now, keys: map[string]*failures{}}
}

// Check tells how long to wait before verifying an attempt for keys, or
// ErrThrottled when any key is locked out.
func (t *Throttle) Check(keys ...string) (time.Duration, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var delay time.Duration
	for _, k := range keys {
		f := t.current(k, now)
		if f == nil {
			continue
		}
		if now.Before(f.lockedUntil) {
			return 0, ErrThrottled
		}
		if over := f.count - t.limits.SlowAfter; over >= 0 {
			delay = max(delay, min(time.Duration(over+1)*t.limits.Step, t.limits.MaxDelay))
		}
	}
	return delay, nil
}

// current is a key's live record, dropping one whose window and lockout passed.
func (t *Throttle) current(k string, now time.Time) *failures {
	f := t.keys[k]
	if f != nil && now.Sub(f.first) > t.limits.Window && !now.Before(f.lockedUntil) {
		delete(t.keys, k)
		return nil
	}
	return f
}

// Fail records a failed attempt for keys.
func (t *Throttle) Fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.keys) >= maxThrottleKeys {
		t.sweep(now)
	}
	for _, k := range keys {
		f := t.current(k, now)
		if f == nil {
			if len(t.keys) >= maxThrottleKeys {
				continue // full of live records: those still hold their keys back
			}
			f = &failures{first: now}
			t.keys[k] = f
		}
		f.count++
		if f.count >= t.limits.MaxFailures {
			f.lockedUntil = now.Add(t.limits.Lockout)
			f.count, f.first = 0, now
		}
	}
}

// Succeed clears a key's failures (the user name's, after a good login).
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, key)
}

func (t *Throttle) sweep(now time.Time) {
	for k := range t.keys {
		t.current(k, now)
	}
}
