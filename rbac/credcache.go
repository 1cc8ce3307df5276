package rbac

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// credentialCache remembers inline credentials that verified recently, so a
// client that sends user name and password with every request pays for bcrypt
// once per TTL, not per request. It keys entries by an HMAC of name and
// password under a per-process random key, and keeps no password. An entry
// holds the password hash it was verified against: once the stored hash
// changes (a new password), the entry no longer matches.
type credentialCache struct {
	key [32]byte
	ttl time.Duration
	max int
	now func() time.Time
	mu  sync.Mutex
	m   map[[32]byte]cachedCredential
	// checking holds the credentials being verified now, each with a channel
	// closed when the check ends.
	checking map[[32]byte]chan struct{}
}

type cachedCredential struct {
	userID       int64
	passwordHash string
	expires      time.Time
}

func newCredentialCache(ttl time.Duration, maxEntries int, now func() time.Time) *credentialCache {
	c := &credentialCache{ttl: ttl, max: maxEntries, now: now, m: map[[32]byte]cachedCredential{},
		checking: map[[32]byte]chan struct{}{}}
	_, _ = rand.Read(c.key[:])
	return c
}

func (c *credentialCache) id(name, password string) [32]byte {
	mac := hmac.New(sha256.New, c.key[:])
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var out [32]byte
	copy(out[:], mac.Sum(nil))
	return out
}

// lookup returns the user id and the hash a credential verified against.
func (c *credentialCache) lookup(name, password string) (cachedCredential, bool) {
	id := c.id(name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || c.now().After(e.expires) {
		delete(c.m, id)
		return cachedCredential{}, false
	}
	return e, true
}

func (c *credentialCache) remember(name, password string, userID int64, passwordHash string) {
	id := c.id(name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		now := c.now()
		for k, e := range c.m {
			if now.After(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m) // all live: forgetting costs a re-verification each, nothing more
		}
	}
	c.m[id] = cachedCredential{userID: userID, passwordHash: passwordHash, expires: c.now().Add(c.ttl)}
}

// lead starts the check of a credential unless one is under way: the
// leader gets a nil channel and must call done; the others get a channel
// closed when the leader's check ends.
func (c *credentialCache) lead(name, password string) <-chan struct{} {
	id := c.id(name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.checking[id]; ok {
		return ch
	}
	c.checking[id] = make(chan struct{})
	return nil
}

// done ends the leader's check of a credential.
func (c *credentialCache) done(name, password string) {
	id := c.id(name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.checking[id])
	delete(c.checking, id)
}
