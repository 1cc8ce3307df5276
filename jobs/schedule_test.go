package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"

	"github.com/cmon-dev/cmon/sql"
)

// children lists a template's children, oldest first.
func children(t *testing.T, s *Service, id int64) []*Job {
	t.Helper()
	js, _, err := s.List(context.Background(), Filter{ParentJobID: id})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(js)-1; i < j; i, j = i+1, j-1 {
		js[i], js[j] = js[j], js[i]
	}
	return js
}

func fireAt(t *testing.T, s *Service, clock *fakeClock, at string) int {
	t.Helper()
	clock.Set(mustTime(t, at))
	n, err := s.fireDue(context.Background())
	if err != nil {
		t.Fatalf("fire at %s: %v", at, err)
	}
	return n
}

func TestRecurring(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:30Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		s := newService(t, db, cfg, true)
		tmpl := create(t, s, CreateRequest{ClusterID: 2, Title: "Nightly", Command: "success", Recurrence: "* * * * *",
			JobData: json.RawMessage(`{"message": "tick"}`), Tags: []string{"cron"}, Owner: Owner{UserName: "pipas"}})

		if n := fireAt(t, s, clock, "2030-01-01T10:00:59Z"); n != 0 {
			t.Errorf("fired %d before its time", n)
		}
		steps := []struct {
			name, at, wantNext string
		}{
			{name: "first firing", at: "2030-01-01T10:01:00Z", wantNext: "2030-01-01T10:02:00Z"},
			{name: "second firing, late", at: "2030-01-01T10:02:40Z", wantNext: "2030-01-01T10:03:00Z"},
			{name: "missed firings are not made up", at: "2030-01-01T11:30:10Z", wantNext: "2030-01-01T11:31:00Z"},
		}
		for i, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				if n := fireAt(t, s, clock, st.at); n != 1 {
					t.Fatalf("fired %d, want 1", n)
				}
				if n := fireAt(t, s, clock, st.at); n != 0 {
					t.Errorf("fired again at the same time: %d", n)
				}
				cs := children(t, s, tmpl.ID)
				if len(cs) != i+1 {
					t.Fatalf("%d children, want %d", len(cs), i+1)
				}
				c := waitEnded(t, s, cs[i].ID)
				if c.Status != StatusFinished || c.ParentJobID != tmpl.ID || c.Title != "Nightly" || c.ClusterID != 2 ||
					c.Recurrence != "" || c.UserName != "pipas" || string(c.JobData) != `{"message":"tick"}` || len(c.Tags) != 1 {
					t.Errorf("child = %+v", c)
				}
				tm, err := s.Get(context.Background(), tmpl.ID)
				if err != nil {
					t.Fatal(err)
				}
				if tm.Status != StatusScheduled || !tm.NextFireAt.Equal(mustTime(t, st.wantNext)) {
					t.Errorf("template %s next %s, want SCHEDULED next %s", tm.Status, tm.NextFireAt, st.wantNext)
				}
			})
		}
	})
}

func TestRecurringSkipsWhilePreviousRuns(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		g := newGate()
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:30Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		s := newService(t, db, cfg, true, g.command("wait"))
		tmpl := create(t, s, CreateRequest{Command: "wait", Recurrence: "*/2 * * * *"})

		fireAt(t, s, clock, "2030-01-01T10:02:00Z")
		first := g.waitStarted(t)
		fireAt(t, s, clock, "2030-01-01T10:04:00Z")
		if cs := children(t, s, tmpl.ID); len(cs) != 1 {
			t.Fatalf("%d children while the first runs, want 1", len(cs))
		}
		l, err := s.Log(ctx, tmpl.ID, MessageQuery{Ascending: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Messages) != 1 || l.Messages[0].Status != MessageWarning ||
			!strings.Contains(l.Messages[0].Text, "Skipped the run due at 2030-01-01T10:04:00.000Z") {
			t.Errorf("template messages %+v, want one skip warning", l.Messages)
		}
		g.release <- struct{}{}
		waitEnded(t, s, first)
		fireAt(t, s, clock, "2030-01-01T10:06:00Z")
		cs := children(t, s, tmpl.ID)
		if len(cs) != 2 {
			t.Fatalf("%d children after the first ended, want 2", len(cs))
		}
		g.waitStarted(t)
		g.release <- struct{}{}
		waitEnded(t, s, cs[1].ID)
	})
}

