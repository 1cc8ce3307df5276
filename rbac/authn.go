package rbac

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrBadCredentials covers an unknown user, a wrong password or signature, and
// a disabled user alike: the caller learns nothing about which it was.
var ErrBadCredentials = errors.New("bad credentials")

// ChallengeTTL is how long a key-login challenge may be answered.
const ChallengeTTL = 2 * time.Minute

// Authn verifies logins: passwords, inline credentials and key challenges,
// with brute-force throttling in front of every check.
type Authn struct {
	store    *Store
	sessions *Sessions
	hasher   *Hasher
	// names and addresses throttle failures per user name and per client
	// address; an address gets more room, as many users may share one.
	names     *Throttle
	addresses *Throttle
	cache     *credentialCache
	log       *slog.Logger
	now       func() time.Time
}

// AuthnOptions configure an Authn.
type AuthnOptions struct {
	Throttle ThrottleLimits
	// InlineCacheTTL is how long verified inline credentials skip bcrypt.
	InlineCacheTTL time.Duration
	Log            *slog.Logger
}

// NewAuthn wires the login checks over a user store and a session store.
func NewAuthn(store *Store, sessions *Sessions, hasher *Hasher, o AuthnOptions) *Authn {
	if o.InlineCacheTTL == 0 {
		o.InlineCacheTTL = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Authn{store: store, sessions: sessions, hasher: hasher, log: o.Log, now: time.Now,
		names:     NewThrottle(o.Throttle, time.Now),
		addresses: NewThrottle(o.Throttle.scaled(AddressFactor), time.Now),
		cache:     newCredentialCache(o.InlineCacheTTL, 10_000, time.Now)}
}

// Store is the user store logins are checked against.
func (a *Authn) Store() *Store { return a.store }

// Sessions is the session store.
func (a *Authn) Sessions() *Sessions { return a.sessions }

// Hasher hashes new passwords.
func (a *Authn) Hasher() *Hasher { return a.hasher }

// admit waits out the throttle's delay for this attempt, or refuses it.
func (a *Authn) admit(ctx context.Context, name, remote string) error {
	byName, err := a.names.Check(name)
	if err == nil {
		var byAddr time.Duration
		byAddr, err = a.addresses.Check(remote)
		byName = max(byName, byAddr)
	}
	delay := byName
	if err != nil {
		a.log.Warn("login refused: too many failures", "user", name, "remote", remote)
		return err
	}
	if delay == 0 {
		return nil
	}
	select {
	case <-time.After(delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail records a failed attempt everywhere it counts.
func (a *Authn) fail(ctx context.Context, u *User, name, remote, how string) error {
	if name != "" {
		a.names.Fail(name)
	}
	a.addresses.Fail(remote)
	if u != nil {
		if err := a.store.RecordLogin(ctx, u.ID, false, a.now()); err != nil {
			a.log.Error("record failed login", "user", name, "err", err)
		}
	}
	a.log.Info("login failed", "user", name, "remote", remote, "method", how)
	return ErrBadCredentials
}

func (a *Authn) succeed(ctx context.Context, u *User, remote, how string) {
	a.names.Succeed(u.Name)
	now := a.now()
	if err := a.store.RecordLogin(ctx, u.ID, true, now); err != nil {
		a.log.Error("record login", "user", u.Name, "err", err)
	}
	u.LastLogin, u.NFailedLogins = now.UTC(), 0
	a.log.Info("login", "user", u.Name, "remote", remote, "method", how)
}

// Password checks a user name and password. It costs one bcrypt comparison
// whether or not the user exists.
func (a *Authn) Password(ctx context.Context, name, password, remote string) (*User, error) {
	if err := a.admit(ctx, name, remote); err != nil {
		return nil, err
	}
	u, err := a.store.UserByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	hash := ""
	if u != nil {
		hash = u.PasswordHash
	}
	if !a.hasher.Verify(hash, password) || u == nil || u.Disabled {
		return nil, a.fail(ctx, u, name, remote, "password")
	}
	a.succeed(ctx, u, remote, "password")
	return u, nil
}

// Inline checks credentials sent inside a request. Credentials that verified
// within the cache's lifetime cost one user lookup instead of a bcrypt hash.
func (a *Authn) Inline(ctx context.Context, name, password, remote string) (*User, error) {
	if hit, ok := a.cache.lookup(name, password); ok {
		u, err := a.store.UserByID(ctx, hit.userID)
		if err == nil && u.Name == name && u.PasswordHash == hit.passwordHash && !u.Disabled {
			return u, nil
		}
	}
	u, err := a.Password(ctx, name, password, remote)
	if err != nil {
		return nil, err
	}
	a.cache.remember(name, password, u.ID, u.PasswordHash)
	return u, nil
}

// Challenge starts a key login: it returns a session token holding a fresh
// single-use challenge. An unknown user gets a challenge too, which no
// signature can answer, so the reply does not reveal whether the user exists.
func (a *Authn) Challenge(ctx context.Context, name, remote string) (token, challenge string, err error) {
	if err := a.admit(ctx, name, remote); err != nil {
		return "", "", err
	}
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
	token, err = a.sessions.CreateChallenge(ctx, userID, challenge, ChallengeTTL)
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
	if err != nil {
		return nil, a.fail(ctx, nil, "", remote, "key")
	}
	if userID == 0 {
		return nil, a.fail(ctx, nil, "", remote, "key")
	}
	u, err := a.store.UserByID(ctx, userID)
	if err != nil {
		return nil, a.fail(ctx, nil, "", remote, "key")
	}
	if err := a.admit(ctx, u.Name, remote); err != nil {
		return nil, err
	}
	keys, err := a.store.Keys(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("key login: %w", err)
	}
	for _, k := range keys {
		if k.Verify(challenge, signature) && !u.Disabled {
			a.succeed(ctx, u, remote, "key")
			return u, nil
		}
	}
	return nil, a.fail(ctx, u, u.Name, remote, "key")
}

// SetPassword hashes and stores a new password for a user.
func (a *Authn) SetPassword(ctx context.Context, u *User, password string) error {
	hash, err := a.hasher.Hash(password)
	if err != nil {
		return err
	}
	return a.store.SetPasswordHash(ctx, u.ID, hash)
}
