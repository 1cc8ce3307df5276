package rbac

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordLen is bcrypt's input limit; longer passwords are refused rather
// than silently cut, and a 1 MiB password never reaches the hash.
const MaxPasswordLen = 72

// DefaultBcryptCost balances login latency (~100 ms on one core) against guessing.
const DefaultBcryptCost = 11

// Hasher hashes and verifies passwords with bcrypt at a fixed cost.
type Hasher struct {
	Cost int
	// MinLength is the fewest characters a new password may have (0: no
	// floor); passwords already stored keep working.
	MinLength int
	// dummy is a hash of a random password, compared against when the user is
	// unknown so that a login for an unknown user costs as much as for a known one.
	dummy []byte
	// verifications counts bcrypt comparisons: the expensive step that
	// session checks and cached inline credentials avoid.
	verifications atomic.Int64
}

// Verifications is how many password comparisons this Hasher has made.
func (h *Hasher) Verifications() int64 { return h.verifications.Load() }

// NewHasher makes a Hasher; cost 0 means DefaultBcryptCost.
func NewHasher(cost int) (*Hasher, error) {
	if cost == 0 {
		cost = DefaultBcryptCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(RandomPassword()), cost)
	if err != nil {
		return nil, fmt.Errorf("hash dummy password: %w", err)
	}
	return &Hasher{Cost: cost, dummy: dummy}, nil
}

// ErrPasswordTooLong is returned for passwords bcrypt cannot hash whole.
var ErrPasswordTooLong = fmt.Errorf("password is longer than %d bytes", MaxPasswordLen)

// ErrPasswordEmpty is returned for an empty password.
var ErrPasswordEmpty = errors.New("password is empty")

// CheckNew refuses a new password that cannot be stored or is shorter than
// MinLength.
func (h *Hasher) CheckNew(password string) error {
	if err := CheckPasswordInput(password); err != nil {
		return err
	}
	if utf8.RuneCountInString(password) < h.MinLength {
		return fmt.Errorf("password is shorter than %d characters", h.MinLength)
	}
	return nil
}

// Hash returns the bcrypt hash of a new password, checked by CheckNew.
func (h *Hasher) Hash(password string) (string, error) {
	if err := h.CheckNew(password); err != nil {
		return "", err
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.Cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(b), nil
}

// Verify tells whether password matches hash, in constant time. An empty hash
// (unknown user, or a user without a password) is compared against the dummy
// hash, so the answer takes as long and is false.
func (h *Hasher) Verify(hash, password string) bool {
	h.verifications.Add(1)
	if len(password) > MaxPasswordLen {
		password = password[:MaxPasswordLen] // bounded work; the comparison still fails below
		hash = ""
	}
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// CheckPasswordInput refuses passwords that cannot be stored.
func CheckPasswordInput(password string) error {
	if password == "" {
		return ErrPasswordEmpty
	}
	if len(password) > MaxPasswordLen {
		return ErrPasswordTooLong
	}
	return nil
}

// RandomPassword makes a 24-character URL-safe password from 144 random bits.
func RandomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}