func TestPausedDoesNotFire(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:30Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		s := newService(t, db, cfg, true)
		tmpl := create(t, s, CreateRequest{Command: "success", Recurrence: "0 * * * *"})
		if _, err := s.SetStatus(ctx, tmpl.ID, StatusPaused); err != nil {
			t.Fatal(err)
		}
		if n := fireAt(t, s, clock, "2030-01-01T11:00:00Z"); n != 0 {
			t.Errorf("paused template fired %d", n)
		}
		if cs := children(t, s, tmpl.ID); len(cs) != 0 {
			t.Errorf("paused template has %d children", len(cs))
		}
		if _, err := s.SetStatus(ctx, tmpl.ID, StatusScheduled); err != nil {
			t.Fatal(err)
		}
		if n := fireAt(t, s, clock, "2030-01-01T12:00:00Z"); n != 1 {
			t.Errorf("resumed template fired %d, want 1", n)
		}
		// Killing a template ends its schedule.
		k, err := s.Kill(ctx, tmpl.ID, "admin")
		if err != nil {
			t.Fatal(err)
		}
		if k.Status != StatusAborted {
			t.Errorf("killed template is %s", k.Status)
		}
		if n := fireAt(t, s, clock, "2030-01-01T13:00:00Z"); n != 0 {
			t.Errorf("aborted template fired %d", n)
		}
	})
}

func TestScheduledOnce(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:00Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		s := newService(t, db, cfg, true)
		j := create(t, s, CreateRequest{Command: "success", Scheduled: mustTime(t, "2030-01-01T10:30:00Z")})
		if n := fireAt(t, s, clock, "2030-01-01T10:29:59Z"); n != 0 {
			t.Errorf("fired %d early", n)
		}
		if got := waitJob(t, s, j.ID, time.Second, StatusScheduled); !got.Started.IsZero() {
			t.Errorf("scheduled job started early")
		}
		if n := fireAt(t, s, clock, "2030-01-01T10:30:00Z"); n != 1 {
			t.Errorf("fired %d at its time, want 1", n)
		}
		got := waitEnded(t, s, j.ID)
		if got.Status != StatusFinished || got.ParentJobID != 0 || !got.Scheduled.Equal(mustTime(t, "2030-01-01T10:30:00Z")) {
			t.Errorf("scheduled job = %s parent %d scheduled %s", got.Status, got.ParentJobID, got.Scheduled)
		}
	})
}

