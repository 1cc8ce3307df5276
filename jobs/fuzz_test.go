package jobs

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzSchedule: any recurrence and time zone parse or are refused as a bad
// schedule, and a parsed one fires strictly later.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "0 3 * * 1-5", "@daily", "@every 10s", "@every -1s", "61 * * * *",
		"0 0 30 2 *", "* * * * * *", "TZ=UTC * * * * *", "0 0 1 1 *"} {
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

// FuzzJobData: any job_data for any command is accepted or refused as a bad
// request, never with another error or a panic.
func FuzzJobData(f *testing.F) {
	reg := declaredRegistry(f)
	names := reg.Names()
	for i := range names {
		for _, d := range []string{`{}`, `{"command":"uptime","nodes":["a"],"timeout_sec":5}`, `{"clusterid":1,"node":{"hostname":"a"}}`,
			`{"cluster_name":"c","cluster_type":"galera","ssh_user":"u","ssh_port":22,"nodes":[{"hostname":"a","port":3306}]}`,
			`{"node":{"hostname":"a","port":"x"}}`, `{"message":"m","exit_code":300}`, `{"command_base64":"dHJ1ZQ==","env":[{"key":"A","value":"b"}]}`,
			`[]`, `null`, `{"timeout_sec":"10"}`} {
			f.Add(uint8(i), d, int64(1))
		}
	}
	f.Fuzz(func(t *testing.T, cmd uint8, data string, cluster int64) {
		d, err := reg.Draft(names[int(cmd)%len(names)], json.RawMessage(data), cluster)
		if err == nil {
			_, err = prepare(d)
		}
		var invalid *InvalidError
		if err != nil && !errors.As(err, &invalid) {
			t.Fatalf("job_data %q: %T %v is not an *InvalidError", data, err, err)
		}
	})
}
