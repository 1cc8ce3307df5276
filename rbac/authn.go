package rbac

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// ErrBadCredentials covers an unknown user, a wrong password or signature, and
// a disabled user alike: the caller learns nothing about which it was.
var ErrBadCredentials = errors.New("bad credentials")

// ChallengeTTL is how long a key-login challenge may be answered.
const ChallengeTTL = 2 * time.Minute

// ErrBusy refuses a login while every password check the controller allows
// at once is taken: a fast "try again" instead of a queue that grows without
// bound (bcrypt costs tens of milliseconds of CPU each).
var ErrBusy = errors.New("too many logins at once")

// Authn verifies logins: passwords, inline credentials and key challenges,
// with brute-force throttling in front of every check.
type Authn struct {
	store    *Store
	sessions *Sessions
	hasher   *Hasher
	throttle *Throttle
	// checks bounds the password checks running at once.
	checks   chan struct{}
	checkFor time.Duration
	cache    *credentialCache
	log      *slog.Logger
	now      func() time.Time
}

// AuthnOptions configure an Authn.
type AuthnOptions struct {
	Throttle ThrottleLimits
	// InlineCacheTTL is how long verified inline credentials skip bcrypt.
	InlineCacheTTL time.Duration
	// ConcurrentChecks bounds the password checks running at once (default
	// the number of CPUs); a login finding none free within CheckWait
	// (default 1s) gets ErrBusy.
	ConcurrentChecks int
	CheckWait        time.Duration
	Log              *slog.Logger
}

