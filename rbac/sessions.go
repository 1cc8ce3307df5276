package rbac

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	stdsql "database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// ErrNoSession is returned for a token that is unknown, expired, logged out,
// or whose user is disabled.
var ErrNoSession = errors.New("no valid session")

// SessionLimits are a session's idle and absolute lifetimes.
type SessionLimits struct {
	Idle     time.Duration
	Absolute time.Duration
}

// DefaultSessionLimits end a session after an hour unused or a day in all.
var DefaultSessionLimits = SessionLimits{Idle: time.Hour, Absolute: 24 * time.Hour}

// Sessions keeps login sessions in the database, so logout really ends one and
// every controller sharing the database accepts a valid one. The sessions in
// use are also kept in memory until a session ends anywhere, so a request
// costs no database round trip for its session.
type Sessions struct {
	db     *sql.DB
	users  *Store
	limits SessionLimits
	now    func() time.Time
	live   *sql.Cached[*sessionIndex]
}

// NewSessions makes a session store with the given lifetimes, whose sessions'
// users come from users.
func NewSessions(users *Store, limits SessionLimits) *Sessions {
	return &Sessions{db: users.db, users: users, limits: limits, now: time.Now,
		live: sql.NewCached(users.db, SessionsChanges, newSessionIndex)}
}

// maxLiveSessions bounds the sessions kept in memory between two session ends.
const maxLiveSessions = 100000

// sessionIndex holds the sessions seen since the last session ended, by
// token hash.
type sessionIndex struct {
	mu sync.RWMutex
	m  map[tokenKey]*liveSession
}

// liveSession is a session as this controller knows it: its user and
// lifetimes, when it was last used here and when that was last written.
type liveSession struct {
	userID  int64
	created time.Time
	mu      sync.Mutex
	used    time.Time // last use known here
	written time.Time // last_seen as stored
}

func newSessionIndex(context.Context) (*sessionIndex, error) {
	return &sessionIndex{m: map[tokenKey]*liveSession{}}, nil
}

func (x *sessionIndex) find(hash tokenKey) *liveSession {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.m[hash]
}

func (x *sessionIndex) add(hash tokenKey, ls *liveSession) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.m) >= maxLiveSessions {
		clear(x.m) // forgetting costs each session one lookup, nothing more
	}
	x.m[hash] = ls
}

func (x *sessionIndex) forget(hash tokenKey) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.m, hash)
}

// Limits are the lifetimes in force.
func (s *Sessions) Limits() SessionLimits { return s.limits }

// newToken makes a 256-bit random cookie value and the hash stored for it.
func newToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenKey is a token's hash as the in-memory session index keys it.
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// stored is the key as the sessions table stores it.
func (k tokenKey) stored() string { return hex.EncodeToString(k[:]) }

// Create starts a logged-in session for a user and returns its cookie token.
// Every login gets a new token; an old one is never upgraded.
func (s *Sessions) Create(ctx context.Context, userID int64) (string, error) {
	token, hash := newToken()
	now := sql.Millis(s.now())
	_, err := s.db.ExecContext(ctx, "INSERT INTO sessions (token_hash, user_id, created, last_seen) VALUES (?, ?, ?, ?)",
		hash, userID, now, now)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return token, nil
}

// MaxChallengesPerAddress bounds the key-login challenges outstanding from
// one client address: each is a row until it is answered or expires.
const MaxChallengesPerAddress = 20

// ErrTooManyChallenges refuses a challenge past MaxChallengesPerAddress.
var ErrTooManyChallenges = errors.New("too many login challenges outstanding from this address")

