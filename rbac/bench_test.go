package rbac

import (
	"context"
	"testing"

	"github.com/cmon-dev/cmon/sql/sqltest"
)

// The baseline is a full password login at the production bcrypt cost; the
// others are what every request pays instead, and make bench prints each as a
// ratio of it.

func benchAuthn(b *testing.B, cost int) (*Authn, string) {
	b.Helper()
	db := sqltest.OpenSQLite(b)
	h, err := NewHasher(cost)
	if err != nil {
		b.Fatal(err)
	}
	a := NewAuthn(NewStore(db), NewSessions(db, DefaultSessionLimits), h, AuthnOptions{Throttle: DefaultThrottleLimits})
	hash, _ := h.Hash("bench-pw")
	u, err := a.Store().CreateUser(context.Background(), NewUser{Name: "bench", PasswordHash: hash, Groups: []string{"g1", "g2"}, CreateGroups: true})
	if err != nil {
		b.Fatal(err)
	}
	token, err := a.Sessions().Create(context.Background(), u.ID)
	if err != nil {
		b.Fatal(err)
	}
	return a, token
}

func BenchmarkBaselinePasswordLogin(b *testing.B) {
	a, _ := benchAuthn(b, DefaultBcryptCost)
	ctx := context.Background()
	for b.Loop() {
		if _, err := a.Password(ctx, "bench", "bench-pw", "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionCheck(b *testing.B) {
	a, token := benchAuthn(b, DefaultBcryptCost)
	ctx := context.Background()
	for b.Loop() {
		if _, err := a.Sessions().User(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInlineCredentialsCached(b *testing.B) {
	a, _ := benchAuthn(b, DefaultBcryptCost)
	ctx := context.Background()
	for b.Loop() {
		if _, err := a.Inline(ctx, "bench", "bench-pw", "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}
