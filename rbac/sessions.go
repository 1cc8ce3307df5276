package rbac

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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
// every controller sharing the database accepts a valid one.
type Sessions struct {
	db     *sql.DB
	limits SessionLimits
	now    func() time.Time
}

// NewSessions makes a session store with the given lifetimes.
func NewSessions(db *sql.DB, limits SessionLimits) *Sessions {
	return &Sessions{db: db, limits: limits, now: time.Now}
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

// User returns the logged-in user of a token's session in one indexed query,
// refusing expired sessions and disabled users. It refreshes last_seen at most
// every quarter of the idle time (and at most once a minute), so a busy
// client does not write on every request and an active session never ends
// as idle.
func (s *Sessions) User(ctx context.Context, token string) (*User, error) {
	hash := hashToken(token)
	var created, lastSeen int64
	rows, err := s.db.QueryContext(ctx, `SELECT s.created, s.last_seen, `+userSelect[len("SELECT "):]+
		` JOIN sessions s ON s.user_id = u.user_id WHERE s.token_hash = ? ORDER BY g.group_id`, hash)
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	users, err := scanUsers(rows, &created, &lastSeen)
	if err != nil {
		return nil, err
	}
	if len(users) == 0 || users[0].Disabled {
		return nil, ErrNoSession
	}
	now := s.now()
	if now.Sub(sql.Time(lastSeen)) > s.limits.Idle || now.Sub(sql.Time(created)) > s.limits.Absolute {
		_ = s.Delete(ctx, token)
		return nil, ErrNoSession
	}
	if now.Sub(sql.Time(lastSeen)) > min(time.Minute, s.limits.Idle/4) {
		if _, err := s.db.ExecContext(ctx, "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", sql.Millis(now), hash); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
	}
	return users[0], nil
}

// Delete ends a session.
func (s *Sessions) Delete(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = ?", hashToken(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
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
	return nil
}

// Purge deletes sessions past their lifetimes and challenges past theirs.
func (s *Sessions) Purge(ctx context.Context) (int64, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE last_seen < ? OR created < ? OR (user_id = 0 AND challenge_expires < ?)",
		sql.Millis(now.Add(-s.limits.Idle)), sql.Millis(now.Add(-s.limits.Absolute)), sql.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	return res.RowsAffected()
}
