package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"

	"github.com/cmon-dev/cmon/sql"
)

func TestCreateGetList(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:30Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		s := newService(t, db, cfg, false) // not started: jobs stay as created

		owner := Owner{UserID: 4, UserName: "pipas", GroupID: 4, GroupName: "testgroup", IPAddress: "127.0.0.1"}
		data := `{"path": "/tests/x.js",  "n": [1, 2]}`
		a := create(t, s, CreateRequest{ClusterID: 1, Title: "A", Command: "SUCCESS", JobData: json.RawMessage(data),
			Tags: []string{"red", " blue ", "red", ""}, Owner: owner})
		b := create(t, s, CreateRequest{ClusterID: 2, Command: "failure", Tags: []string{"blue"}})
		c := create(t, s, CreateRequest{ClusterID: 1, Command: "success",
			Scheduled: clock.Now().Add(time.Hour)})
		d := create(t, s, CreateRequest{Command: "success", Recurrence: "*/5 * * * *", Tags: []string{"green"}})

		got, err := s.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Command != "success" || got.Title != "A" || got.Status != StatusDefined || got.StatusText != TextDefined ||
			got.ClusterID != 1 || got.Owner != owner || !got.Created.Equal(clock.Now()) {
			t.Errorf("job a = %+v", got)
		}
		if want := `{"path":"/tests/x.js","n":[1,2]}`; string(got.JobData) != want {
			t.Errorf("job_data = %s, want %s: the client's object, compact", got.JobData, want)
		}
		if !slices.Equal(got.Tags, []string{"red", "blue"}) {
			t.Errorf("tags = %q", got.Tags)
		}
		// An alias is kept as the client sent it; the name as sent is the title.
		if b.Command != "failure" || b.Title != "failure" || string(b.JobData) != "{}" {
			t.Errorf("alias and defaults: command %q title %q job_data %s", b.Command, b.Title, b.JobData)
		}
		if c.Status != StatusScheduled || !c.NextFireAt.Equal(clock.Now().Add(time.Hour)) || !c.Scheduled.Equal(c.NextFireAt) {
			t.Errorf("scheduled job: %s next %s scheduled %s", c.Status, c.NextFireAt, c.Scheduled)
		}
		if d.Status != StatusScheduled || !d.NextFireAt.Equal(mustTime(t, "2030-01-01T10:05:00Z")) || d.Recurrence != "*/5 * * * *" {
			t.Errorf("recurring job: %s next %s", d.Status, d.NextFireAt)
		}
		if _, err := s.Get(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Errorf("get missing job: %v, want ErrNotFound", err)
		}

		ids := func(js []*Job) []int64 {
			var out []int64
			for _, j := range js {
				out = append(out, j.ID)
			}
			return out
		}
		tests := []struct {
			name      string
			filter    Filter
			want      []int64
			wantTotal int
		}{
			{name: "all newest first", filter: Filter{}, want: []int64{d.ID, c.ID, b.ID, a.ID}, wantTotal: 4},
			{name: "cluster 1", filter: Filter{ClusterIDs: []int64{1}}, want: []int64{c.ID, a.ID}, wantTotal: 2},
			{name: "clusters 0 and 2", filter: Filter{ClusterIDs: []int64{0, 2}}, want: []int64{d.ID, b.ID}, wantTotal: 2},
			{name: "defined", filter: Filter{Statuses: []Status{StatusDefined}}, want: []int64{b.ID, a.ID}, wantTotal: 2},
			{name: "cluster 1 scheduled", filter: Filter{ClusterIDs: []int64{1}, Statuses: []Status{StatusScheduled}},
				want: []int64{c.ID}, wantTotal: 1},
			{name: "tag blue", filter: Filter{Tags: []string{"blue"}}, want: []int64{b.ID, a.ID}, wantTotal: 2},
			{name: "any of two tags", filter: Filter{Tags: []string{"green", "red"}}, want: []int64{d.ID, a.ID}, wantTotal: 2},
			{name: "unknown tag", filter: Filter{Tags: []string{"nope"}}, want: nil, wantTotal: 0},
			{name: "limit 2", filter: Filter{Limit: 2}, want: []int64{d.ID, c.ID}, wantTotal: 4},
			{name: "limit 2 offset 1", filter: Filter{Limit: 2, Offset: 1}, want: []int64{c.ID, b.ID}, wantTotal: 4},
			{name: "offset 3 no limit", filter: Filter{Offset: 3}, want: []int64{a.ID}, wantTotal: 4},
			{name: "negative limit and offset", filter: Filter{Limit: -1, Offset: -5}, want: []int64{d.ID, c.ID, b.ID, a.ID}, wantTotal: 4},
			{name: "offset past the end", filter: Filter{Limit: 10, Offset: 10}, want: nil, wantTotal: 4},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				js, total, err := s.List(ctx, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids(js), tc.want) || total != tc.wantTotal {
					t.Errorf("got %v total %d, want %v total %d", ids(js), total, tc.want, tc.wantTotal)
				}
			})
		}
	})
}

