package rbac

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

func TestChallengesAreBoundedAndExpire(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		now := time.Unix(2_000_000, 0)
		s := NewSessions(NewStore(db), DefaultSessionLimits)
		s.now = func() time.Time { return now }
		for i := range MaxChallengesPerAddress {
			if _, err := s.CreateChallenge(ctx, 0, "c", "10.0.0.1", ChallengeTTL); err != nil {
				t.Fatalf("challenge %d: %v", i+1, err)
			}
		}
		if _, err := s.CreateChallenge(ctx, 0, "c", "10.0.0.1", ChallengeTTL); !errors.Is(err, ErrTooManyChallenges) {
			t.Fatalf("one challenge too many: %v", err)
		}
		if _, err := s.CreateChallenge(ctx, 0, "c", "10.0.0.2", ChallengeTTL); err != nil {
			t.Fatalf("another address: %v", err)
		}
		// Challenges go with their time to live, not with the session idle time.
		now = now.Add(ChallengeTTL + time.Second)
		n, err := s.Purge(ctx)
		if err != nil || n != MaxChallengesPerAddress+1 {
			t.Fatalf("purged %d (%v), want %d", n, err, MaxChallengesPerAddress+1)
		}
		if _, err := s.CreateChallenge(ctx, 0, "c", "10.0.0.1", ChallengeTTL); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	})
}
