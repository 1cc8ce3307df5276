package rbac

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"

	"github.com/cmon-dev/cmon/sql"
)

// privilegesVia reads what u may do on path through a fresh look at the
// database's policy version, as each request does.
func privilegesVia(t *testing.T, a *Authorizer, u *User, path string) Privileges {
	t.Helper()
	p, err := a.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p.Privileges(u, path)
}

func TestAuthorizerFollowsTheDatabase(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		authn, _ := testAuthn(t, db)
		store := authn.Store()
		admin := mustUser(t, authn, AdminUser, "pw-admin-123", AdminsGroup)
		alice := mustUser(t, authn, "alice", "pw-alice-123", "ops")
		bob := mustUser(t, authn, "bob", "pw-bob-1234")
		carol := mustUser(t, authn, "carol", "pw-carol-123")
		if err := store.EnsureRoot(ctx); err != nil {
			t.Fatal(err)
		}
		if err := store.EnsureRoot(ctx); err != nil { // idempotent
			t.Fatal(err)
		}
		opsID := alice.Groups[0].ID
		if err := store.CreateObject(ctx, "/c1", alice.ID, opsID); err != nil {
			t.Fatal(err)
		}
		// Two authorizers on one database are two controllers.
		here, err := NewAuthorizer(db)
		if err != nil {
			t.Fatal(err)
		}
		there, err := NewAuthorizer(db)
		if err != nil {
			t.Fatal(err)
		}
		expect := func(step string, u *User, path string, want Privileges) {
			t.Helper()
			for i, a := range []*Authorizer{here, there} {
				if got := privilegesVia(t, a, u, path); got != want {
					t.Errorf("%s: controller %d: %s on %s = %s, want %s", step, i, u.Name, path, got, want)
				}
			}
		}
		expect("defaults", admin, "/c1", All)
		expect("defaults", admin, RootPath, All)
		expect("defaults", alice, "/c1", All)
		expect("defaults", alice, RootPath, 0)
		expect("defaults", bob, "/c1", 0)
		expect("no object", alice, "/nope", 0)

		p, err := here.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		root, _ := p.Object(RootPath)
		if got := p.ACL(root); got != "user::rwx,group::rwx,other::---" || p.UserName(root.OwnerUserID) != AdminUser ||
			p.GroupName(root.OwnerGroupID) != AdminsGroup {
			t.Errorf("root: %q owned by %q:%q", got, p.UserName(root.OwnerUserID), p.GroupName(root.OwnerGroupID))
		}

		change := func(step string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		entries := func(s string, removal bool) []ACLEntry {
			t.Helper()
			e, err := ParseACL(s, removal)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		change("grant bob r-x", store.AddACL(ctx, "/c1", entries("user:bob:r-x", false)))
		expect("granted", bob, "/c1", Read|Execute)
		change("take x from bob", store.RemoveACL(ctx, "/c1", entries("user:bob:--x", true)))
		expect("x taken", bob, "/c1", Read)
		change("replace bob's entry", store.AddACL(ctx, "/c1", entries("user:bob:rw-", false)))
		expect("replaced", bob, "/c1", Read|Write)
		change("remove bob's entry", store.RemoveACL(ctx, "/c1", entries("user:bob", true)))
		expect("removed", bob, "/c1", 0)

		change("other may read", store.AddACL(ctx, "/c1", entries("other::r--", false)))
		expect("other", carol, "/c1", Read)
		change("other may not", store.RemoveACL(ctx, "/c1", entries("other::r--", true)))
		expect("other", carol, "/c1", 0)

		change("carol joins ops", store.AddToGroup(ctx, carol, "ops"))
		expect("membership", carol, "/c1", All)
		change("ops gets r-- only", store.AddACL(ctx, "/c1", entries("group::r--", false)))
		expect("owning group narrowed", carol, "/c1", Read)
		expect("owner keeps user::", alice, "/c1", All)
		carol, err = store.UserByID(ctx, carol.ID)
		change("reload carol", err)
		change("carol leaves ops", store.RemoveFromGroup(ctx, carol, "ops"))
		expect("membership ended", carol, "/c1", 0)

		change("named group", store.AddACL(ctx, "/c1", entries("group:ops:--x", false)))
		expect("named group adds to the owning group's", alice, "/c1", All)

		change("chown to bob", store.Chown(ctx, "/c1", "bob", ""))
		expect("new owner", bob, "/c1", All)
		expect("old owner keeps the group's", alice, "/c1", Read|Execute)

		p, err = there.Current(ctx)
		change("policy", err)
		o, _ := p.Object("/c1")
		if got := p.ACL(o); got != "user::rwx,group::r--,group:ops:--x,other::---" || p.UserName(o.OwnerUserID) != "bob" {
			t.Errorf("after the changes: %q owned by %q", got, p.UserName(o.OwnerUserID))
		}

		// Refusals change nothing.
		var subject *SubjectError
		if err := store.AddACL(ctx, "/c1", entries("user:carol:rwx,user:ghost:r--", false)); !errors.As(err, &subject) || subject.Name != "ghost" {
			t.Errorf("unknown user: %v", err)
		}
		expect("nothing changed by a refused ACL", carol, "/c1", 0)
		if err := store.AddACL(ctx, "/nope", entries("user:carol:rwx", false)); !errors.Is(err, ErrObjectNotFound) {
			t.Errorf("missing object: %v", err)
		}
		if err := store.Chown(ctx, "/c1", "", "ghosts"); !errors.As(err, &subject) {
			t.Errorf("chown to an unknown group: %v", err)
		}
		var aclErr *ACLError
		if err := store.RemoveACL(ctx, "/c1", entries("other:", true)); !errors.As(err, &aclErr) {
			t.Errorf("removing a base entry: %v", err)
		}

		// A deleted user's entries and ownerships go with it, so that a new
		// user of the same name inherits nothing.
		change("grant carol", store.AddACL(ctx, "/c1", entries("user:carol:rwx", false)))
		change("delete carol", store.DeleteUser(ctx, carol))
		carol2 := mustUser(t, authn, "carol", "pw-carol-456")
		expect("a new carol", carol2, "/c1", 0)
		bob, err = store.UserByID(ctx, bob.ID)
		change("reload bob", err)
		change("delete bob", store.DeleteUser(ctx, bob))
		p, err = here.Current(ctx)
		change("policy", err)
		if o, _ := p.Object("/c1"); o.OwnerUserID != 0 {
			t.Errorf("the deleted owner still owns /c1: %d", o.OwnerUserID)
		}

		change("delete the object", store.DeleteObject(ctx, "/c1"))
		expect("object gone", alice, "/c1", 0)
		expect("superusers pass on objects that exist", admin, RootPath, All)
	})
}