func TestFiringOnceAcrossControllers(t *testing.T) {
	forEachShared(t, func(t *testing.T, db1, db2 *sql.DB) {
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:30Z"))
		cfg1, cfg2 := testConfig("c1"), testConfig("c2")
		cfg1.Clock, cfg2.Clock = clock, clock
		s1 := newService(t, db1, cfg1, false)
		s2 := newService(t, db2, cfg2, false)
		var tmpls []int64
		for range 5 {
			tmpls = append(tmpls, create(t, s1, CreateRequest{Command: "success", Recurrence: "* * * * *"}).ID)
		}
		for minute := 1; minute <= 3; minute++ {
			clock.Set(mustTime(t, "2030-01-01T10:00:00Z").Add(time.Duration(minute) * time.Minute))
			var wg sync.WaitGroup
			for _, s := range []*Service{s1, s2, s1, s2} {
				wg.Go(func() {
					if _, err := s.fireDue(context.Background()); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			// Nothing runs the children: each firing after the first is skipped.
		}
		for _, id := range tmpls {
			if cs := children(t, s1, id); len(cs) != 1 {
				t.Errorf("template %d has %d children, want 1", id, len(cs))
			}
			l, err := s1.Log(context.Background(), id, MessageQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Total != 2 {
				t.Errorf("template %d has %d skip warnings, want 2", id, l.Total)
			}
		}
	})
}

func TestParseSchedule(t *testing.T) {
	from := mustTime(t, "2030-03-10T12:00:00Z")
	tests := []struct {
		name, expr, tz, want string
	}{
		{name: "utc by default", expr: "0 9 * * *", want: "2030-03-11T09:00:00Z"},
		{name: "in a time zone", expr: "0 9 * * *", tz: "Asia/Tokyo", want: "2030-03-11T00:00:00Z"},
		{name: "descriptor", expr: "@hourly", want: "2030-03-10T13:00:00Z"},
		{name: "every 15 minutes", expr: "*/15 * * * *", want: "2030-03-10T12:15:00Z"},
		{name: "weekdays", expr: "30 6 * * 1-5", want: "2030-03-11T06:30:00Z"}, // the 10th is a Sunday
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSchedule(tc.expr, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.next(from); !got.Equal(mustTime(t, tc.want)) {
				t.Errorf("next = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:00Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		cfg.Retention = Retention{MaxAge: 24 * time.Hour, BatchSize: 2, MaxBatches: 100, Interval: -1}
		s := newService(t, db, cfg, true)

		var ids []int64
		for i := range 5 {
			j := create(t, s, CreateRequest{Command: "success", Tags: []string{"old"},
				JobData: json.RawMessage(`{"message": "m` + string(rune('0'+i)) + `"}`)})
			waitEnded(t, s, j.ID)
			(&jobLogger{s: s, jobID: j.ID}).Message(context.Background(), MessageDebug, "more")
			ids = append(ids, j.ID)
		}
		tmpl := create(t, s, CreateRequest{Command: "success", Recurrence: "0 0 1 1 *"})
		clock.Set(mustTime(t, "2030-01-02T09:00:00Z"))
		young := waitEnded(t, s, create(t, s, CreateRequest{Command: "success"}).ID)

		if n, err := s.retain(ctx); err != nil || n != 0 {
			t.Fatalf("retain before the jobs are a day old: %d, %v", n, err)
		}
		clock.Set(mustTime(t, "2030-01-02T10:00:01Z"))
		n, err := s.retain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Errorf("deleted %d jobs, want 5", n)
		}
		idList, args := sql.Placeholders(ids)
		for _, table := range []string{"jobs", "job_messages", "job_tags"} {
			if c := countRows(t, db, "SELECT COUNT(*) FROM "+table+" WHERE job_id IN ("+idList+")", args...); c != 0 {
				t.Errorf("%d rows of old jobs left in %s", c, table)
			}
		}
		for _, id := range []int64{tmpl.ID, young.ID} {
			if _, err := s.Get(ctx, id); err != nil {
				t.Errorf("job %d that should stay: %v", id, err)
			}
		}

		// By count: keep the newest two ended jobs.
		s.SetRetention(Retention{MaxAge: -1, MaxCount: 2, BatchSize: 2, MaxBatches: 100})
		var more []int64
		for range 4 {
			more = append(more, waitEnded(t, s, create(t, s, CreateRequest{Command: "fail"}).ID).ID)
		}
		if _, err := s.retain(ctx); err != nil {
			t.Fatal(err)
		}
		js, total, err := s.List(ctx, Filter{Statuses: endedStatuses})
		if err != nil {
			t.Fatal(err)
		}
		if total != 2 || js[0].ID != more[3] || js[1].ID != more[2] {
			t.Errorf("after count retention %d ended jobs left, want the newest two %v", total, more[2:])
		}
		if _, err := s.Get(ctx, tmpl.ID); err != nil {
			t.Errorf("template deleted by count retention: %v", err)
		}
	})
}

// TestScheduleAcrossClockChanges: each case walks successive firings from a
// start across a clock change. Transitions used (2025): New York springs
// forward at 07:00Z on 03-09 (02:00 EST to 03:00 EDT) and falls back at
// 06:00Z on 11-02 (02:00 EDT to 01:00 EST); Berlin at 01:00Z on 03-30
// (02:00 CET to 03:00 CEST) and 10-26 (03:00 CEST to 02:00 CET); Lord Howe
// shifts by half an hour, at 15:30Z on 10-04 (02:00 to 02:30, +11) and at
// 15:00Z on 04-05 (02:00 to 01:30, +10:30).
func TestScheduleAcrossClockChanges(t *testing.T) {
	tests := []struct {
		name, expr, tz, from string
		want                 []string
	}{
		{name: "skipped time runs right after the jump", expr: "30 2 * * *", tz: "America/New_York", from: "2025-03-08T08:00:00Z",
			want: []string{"2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z"}},
		{name: "repeated time runs once, in its first pass", expr: "30 1 * * *", tz: "America/New_York", from: "2025-11-01T12:00:00Z",
			want: []string{"2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"}},
		{name: "repeated time does not run again from its second pass", expr: "30 1 * * *", tz: "America/New_York",
			from: "2025-11-02T06:10:00Z", want: []string{"2025-11-03T06:30:00Z"}},
		{name: "skipped times of a named hour run once after the jump", expr: "*/20 2 * * *", tz: "America/New_York",
			from: "2025-03-09T06:00:00Z", want: []string{"2025-03-09T07:00:00Z", "2025-03-10T06:00:00Z"}},
		{name: "named hours next to the skipped one", expr: "0 1-23 * * *", tz: "America/New_York", from: "2025-03-09T05:30:00Z",
			want: []string{"2025-03-09T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-09T08:00:00Z"}},
		{name: "named hours next to the repeated one", expr: "0 1-23 * * *", tz: "America/New_York", from: "2025-11-02T04:30:00Z",
			want: []string{"2025-11-02T05:00:00Z", "2025-11-02T07:00:00Z"}},
		{name: "every 15 minutes across spring forward", expr: "*/15 * * * *", tz: "America/New_York", from: "2025-03-09T06:30:00Z",
			want: []string{"2025-03-09T06:45:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:15:00Z"}},
		{name: "every 15 minutes through the repeated hour", expr: "*/15 * * * *", tz: "America/New_York", from: "2025-11-02T05:30:00Z",
			want: []string{"2025-11-02T05:45:00Z", "2025-11-02T06:00:00Z", "2025-11-02T06:15:00Z"}},
		{name: "hourly across spring forward", expr: "0 * * * *", tz: "America/New_York", from: "2025-03-09T05:30:00Z",
			want: []string{"2025-03-09T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-09T08:00:00Z"}},
		{name: "hourly runs in both passes of the repeated hour", expr: "@hourly", tz: "America/New_York", from: "2025-11-02T04:30:00Z",
			want: []string{"2025-11-02T05:00:00Z", "2025-11-02T06:00:00Z", "2025-11-02T07:00:00Z"}},
		{name: "zone prefix in the expression", expr: "CRON_TZ=America/New_York 30 2 * * *", from: "2025-03-08T08:00:00Z",
			want: []string{"2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z"}},
		{name: "berlin skipped time", expr: "0 2 * * *", tz: "Europe/Berlin", from: "2025-03-29T12:00:00Z",
			want: []string{"2025-03-30T01:00:00Z", "2025-03-31T00:00:00Z"}},
		{name: "berlin repeated time", expr: "30 2 * * *", tz: "Europe/Berlin", from: "2025-10-25T12:00:00Z",
			want: []string{"2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"}},
		{name: "berlin hourly across spring forward", expr: "0 * * * *", tz: "Europe/Berlin", from: "2025-03-30T00:30:00Z",
			want: []string{"2025-03-30T01:00:00Z", "2025-03-30T02:00:00Z"}},
		{name: "berlin every 15 minutes through the repeated hour", expr: "*/15 * * * *", tz: "Europe/Berlin",
			from: "2025-10-26T00:30:00Z", want: []string{"2025-10-26T00:45:00Z", "2025-10-26T01:00:00Z", "2025-10-26T01:15:00Z"}},
		{name: "lord howe skipped half hour", expr: "0 2 * * *", tz: "Australia/Lord_Howe", from: "2025-10-04T00:00:00Z",
			want: []string{"2025-10-04T15:30:00Z", "2025-10-05T15:00:00Z"}},
		{name: "lord howe repeated half hour", expr: "45 1 * * *", tz: "Australia/Lord_Howe", from: "2025-04-05T00:00:00Z",
			want: []string{"2025-04-05T14:45:00Z", "2025-04-06T15:15:00Z"}},
		// An hourly schedule follows the clock: 02:00 never shows that night.
		{name: "lord howe hourly across spring forward", expr: "0 * * * *", tz: "Australia/Lord_Howe", from: "2025-10-04T14:00:00Z",
			want: []string{"2025-10-04T14:30:00Z", "2025-10-04T16:00:00Z"}},
		{name: "an interval is real time", expr: "@every 45m", tz: "America/New_York", from: "2025-03-09T06:30:00Z",
			want: []string{"2025-03-09T07:15:00Z", "2025-03-09T08:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSchedule(tc.expr, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			at := mustTime(t, tc.from)
			for i, want := range tc.want {
				at = s.next(at)
				if !at.Equal(mustTime(t, want)) {
					t.Fatalf("firing %d = %s, want %s", i+1, at.Format(time.RFC3339), want)
				}
			}
		})
	}
}

// TestScheduleYearRound: over a year of firings, a schedule naming a time of
// day fires once every local day, and one firing every 15 minutes keeps its
// real period, whatever the clock does.
func TestScheduleYearRound(t *testing.T) {
	for _, tz := range []string{"America/New_York", "Europe/Berlin", "Australia/Lord_Howe"} {
		t.Run(tz, func(t *testing.T) {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				t.Fatal(err)
			}
			from := time.Date(2025, 1, 1, 0, 0, 0, 0, loc)
			daily, err := parseSchedule("15 2 * * *", tz)
			if err != nil {
				t.Fatal(err)
			}
			days := 0
			for at := daily.next(from); at.In(loc).Year() == 2025; at = daily.next(at) {
				if want := from.AddDate(0, 0, days).Format(time.DateOnly); at.In(loc).Format(time.DateOnly) != want {
					t.Fatalf("fired at %s, want a firing on %s", at.In(loc), want)
				}
				days++
			}
			if days != 365 {
				t.Errorf("fired on %d days of 2025, want 365", days)
			}
			if tz == "Australia/Lord_Howe" {
				return // its half-hour shifts move the quarter hours
			}
			quarter, err := parseSchedule("*/15 * * * *", tz)
			if err != nil {
				t.Fatal(err)
			}
			end := from.AddDate(1, 0, 0)
			for at := from; at.Before(end); {
				next := quarter.next(at)
				if next.Sub(at) != 15*time.Minute {
					t.Fatalf("fired at %s after %s, want every 15 minutes", next, at)
				}
				at = next
			}
		})
	}
}

func TestParseScheduleRefuses(t *testing.T) {
	tests := []struct {
		name, expr, tz, wantMsg string
	}{
		{name: "zone prefix alone", expr: "TZ=UTC", wantMsg: `recurrence "TZ=UTC" names a time zone but no schedule`},
		{name: "cron zone prefix alone", expr: "CRON_TZ=Europe/Berlin", wantMsg: "names a time zone but no schedule"},
		{name: "unknown zone prefix", expr: "TZ=Mars/Olympus 0 9 * * *", wantMsg: "is not a valid 5-field cron expression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSchedule(tc.expr, tc.tz)
			if !errors.Is(err, ErrBadSchedule) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("parseSchedule(%q) = %v, want a bad schedule saying %q", tc.expr, err, tc.wantMsg)
			}
		})
	}
}
