package rbac

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

func TestThrottle(t *testing.T) {
	limits := ThrottleLimits{MaxFailures: 3, Window: time.Minute, Lockout: 5 * time.Minute}
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		now := time.Unix(1_000_000, 0)
		th := NewThrottle(db, limits)
		th.now = func() time.Time { return now }
		reserve := func(name, addr string) error { return th.Reserve(ctx, name, addr) }

		for i := range 3 { // the third attempt reaches the limit and is still let through
			if err := reserve("alice", "10.0.0.1"); err != nil {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		var throttled *ThrottledError
		if err := reserve("alice", "10.0.0.1"); !errors.As(err, &throttled) || !throttled.Until.Equal(now.Add(5*time.Minute)) {
			t.Fatalf("fourth attempt: %v, want a lockout until %s", err, now.Add(5*time.Minute))
		}
		// The lockout is the name's from that address only.
		if err := reserve("alice", "10.0.0.2"); err != nil {
			t.Errorf("alice from another address: %v", err)
		}
		if err := reserve("bob", "10.0.0.1"); err != nil {
			t.Errorf("bob from the same address: %v", err)
		}
		now = now.Add(6 * time.Minute)
		if err := reserve("alice", "10.0.0.1"); err != nil {
			t.Errorf("after the lockout: %v", err)
		}

		// A success forgets the name's failures from the address.
		if err := reserve("carol", "10.0.0.3"); err != nil {
			t.Fatal(err)
		}
		if err := reserve("carol", "10.0.0.3"); err != nil {
			t.Fatal(err)
		}
		if err := th.Refund(ctx, "carol", "10.0.0.3", true); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := reserve("carol", "10.0.0.3"); err != nil {
				t.Fatalf("attempt %d after a success: %v", i+1, err)
			}
		}

		// One address trying many names is locked out for all of them.
		for i := range 3 * AddressFactor {
			if err := reserve(string(rune('a'+i%26))+"-sprayed", "10.0.0.9"); err != nil {
				t.Fatalf("spray attempt %d: %v", i+1, err)
			}
		}
		if err := reserve("dave", "10.0.0.9"); !errors.Is(err, ErrThrottled) {
			t.Fatalf("a spraying address: %v", err)
		}
	})
}

// TestThrottleHoldsUnderParallelAttempts: attempts are counted before they
// are checked, so parallel ones cannot slip past the limit.
func TestThrottleHoldsUnderParallelAttempts(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		th := NewThrottle(db, ThrottleLimits{MaxFailures: 10, Window: time.Hour, Lockout: time.Hour})
		var admitted atomic.Int32
		var wg sync.WaitGroup
		for range 60 {
			wg.Go(func() {
				if err := th.Reserve(context.Background(), "admin", "192.0.2.7"); err == nil {
					admitted.Add(1)
				} else if !errors.Is(err, ErrThrottled) {
					t.Errorf("reserve: %v", err)
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != 10 {
			t.Fatalf("%d of 60 parallel attempts were let through, want 10", n)
		}
	})
}