func TestCreateInvalid(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:00Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		s := newService(t, db, cfg, false, sleepCommand())
		tests := []struct {
			name    string
			req     CreateRequest
			kind    error
			wantMsg string
		}{
			{name: "unknown command", req: CreateRequest{Command: "frobnicate"}, kind: ErrUnknownCommand,
				wantMsg: `unknown job command "frobnicate"`},
			{name: "missing command", req: CreateRequest{}, kind: ErrUnknownCommand, wantMsg: "job_spec.command is missing"},
			{name: "job_data an array", req: CreateRequest{Command: "success", JobData: json.RawMessage(`[1]`)},
				kind: ErrBadJobData, wantMsg: "job_data must be a JSON object"},
			{name: "job_data not json", req: CreateRequest{Command: "success", JobData: json.RawMessage(`{"a":`)},
				kind: ErrBadJobData, wantMsg: "job_data must be a JSON object"},
			{name: "ill-typed field", req: CreateRequest{Command: "fail", JobData: json.RawMessage(`{"exit_code": "x"}`)},
				kind: ErrBadJobData, wantMsg: `invalid job_data for command "fail": job_data field "exit_code" must be an integer, not string`},
			{name: "out of range field", req: CreateRequest{Command: "fail", JobData: json.RawMessage(`{"exit_code": 300}`)},
				kind: ErrBadJobData, wantMsg: `"exit_code" must be between 0 and 255`},
			{name: "test command ill-typed", req: CreateRequest{Command: "sleep", JobData: json.RawMessage(`{"ms": true}`)},
				kind: ErrBadJobData, wantMsg: `job_data field "ms" must be an integer, not bool`},
			{name: "negative timeout", req: CreateRequest{Command: "success", JobData: json.RawMessage(`{"timeout_sec": -1}`)},
				kind: ErrBadJobData, wantMsg: `"timeout_sec" must be a positive number of seconds`},
			{name: "timeout not a number", req: CreateRequest{Command: "success", JobData: json.RawMessage(`{"timeout_sec": "ten"}`)},
				kind: ErrBadJobData, wantMsg: `"timeout_sec" must be a number of seconds`},
			{name: "bad cron", req: CreateRequest{Command: "success", Recurrence: "61 * * * *"}, kind: ErrBadSchedule,
				wantMsg: `recurrence "61 * * * *" is not a valid 5-field cron expression`},
			{name: "six fields", req: CreateRequest{Command: "success", Recurrence: "0 0 1 * * *"}, kind: ErrBadSchedule,
				wantMsg: "is not a valid 5-field cron expression"},
			{name: "unknown time zone", req: CreateRequest{Command: "success", Recurrence: "* * * * *", TimeZone: "Mars/Olympus"},
				kind: ErrBadSchedule, wantMsg: `unknown time zone "Mars/Olympus"`},
			{name: "time zone without recurrence", req: CreateRequest{Command: "success", TimeZone: "UTC"},
				kind: ErrBadSchedule, wantMsg: "a time zone needs a recurrence"},
			{name: "schedule in the past", req: CreateRequest{Command: "success", Scheduled: clock.Now().Add(-time.Hour)},
				kind: ErrBadSchedule, wantMsg: "scheduled start 2030-01-01T09:00:00.000Z is in the past"},
			{name: "long tag", req: CreateRequest{Command: "success", Tags: []string{strings.Repeat("x", 300)}},
				wantMsg: "is longer than 255 characters"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				j, err := s.Create(context.Background(), tc.req)
				if err == nil {
					t.Fatalf("created job %d, want an error", j.ID)
				}
				if !isInvalid(err) {
					t.Errorf("error %v (%T) is not an *InvalidError", err, err)
				}
				if tc.kind != nil && !errors.Is(err, tc.kind) {
					t.Errorf("error %v is not %v", err, tc.kind)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not say %q", err, tc.wantMsg)
				}
			})
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM jobs"); n != 0 {
			t.Errorf("%d jobs stored after bad requests, want 0", n)
		}
		// A start time a moment ago means "now".
		j := create(t, s, CreateRequest{Command: "success", Scheduled: clock.Now().Add(-time.Second)})
		if j.Status != StatusDefined {
			t.Errorf("job scheduled a second ago is %s, want DEFINED", j.Status)
		}
	})
}