// CreateChallenge starts a not-yet-logged-in session holding a key-login
// challenge for a user (0 for an unknown user, whose challenge can never be
// answered), asked for from address.
func (s *Sessions) CreateChallenge(ctx context.Context, userID int64, challenge, address string, ttl time.Duration) (string, error) {
	token, hash := newToken()
	now := s.now()
	var outstanding int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE user_id = 0 AND address = ? AND challenge_expires > ?",
		address, sql.Millis(now)).Scan(&outstanding); err != nil {
		return "", fmt.Errorf("count challenges: %w", err)
	}
	if outstanding >= MaxChallengesPerAddress {
		return "", ErrTooManyChallenges
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created, last_seen, challenge,
		challenge_user_id, challenge_expires, address) VALUES (?, 0, ?, ?, ?, ?, ?, ?)`,
		hash, sql.Millis(now), sql.Millis(now), challenge, userID, sql.Millis(now.Add(ttl)), address)
	if err != nil {
		return "", fmt.Errorf("create challenge session: %w", err)
	}
	return token, nil
}

// TakeChallenge returns the challenge of a token's session and deletes the
// session, so a challenge is answered at most once whatever the answer.
func (s *Sessions) TakeChallenge(ctx context.Context, token string) (challenge string, userID int64, err error) {
	hash := hashToken(token)
	var expires int64
	err = s.db.QueryRowContext(ctx, "SELECT challenge, challenge_user_id, challenge_expires FROM sessions WHERE token_hash = ? AND user_id = 0",
		hash).Scan(&challenge, &userID, &expires)
	if err != nil {
		return "", 0, ErrNoSession
	}
	res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", hash)
	if err != nil {
		return "", 0, fmt.Errorf("consume challenge: %w", err)
	}
	// Two controllers racing on one challenge: only the one whose delete took the row may use it.
	if n, _ := res.RowsAffected(); n != 1 || challenge == "" || s.now().After(sql.Time(expires)) {
		return "", 0, ErrNoSession
	}
	return challenge, userID, nil
}

// User returns the logged-in user of a token's session, refusing expired
// sessions and disabled users. A session in use here costs no database round
// trip: its last use is written at most every quarter of the idle time (and
// at most once a minute), so an active session never ends as idle, and one
// that looks idle here is looked up again, in case it was used through
// another controller.
func (s *Sessions) User(ctx context.Context, token string) (*User, error) {
	hash := keyOf(token)
	live, err := s.live.Get(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ls := live.find(hash)
	if ls == nil || ls.idle(now, s.limits.Idle) {
		if ls, err = s.lookup(ctx, hash); err != nil {
			return nil, err
		}
		live.add(hash, ls)
	}
	if ls.idle(now, s.limits.Idle) || now.Sub(ls.created) > s.limits.Absolute {
		live.forget(hash)
		_ = s.Delete(ctx, token)
		return nil, ErrNoSession
	}
	if err := s.touch(ctx, hash, ls, now); err != nil {
		return nil, err
	}
	u, err := s.users.UserByID(ctx, ls.userID)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Disabled) {
		return nil, ErrNoSession
	}
	return u, err
}

// lookup reads a logged-in session.
func (s *Sessions) lookup(ctx context.Context, hash tokenKey) (*liveSession, error) {
	var userID, created, lastSeen int64
	err := s.db.QueryRowContext(ctx, "SELECT user_id, created, last_seen FROM sessions WHERE token_hash = ? AND user_id <> 0",
		hash.stored()).Scan(&userID, &created, &lastSeen)
	if errors.Is(err, stdsql.ErrNoRows) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	return &liveSession{userID: userID, created: sql.Time(created), used: sql.Time(lastSeen), written: sql.Time(lastSeen)}, nil
}

func (ls *liveSession) idle(now time.Time, limit time.Duration) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return now.Sub(ls.used) > limit
}

// touch records a use, writing it when the stored one is older than the
// refresh interval.
func (s *Sessions) touch(ctx context.Context, hash tokenKey, ls *liveSession, now time.Time) error {
	ls.mu.Lock()
	ls.used = now
	due := now.Sub(ls.written) > min(time.Minute, s.limits.Idle/4)
	if due {
		ls.written = now
	}
	ls.mu.Unlock()
	if !due {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", sql.Millis(now), hash.stored()); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// Delete ends a session.
func (s *Sessions) Delete(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", hashToken(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return s.db.Bump(ctx, s.db, SessionsChanges)
}

// EndUserSessions ends every session of a user but the one of token keep
// ("" for none): after a password change or the loss of a privilege.
func (s *Sessions) EndUserSessions(ctx context.Context, userID int64, keep string) error {
	keepHash := ""
	if keep != "" {
		keepHash = hashToken(keep)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?", userID, keepHash); err != nil {
		return fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	return s.db.Bump(ctx, s.db, SessionsChanges)
}

// Purge deletes sessions past their lifetimes and challenges past theirs.
func (s *Sessions) Purge(ctx context.Context) (int64, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE last_seen < ? OR created < ? OR (user_id = 0 AND challenge_expires < ?)",
		sql.Millis(now.Add(-s.limits.Idle)), sql.Millis(now.Add(-s.limits.Absolute)), sql.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return n, err
	}
	return n, s.db.Bump(ctx, s.db, SessionsChanges)
}

// Count is how many logged-in sessions the database holds.
func (s *Sessions) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE user_id <> 0").Scan(&n); err != nil {
		return 0, fmt.Errorf("count sessions: %w", err)
	}
	return n, nil
}
