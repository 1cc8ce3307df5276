package rbac

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

func TestMain(m *testing.M) { os.Exit(services.Main(m)) }

func testAuthn(t *testing.T, db *sql.DB) (*Authn, *Hasher) {
	t.Helper()
	h, err := NewHasher(4) // the minimum cost keeps the suite fast; cost is not under test
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(db)
	return NewAuthn(store, NewSessions(store, DefaultSessionLimits), h, AuthnOptions{Throttle: DefaultThrottleLimits}), h
}

func mustUser(t *testing.T, a *Authn, name, password string, groups ...string) *User {
	t.Helper()
	hash, err := a.Hasher().Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Store().CreateUser(context.Background(), NewUser{Name: name, PasswordHash: hash, Groups: groups, CreateGroups: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCreateUserIsAllOrNothing(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := NewStore(db)
		_, err := s.CreateUser(ctx, NewUser{Name: "kirk", Groups: []string{"nosuchgroup"}})
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing group: %v", err)
		}
		if _, err := s.UserByName(ctx, "kirk"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("user left behind after a failed create: %v", err)
		}
		u, err := s.CreateUser(ctx, NewUser{Name: "kirk", Groups: []string{"crew", "officers"}, CreateGroups: true})
		if err != nil || len(u.Groups) != 2 {
			t.Fatalf("create: %v %+v", err, u)
		}
		if _, err := s.CreateUser(ctx, NewUser{Name: "kirk"}); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate: %v", err)
		}
		all, err := s.Users(ctx)
		if err != nil || len(all) != 1 || len(all[0].Groups) != 2 {
			t.Fatalf("Users: %v %+v", err, all)
		}
	})
}

func TestLastAdminIsProtected(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := NewStore(db)
		if created, err := s.CreateAdmin(ctx, "x"); err != nil || !created {
			t.Fatalf("CreateAdmin: %v %v", created, err)
		}
		if created, err := s.CreateAdmin(ctx, "x"); err != nil || created {
			t.Fatalf("second CreateAdmin: %v %v", created, err)
		}
		admin, _ := s.UserByName(ctx, AdminUser)
		for name, change := range map[string]func() error{
			"disable": func() error { return s.SetDisabled(ctx, admin, true) },
			"delete":  func() error { return s.DeleteUser(ctx, admin) },
			"remove":  func() error { return s.RemoveFromGroup(ctx, admin, AdminsGroup) },
		} {
			if err := change(); !errors.Is(err, ErrLastAdmin) {
				t.Errorf("%s the last admin: %v", name, err)
			}
		}
		if err := s.DeleteGroup(ctx, AdminsGroup); !errors.Is(err, ErrProtectedGroup) {
			t.Errorf("delete admins group: %v", err)
		}
		var inUse *GroupInUseError
		if _, err := s.CreateUser(ctx, NewUser{Name: "second", Groups: []string{AdminsGroup}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDisabled(ctx, admin, true); err != nil {
			t.Fatalf("disable an admin while another remains: %v", err)
		}
		if _, err := s.CreateGroup(ctx, "crew"); err != nil {
			t.Fatal(err)
		}
		second, _ := s.UserByName(ctx, "second")
		if err := s.AddToGroup(ctx, second, "crew"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteGroup(ctx, "crew"); !errors.As(err, &inUse) || inUse.Members != 1 {
			t.Fatalf("delete a group with members: %v", err)
		}
	})
}

func TestSessionsLifecycle(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		a, _ := testAuthn(t, db)
		u := mustUser(t, a, "alice", "alice-pw", "crew")
		now := time.Now()
		sessions := NewSessions(a.Store(), SessionLimits{Idle: time.Hour, Absolute: 3 * time.Hour})
		sessions.now = func() time.Time { return now }
		token, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sessions.User(ctx, token)
		if err != nil || got.ID != u.ID || !got.InGroup("crew") {
			t.Fatalf("User: %v %+v", err, got)
		}
		if _, err := sessions.User(ctx, token+"x"); !errors.Is(err, ErrNoSession) {
			t.Fatalf("forged token: %v", err)
		}
		// Used every 50 minutes, it stays alive past the idle limit, until the absolute one.
		for range 3 {
			now = now.Add(50 * time.Minute)
			if _, err := sessions.User(ctx, token); err != nil {
				t.Fatalf("active session ended at %v: %v", now, err)
			}
		}
		now = now.Add(40 * time.Minute)
		if _, err := sessions.User(ctx, token); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session past its absolute lifetime: %v", err)
		}
		idle, _ := sessions.Create(ctx, u.ID)
		now = now.Add(61 * time.Minute)
		if _, err := sessions.User(ctx, idle); !errors.Is(err, ErrNoSession) {
			t.Fatalf("idle session: %v", err)
		}
		live, _ := sessions.Create(ctx, u.ID)
		if err := a.Store().SetDisabled(ctx, u, true); err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.User(ctx, live); !errors.Is(err, ErrNoSession) {
			t.Fatalf("disabled user's session: %v", err)
		}
	})
}