// TestPrivilegesMatchTheModel checks the per-user privileges, computed in one
// pass from Casbin's roles and policies, against the model's own matcher
// (Enforce) for random trees, memberships and ACLs.
func TestPrivilegesMatchTheModel(t *testing.T) {
	a, err := NewAuthorizer(nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		objects := map[string]*Object{}
		for i := range 8 {
			o := &Object{Path: fmt.Sprintf("/c%d", i), OwnerUserID: rng.Int64N(6), OwnerGroupID: rng.Int64N(4),
				UserPerms: Privileges(rng.IntN(8)), GroupPerms: Privileges(rng.IntN(8)), OtherPerms: Privileges(rng.IntN(8))}
			for range rng.IntN(4) {
				kind := KindUser
				if rng.IntN(2) == 0 {
					kind = KindGroup
				}
				o.Named = append(o.Named, NamedEntry{Kind: kind, ID: 1 + rng.Int64N(5), Perms: Privileges(rng.IntN(8))})
			}
			objects[o.Path] = o
		}
		var links [][]string
		for user := int64(1); user <= 5; user++ {
			for group := int64(1); group <= 3; group++ {
				if rng.IntN(3) == 0 {
					links = append(links, []string{userSubject(user), groupSubject(group)})
				}
			}
		}
		links = append(links, []string{groupSubject(3), superuserRole})
		p, err := a.policyOf(objects, links)
		if err != nil {
			t.Fatal(err)
		}
		for user := int64(1); user <= 5; user++ {
			for path := range objects {
				got := p.Privileges(&User{ID: user}, path)
				for _, act := range actions {
					want, err := p.enforcer.Enforce(userSubject(user), path, act.act)
					if err != nil {
						t.Fatal(err)
					}
					if got.Has(act.bit) != want {
						t.Fatalf("round %d: user %d on %s: %s, but Enforce(%s) = %v", round, user, path, got, act.act, want)
					}
				}
			}
		}
	}
}
