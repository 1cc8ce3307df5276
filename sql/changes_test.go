package sql_test

import (
	"context"
	stdsql "database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

// TestCachedFollowsBumps: state served from memory is loaded again exactly
// when its version moved, by a bump after a write or inside a committed
// transaction; a rolled back one changes nothing; other names do not count.
func TestCachedFollowsBumps(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		var loads atomic.Int64
		cached := sql.NewCached(db, "inventory", func(context.Context) (int64, error) { return loads.Add(1), nil })
		get := func() int64 {
			t.Helper()
			v, err := cached.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		steps := []struct {
			name  string
			do    func() error
			loads int64
		}{
			{name: "first use loads", do: func() error { return nil }, loads: 1},
			{name: "nothing moved", do: func() error { return nil }, loads: 1},
			{name: "bump after a write", do: func() error { return db.Bump(ctx, db, "inventory") }, loads: 2},
			{name: "another name", do: func() error { return db.Bump(ctx, db, "sessions") }, loads: 2},
			{name: "committed transaction", do: func() error {
				return db.InTx(ctx, func(tx *stdsql.Tx) error { return db.Bump(ctx, tx, "inventory") })
			}, loads: 3},
			{name: "rolled back transaction", do: func() error {
				err := db.InTx(ctx, func(tx *stdsql.Tx) error {
					if err := db.Bump(ctx, tx, "inventory"); err != nil {
						return err
					}
					return errors.New("roll back")
				})
				if err == nil {
					return errors.New("the transaction committed")
				}
				return nil
			}, loads: 3},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got := get(); got != s.loads {
				t.Fatalf("%s: %d loads, want %d", s.name, got, s.loads)
			}
		}
	})
}

// TestPinnedRequestSeesItsOwnChanges: a request reads the versions once,
// yet a change it makes itself is seen by its next lookup.
func TestPinnedRequestSeesItsOwnChanges(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx, err := db.Pin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		before, err := db.Version(ctx, "users")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Bump(ctx, db, "users"); err != nil {
			t.Fatal(err)
		}
		if after, err := db.Version(ctx, "users"); err != nil || after != before+1 {
			t.Fatalf("after its own bump the request reads version %d (%v), want %d", after, err, before+1)
		}
	})
}

// TestConcurrentReadersSeeEveryCommittedBump: whatever the interleaving of
// version reads, a reader that starts after a bump committed reads it.
func TestConcurrentReadersSeeEveryCommittedBump(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 8 { // readers keeping shared reads in flight
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := db.Version(ctx, "policy"); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		defer func() { close(stop); wg.Wait() }()
		for range 50 {
			before, err := db.Version(ctx, "policy")
			if err != nil {
				t.Fatal(err)
			}
			if err := db.InTx(ctx, func(tx *stdsql.Tx) error { return db.Bump(ctx, tx, "policy") }); err != nil {
				t.Fatal(err)
			}
			if after, err := db.Version(ctx, "policy"); err != nil || after <= before {
				t.Fatalf("a read after a committed bump saw %d (%v), before it %d", after, err, before)
			}
		}
	})
}