func TestChallengeIsSingleUse(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		a, _ := testAuthn(t, db)
		u := mustUser(t, a, "pipas", "pw")
		token, challenge, err := a.Challenge(ctx, "pipas", "127.0.0.1")
		if err != nil || len(challenge) != 64 {
			t.Fatalf("Challenge: %q %v", challenge, err)
		}
		got, userID, err := a.Sessions().TakeChallenge(ctx, token)
		if err != nil || got != challenge || userID != u.ID {
			t.Fatalf("TakeChallenge: %q %d %v", got, userID, err)
		}
		if _, _, err := a.Sessions().TakeChallenge(ctx, token); !errors.Is(err, ErrNoSession) {
			t.Fatalf("second TakeChallenge: %v", err)
		}
		// Unknown users get a challenge that no signature answers.
		token, _, err = a.Challenge(ctx, "ghost", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Respond(ctx, token, "AAAA", "127.0.0.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("answer for an unknown user: %v", err)
		}
	})
}

func TestInlineCredentialsSkipBcryptWhenCached(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		a, h := testAuthn(t, db)
		u := mustUser(t, a, "bob", "bob-pw")
		before := h.Verifications()
		for range 20 {
			if _, err := a.Inline(ctx, "bob", "bob-pw", "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
		}
		if n := h.Verifications() - before; n != 1 {
			t.Fatalf("20 inline requests made %d bcrypt comparisons, want 1", n)
		}
		if _, err := a.Inline(ctx, "bob", "wrong", "127.0.0.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		// A new password invalidates the cached credential at once.
		if err := a.SetPassword(ctx, u, "bob-pw-2", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Inline(ctx, "bob", "bob-pw", "127.0.0.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("old password after a change: %v", err)
		}
		if err := a.Store().SetDisabled(ctx, u, true); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Inline(ctx, "bob", "bob-pw-2", "127.0.0.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("disabled user: %v", err)
		}
	})
}

// A burst of requests with the same new credentials costs one comparison:
// the others wait for it instead of queueing for bcrypt slots.
func TestInlineBurstCostsOneComparison(t *testing.T) {
	db := services.OpenSQLite(t)
	a, h := testAuthn(t, db)
	mustUser(t, a, "burst", "burst-pw")
	before := h.Verifications()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := a.Inline(context.Background(), "burst", "burst-pw", "127.0.0.1"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := h.Verifications() - before; n != 1 {
		t.Fatalf("16 concurrent inline requests made %d bcrypt comparisons, want 1", n)
	}
}

func TestUnknownUserCostsOneComparison(t *testing.T) {
	db := services.OpenSQLite(t)
	a, h := testAuthn(t, db)
	mustUser(t, a, "known", "pw")
	for _, name := range []string{"known", "unknown"} {
		before := h.Verifications()
		if _, err := a.Password(context.Background(), name, "wrong", "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: %v", name, err)
		}
		if n := h.Verifications() - before; n != 1 {
			t.Fatalf("%s user: %d comparisons, want 1", name, n)
		}
	}
}