func TestMessagesPaging(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := newService(t, db, testConfig("c1"), false)
		j := create(t, s, CreateRequest{Command: "success"})
		other := create(t, s, CreateRequest{Command: "success"})
		lg := &jobLogger{s: s, jobID: j.ID}
		for i := range 10 {
			lg.Message(ctx, MessageSuccess, string(rune('a'+i)))
		}
		(&jobLogger{s: s, jobID: other.ID}).Message(context.Background(), MessageWarning, "other job")

		tests := []struct {
			name string
			q    MessageQuery
			want string
		}{
			{name: "all ascending", q: MessageQuery{Ascending: true, Limit: -1}, want: "abcdefghij"},
			{name: "all descending", q: MessageQuery{Limit: -1}, want: "jihgfedcba"},
			{name: "zero limit is all", q: MessageQuery{Ascending: true}, want: "abcdefghij"},
			{name: "first page ascending", q: MessageQuery{Ascending: true, Limit: 3}, want: "abc"},
			{name: "second page ascending", q: MessageQuery{Ascending: true, Limit: 3, Offset: 3}, want: "def"},
			{name: "newest three", q: MessageQuery{Limit: 3}, want: "jih"},
			{name: "negative offset is the start", q: MessageQuery{Ascending: true, Limit: 2, Offset: -1}, want: "ab"},
			{name: "offset without limit", q: MessageQuery{Ascending: true, Limit: -1, Offset: 7}, want: "hij"},
			{name: "past the end", q: MessageQuery{Ascending: true, Limit: 5, Offset: 20}, want: ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				l, err := s.Log(ctx, j.ID, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				var got strings.Builder
				for _, m := range l.Messages {
					got.WriteString(m.Text)
					if m.JobID != j.ID || m.Status != MessageSuccess || m.Created.IsZero() {
						t.Errorf("message %+v", m)
					}
				}
				if got.String() != tc.want || l.Total != 10 || l.Job.ID != j.ID {
					t.Errorf("got %q total %d job %d, want %q total 10", got.String(), l.Total, l.Job.ID, tc.want)
				}
			})
		}
		if _, err := s.Log(ctx, 9999, MessageQuery{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("log of a missing job: %v, want ErrNotFound", err)
		}
	})
}

