package jobs

import (
	"errors"
	"testing"
	"time"
)

// FuzzSchedule: any recurrence and time zone parse or are refused as a bad
// schedule, and a parsed one fires strictly later.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "0 3 * * 1-5", "@daily", "@every 10s", "@every -1s", "61 * * * *",
		"0 0 30 2 *", "* * * * * *", "TZ=UTC * * * * *", "0 0 1 1 *", "TZ=UTC", "CRON_TZ=Europe/Berlin"} {
		f.Add(s, "")
		f.Add(s, "Europe/Berlin")
	}
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr, tz string) {
		s, err := parseSchedule(expr, tz)
		if err != nil {
			if !errors.Is(err, ErrBadSchedule) {
				t.Fatalf("parseSchedule(%q, %q): %v is not a bad schedule", expr, tz, err)
			}
			return
		}
		if next := s.next(now); !next.IsZero() && !next.After(now) {
			t.Fatalf("%q in %q fires at %s, not after %s", expr, tz, next, now)
		}
	})
}
