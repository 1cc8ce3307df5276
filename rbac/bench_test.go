package rbac

import (
	"context"
	"fmt"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
)

// The baseline is a full password login at the production bcrypt cost; the
// others are what every request pays instead, and make bench prints each as a
// ratio of it.

func benchAuthn(b *testing.B, cost int) (*Authn, string) {
	b.Helper()
	db := services.OpenSQLite(b)
	h, err := NewHasher(cost)
	if err != nil {
		b.Fatal(err)
	}
	store := NewStore(db)
	a := NewAuthn(store, NewSessions(store, DefaultSessionLimits), h, AuthnOptions{Throttle: DefaultThrottleLimits})
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

// benchTree is 1000 clusters, each shared with one of 50 groups, and a user
// in two of them: the access state getAllClusterInfo filters through.
func benchTree(b *testing.B) (*Authorizer, *User, []string) {
	b.Helper()
	a, _ := benchAuthn(b, 4)
	ctx := context.Background()
	store := a.Store()
	u, err := store.UserByName(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	var groups []Group
	for i := range 50 {
		g, err := store.CreateGroup(ctx, fmt.Sprintf("team%d", i))
		if err != nil {
			b.Fatal(err)
		}
		groups = append(groups, *g)
	}
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = ClusterPath(fmt.Sprintf("c%d", i))
		if err := store.CreateObject(ctx, paths[i], 1, groups[i%50].ID); err != nil {
			b.Fatal(err)
		}
	}
	authz, err := NewAuthorizer(store.db)
	if err != nil {
		b.Fatal(err)
	}
	return authz, u, paths
}

// BenchmarkListingAccess1000Clusters is what a listing pays per request: the
// policy version check and the caller's privileges on every cluster.
func BenchmarkListingAccess1000Clusters(b *testing.B) {
	authz, u, paths := benchTree(b)
	ctx := context.Background()
	for b.Loop() {
		p, err := authz.Current(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, path := range paths {
			p.Privileges(u, path)
		}
	}
}

// BenchmarkEnforcePerCluster1000 is the same decision made with one Casbin
// Enforce per cluster, each a pass over every policy: what the per-user
// privileges avoid.
func BenchmarkEnforcePerCluster1000(b *testing.B) {
	authz, u, paths := benchTree(b)
	p, err := authz.Current(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, path := range paths {
			if _, err := p.enforcer.Enforce(userSubject(u.ID), path, "r"); err != nil {
				b.Fatal(err)
			}
		}
	}
}