func TestDeleteCloneSetStatus(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:30Z"))
		cfg := testConfig("c1")
		cfg.Clock = clock
		s := newService(t, db, cfg, false)

		defined := create(t, s, CreateRequest{ClusterID: 3, Title: "T", Command: "fail",
			JobData: json.RawMessage(`{"message": "x"}`), Tags: []string{"t1"}})
		tmpl := create(t, s, CreateRequest{Command: "success", Recurrence: "0 * * * *"})

		t.Run("delete defined refused", func(t *testing.T) {
			if err := s.Delete(ctx, defined.ID); !errors.Is(err, ErrWrongState) || !isInvalid(err) {
				t.Errorf("delete DEFINED: %v, want ErrWrongState", err)
			}
		})
		t.Run("delete missing", func(t *testing.T) {
			if err := s.Delete(ctx, 9999); !errors.Is(err, ErrNotFound) {
				t.Errorf("delete missing: %v, want ErrNotFound", err)
			}
		})
		t.Run("clone", func(t *testing.T) {
			c, err := s.Clone(ctx, defined.ID, Owner{UserName: "bob"})
			if err != nil {
				t.Fatal(err)
			}
			if c.ID == defined.ID || c.Status != StatusDefined || c.Command != "fail" || string(c.JobData) != string(defined.JobData) ||
				c.Title != "T" || c.ClusterID != 3 || !slices.Equal(c.Tags, []string{"t1"}) || c.UserName != "bob" {
				t.Errorf("clone = %+v", c)
			}
			ct, err := s.Clone(ctx, tmpl.ID, Owner{})
			if err != nil {
				t.Fatal(err)
			}
			if ct.Status != StatusDefined || ct.Recurrence != "" {
				t.Errorf("clone of a template is %s with recurrence %q, want a DEFINED one-off", ct.Status, ct.Recurrence)
			}
			if _, err := s.Clone(ctx, 9999, Owner{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("clone missing: %v", err)
			}
		})
		t.Run("kill defined then delete", func(t *testing.T) {
			k, err := s.Kill(ctx, defined.ID, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if k.Status != StatusAborted || k.StatusText != "Job was aborted by user alice." || k.Ended.IsZero() || !k.Started.IsZero() {
				t.Errorf("killed DEFINED job = %s %q started %v", k.Status, k.StatusText, k.Started)
			}
			if _, err := s.Kill(ctx, defined.ID, "alice"); !errors.Is(err, ErrWrongState) {
				t.Errorf("kill an ended job: %v, want ErrWrongState", err)
			}
			if err := s.Delete(ctx, defined.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, defined.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("deleted job: %v", err)
			}
			if n := countRows(t, db, "SELECT COUNT(*) FROM job_messages WHERE job_id = ?", defined.ID); n != 0 {
				t.Errorf("%d messages left", n)
			}
			if n := countRows(t, db, "SELECT COUNT(*) FROM job_tags WHERE job_id = ?", defined.ID); n != 0 {
				t.Errorf("%d tags left", n)
			}
		})
		t.Run("pause and resume", func(t *testing.T) {
			tests := []struct {
				name     string
				to       Status
				at       string
				wantNext string
				wantErr  error
			}{
				{name: "pause", to: StatusPaused, at: "2030-01-01T10:00:30Z", wantNext: "2030-01-01T11:00:00Z"},
				{name: "pause again is a no-op", to: StatusPaused, at: "2030-01-01T10:00:30Z", wantNext: "2030-01-01T11:00:00Z"},
				{name: "resume skips missed firings", to: StatusScheduled, at: "2030-01-01T13:30:00Z", wantNext: "2030-01-01T14:00:00Z"},
				{name: "not a settable status", to: StatusRunning, wantErr: ErrWrongState},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					if tc.at != "" {
						clock.Set(mustTime(t, tc.at))
					}
					j, err := s.SetStatus(ctx, tmpl.ID, tc.to)
					if tc.wantErr != nil {
						if !errors.Is(err, tc.wantErr) {
							t.Errorf("got %v, want %v", err, tc.wantErr)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if j.Status != tc.to || !j.NextFireAt.Equal(mustTime(t, tc.wantNext)) {
						t.Errorf("got %s next %s, want %s next %s", j.Status, j.NextFireAt, tc.to, tc.wantNext)
					}
				})
			}
			other := create(t, s, CreateRequest{Command: "success"})
			if _, err := s.SetStatus(ctx, other.ID, StatusPaused); !errors.Is(err, ErrWrongState) {
				t.Errorf("pause a DEFINED job: %v, want ErrWrongState", err)
			}
		})
		t.Run("delete template", func(t *testing.T) {
			if err := s.Delete(ctx, tmpl.ID); err != nil {
				t.Errorf("delete a SCHEDULED template: %v", err)
			}
		})
	})
}

func TestSpecUnmarshal(t *testing.T) {
	tests := []struct {
		name, in, wantCmd, wantData string
	}{
		{name: "object", in: `{"command": "success", "job_data": {"a": 1}}`, wantCmd: "success", wantData: `{"a": 1}`},
		{name: "job_dat spelling", in: `{"command": "x", "job_dat": {"clusterid": 21}}`, wantCmd: "x", wantData: `{"clusterid": 21}`},
		{name: "string holding the object", in: `"{\"command\": \"y\", \"job_data\": {}}"`, wantCmd: "y", wantData: `{}`},
		{name: "no job_data", in: `{"command": "z"}`, wantCmd: "z", wantData: ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Spec
			if err := json.Unmarshal([]byte(tc.in), &s); err != nil {
				t.Fatal(err)
			}
			if s.Command != tc.wantCmd || string(s.JobData) != tc.wantData {
				t.Errorf("got %q %s", s.Command, s.JobData)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	h := HandlerFunc(func(context.Context, *Job, Logger) (any, error) { return nil, nil })
	tests := []struct {
		name    string
		cmds    []Command
		wantErr string
	}{
		{name: "test commands", cmds: testCommands()},
		{name: "duplicate name", cmds: []Command{{Name: "a", Access: testAccess, Handler: h}, {Name: "A", Access: testAccess, Handler: h}}, wantErr: `"a" registered twice`},
		{name: "alias clashes", cmds: []Command{{Name: "a", Access: testAccess, Handler: h}, {Name: "b", Access: testAccess, Aliases: []string{"a"}, Handler: h}}, wantErr: "registered twice"},
		{name: "no handler", cmds: []Command{{Name: "a"}}, wantErr: "needs a name and a handler"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRegistry(tc.cmds...)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}