// NewAuthn wires the login checks over a user store and a session store,
// which share one database with the throttle.
func NewAuthn(store *Store, sessions *Sessions, hasher *Hasher, o AuthnOptions) *Authn {
	if o.InlineCacheTTL == 0 {
		o.InlineCacheTTL = 5 * time.Minute
	}
	if o.ConcurrentChecks <= 0 {
		o.ConcurrentChecks = runtime.NumCPU()
	}
	if o.CheckWait <= 0 {
		o.CheckWait = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Authn{store: store, sessions: sessions, hasher: hasher, log: o.Log, now: time.Now,
		throttle: NewThrottle(store.db, o.Throttle),
		checks:   make(chan struct{}, o.ConcurrentChecks), checkFor: o.CheckWait,
		cache: newCredentialCache(o.InlineCacheTTL, 10_000, time.Now)}
}

// Store is the user store logins are checked against.
func (a *Authn) Store() *Store { return a.store }

// Sessions is the session store.
func (a *Authn) Sessions() *Sessions { return a.sessions }

// Hasher hashes new passwords.
func (a *Authn) Hasher() *Hasher { return a.hasher }

// Throttle is the login throttle, for purging and clearing lockouts.
func (a *Authn) Throttle() *Throttle { return a.throttle }

// verify checks a secret for name from remote under the throttle and the
// bound on concurrent checks: the attempt is counted first, so parallel
// attempts cannot slip past the limit, and refunded if it succeeds or was
// never checked.
func (a *Authn) verify(ctx context.Context, name, remote, how string, check func() (*User, bool)) (*User, error) {
	if err := a.throttle.Reserve(ctx, name, remote); err != nil {
		if errors.Is(err, ErrThrottled) {
			a.log.Warn("login refused: too many failures", "user", name, "remote", remote, "method", how)
		}
		return nil, err
	}
	wait := time.NewTimer(a.checkFor)
	defer wait.Stop()
	select {
	case a.checks <- struct{}{}:
	case <-wait.C:
		a.refund(ctx, name, remote, false)
		a.log.Warn("login refused: too many password checks at once", "user", name, "remote", remote)
		return nil, ErrBusy
	case <-ctx.Done():
		a.refund(ctx, name, remote, false)
		return nil, ctx.Err()
	}
	u, ok := check()
	<-a.checks
	if !ok {
		if u != nil {
			if err := a.store.RecordLogin(ctx, u.ID, false, a.now()); err != nil {
				a.log.Error("record failed login", "user", name, "err", err)
			}
		}
		a.log.Info("login failed", "user", name, "remote", remote, "method", how)
		return nil, ErrBadCredentials
	}
	a.refund(ctx, name, remote, true)
	now := a.now()
	if err := a.store.RecordLogin(ctx, u.ID, true, now); err != nil {
		a.log.Error("record login", "user", u.Name, "err", err)
	}
	logged := *u // users are shared: this login's view is a copy
	logged.LastLogin, logged.NFailedLogins = now.UTC(), 0
	a.log.Info("login", "user", u.Name, "remote", remote, "method", how)
	return &logged, nil
}

func (a *Authn) refund(ctx context.Context, name, remote string, succeeded bool) {
	if err := a.throttle.Refund(ctx, name, remote, succeeded); err != nil {
		a.log.Warn("refund login attempt", "user", name, "err", err)
	}
}

// Password checks a user name and password. It costs one bcrypt comparison
// whether or not the user exists.
func (a *Authn) Password(ctx context.Context, name, password, remote string) (*User, error) {
	u, err := a.store.UserByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return a.verify(ctx, name, remote, "password", func() (*User, bool) {
		hash := ""
		if u != nil {
			hash = u.PasswordHash
		}
		return u, a.hasher.Verify(hash, password) && u != nil && !u.Disabled
	})
}

// Inline checks credentials sent inside a request. Credentials that verified
// within the cache's lifetime cost one user lookup instead of a bcrypt hash.
// Requests that bring the same credentials at once (a script's burst) wait
// for the first one's check instead of each taking a bcrypt slot.
func (a *Authn) Inline(ctx context.Context, name, password, remote string) (*User, error) {
	if u := a.cachedInline(ctx, name, password); u != nil {
		return u, nil
	}
	if checking := a.cache.lead(name, password); checking != nil {
		select {
		case <-checking:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if u := a.cachedInline(ctx, name, password); u != nil {
			return u, nil
		}
	} else {
		defer a.cache.done(name, password)
	}
	u, err := a.Password(ctx, name, password, remote)
	if err != nil {
		return nil, err
	}
	a.cache.remember(name, password, u.ID, u.PasswordHash)
	return u, nil
}

// cachedInline is the user of credentials that verified recently, if they
// still match the user as stored; nil otherwise.
func (a *Authn) cachedInline(ctx context.Context, name, password string) *User {
	hit, ok := a.cache.lookup(name, password)
	if !ok {
		return nil
	}
	u, err := a.store.UserByID(ctx, hit.userID)
	if err != nil || u.Name != name || u.PasswordHash != hit.passwordHash || u.Disabled {
		return nil
	}
	return u
}

// Challenge starts a key login: it returns a session token holding a fresh
// single-use challenge. An unknown user gets a challenge too, which no
// signature can answer, so the reply does not reveal whether the user exists.
func (a *Authn) Challenge(ctx context.Context, name, remote string) (token, challenge string, err error) {
	var userID int64
	u, err := a.store.UserByName(ctx, name)
	switch {
	case err == nil && !u.Disabled:
		userID = u.ID
	case err != nil && !errors.Is(err, ErrNotFound):
		return "", "", err
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	challenge = hex.EncodeToString(b)
	token, err = a.sessions.CreateChallenge(ctx, userID, challenge, remote, ChallengeTTL)
	if err != nil {
		return "", "", err
	}
	return token, challenge, nil
}

// Respond finishes a key login: the signature must be over the challenge of
// the token's session, by one of the user's registered keys. The challenge is
// used up whatever the outcome.
func (a *Authn) Respond(ctx context.Context, token, signature, remote string) (*User, error) {
	challenge, userID, err := a.sessions.TakeChallenge(ctx, token)
	if err != nil || userID == 0 {
		a.log.Info("login failed", "remote", remote, "method", "key")
		return nil, ErrBadCredentials
	}
	u, err := a.store.UserByID(ctx, userID)
	if err != nil {
		a.log.Info("login failed", "remote", remote, "method", "key")
		return nil, ErrBadCredentials
	}
	keys, err := a.store.Keys(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("key login: %w", err)
	}
	return a.verify(ctx, u.Name, remote, "key", func() (*User, bool) {
		for _, k := range keys {
			if k.Verify(challenge, signature) && !u.Disabled {
				return u, true
			}
		}
		return u, false
	})
}

// SetPassword hashes and stores a new password for a user and ends every
// session of the user but keep (the session that made its own change; ""
// for none): whoever held the old password holds nothing now.
func (a *Authn) SetPassword(ctx context.Context, u *User, password, keep string) error {
	hash, err := a.hasher.Hash(password)
	if err != nil {
		return err
	}
	if err := a.store.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return err
	}
	return a.sessions.EndUserSessions(ctx, u.ID, keep)
}
