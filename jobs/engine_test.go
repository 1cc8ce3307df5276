package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"

	"github.com/cmon-dev/cmon/sql"
)

func TestOutcomes(t *testing.T) {
	stubborn := make(chan struct{})
	t.Cleanup(func() { close(stubborn) })
	cmds := []Command{
		sleepCommand(),
		{Name: "panic", Access: testAccess, Handler: HandlerFunc(func(context.Context, *Job, Logger) (any, error) { panic("boom") })},
		{Name: "report", Access: testAccess, Handler: HandlerFunc(func(ctx context.Context, j *Job, log Logger) (any, error) {
			log.Progress(ctx, 40)
			log.StatusText(ctx, "Halfway")
			log.Message(ctx, MessageDebug, "working")
			return map[string]int{"nodes": 3}, nil
		})},
		{Name: "scalar", Access: testAccess, Handler: HandlerFunc(func(context.Context, *Job, Logger) (any, error) { return 7, nil })},
		{Name: "stubborn", Access: testAccess, Handler: HandlerFunc(func(context.Context, *Job, Logger) (any, error) {
			<-stubborn // ignores its context
			return nil, nil
		})},
	}
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		cfg := testConfig("c1")
		cfg.Workers = 8
		cfg.MaxRunTime = 1500 * time.Millisecond
		cfg.KillGrace = 200 * time.Millisecond
		s := newService(t, db, cfg, true, cmds...)
		tests := []struct {
			name       string
			command    string
			data       string
			wantStatus Status
			wantText   string
			wantExit   int
			wantResult string
			wantLog    string // the last message
		}{
			{name: "success", command: "success", wantStatus: StatusFinished, wantText: TextFinished},
			{name: "fail", command: "fail", wantStatus: StatusFailed, wantText: "job failed as requested", wantExit: 1,
				wantLog: "job failed as requested"},
			{name: "fail with exit code", command: "fail", data: `{"message": "no disk", "exit_code": 3}`,
				wantStatus: StatusFailed, wantText: "no disk", wantExit: 3},
			{name: "result and progress", command: "report", wantStatus: StatusFinished, wantText: TextFinished,
				wantResult: `{"nodes":3}`, wantLog: "working"},
			{name: "non-object result is wrapped", command: "scalar", wantStatus: StatusFinished, wantResult: `{"result":7}`},
			{name: "panic", command: "panic", wantStatus: StatusFailed, wantText: "job command panicked: boom", wantExit: 1},
			{name: "job timeout", command: "sleep", data: `{"ms": 60000, "timeout_sec": 0.3}`, wantStatus: StatusFailed,
				wantText: "Job timed out after 0.3 s.", wantExit: 124, wantResult: `{"exit_code":124,"exit_signal":"TERM"}`, wantLog: "Job timed out after 0.3 s."},
			{name: "controller maximum", command: "sleep", data: `{"ms": 60000, "timeout_sec": 3600}`, wantStatus: StatusFailed,
				wantText: "Job timed out after 1.5 s.", wantExit: 124, wantResult: `{"exit_code":124,"exit_signal":"TERM"}`},
			{name: "handler ignoring its context is abandoned", command: "stubborn", data: `{"timeout_sec": 0.2}`,
				wantStatus: StatusFailed, wantText: "Job timed out after 0.2 s.", wantExit: 124, wantResult: `{"exit_code":124,"exit_signal":"TERM"}`},
		}
		ids := make([]int64, len(tests))
		for i, tc := range tests {
			ids[i] = create(t, s, CreateRequest{Command: tc.command, JobData: json.RawMessage(tc.data)}).ID
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				j := waitEnded(t, s, ids[i])
				if j.Status != tc.wantStatus || j.ExitCode != tc.wantExit || (tc.wantText != "" && j.StatusText != tc.wantText) {
					t.Errorf("got %s %q exit %d, want %s %q exit %d", j.Status, j.StatusText, j.ExitCode,
						tc.wantStatus, tc.wantText, tc.wantExit)
				}
				if string(j.Result) != tc.wantResult {
					t.Errorf("result %s, want %s", j.Result, tc.wantResult)
				}
				if wantSignal := map[bool]string{true: "TERM"}[tc.wantExit == 124]; j.ExitSignal != wantSignal {
					t.Errorf("exit signal %q, want %q", j.ExitSignal, wantSignal)
				}
				if j.Started.IsZero() || j.Ended.Before(j.Started) || j.ControllerID != "c1" {
					t.Errorf("started %v ended %v controller %q", j.Started, j.Ended, j.ControllerID)
				}
				if j.Status == StatusFinished && (!j.HasProgress || j.Progress != 100) {
					t.Errorf("finished job progress %v %d", j.HasProgress, j.Progress)
				}
				if tc.wantLog != "" {
					l, err := s.Log(context.Background(), j.ID, MessageQuery{Limit: 1})
					if err != nil {
						t.Fatal(err)
					}
					if len(l.Messages) != 1 || l.Messages[0].Text != tc.wantLog {
						t.Errorf("last message %+v, want %q", l.Messages, tc.wantLog)
					}
				}
			})
		}
		// The process survived the panic and the abandoned handler: jobs still run.
		j := waitEnded(t, s, create(t, s, CreateRequest{Command: "success"}).ID)
		if j.Status != StatusFinished {
			t.Errorf("job after the failures is %s", j.Status)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM jobs WHERE exclusive_lock IS NOT NULL"); n != 0 {
			t.Errorf("%d cluster locks left", n)
		}
	})
}

func TestProgressWhileRunning(t *testing.T) {
	g := newGate()
	progress := Command{Name: "progress", Access: testAccess, Handler: HandlerFunc(func(ctx context.Context, j *Job, log Logger) (any, error) {
		log.Progress(ctx, 55)
		log.StatusText(ctx, "Copying")
		return g.command("x").Handler.Run(ctx, j, log)
	})}
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		s := newService(t, db, testConfig("c1"), true, progress)
		id := create(t, s, CreateRequest{Command: "progress"}).ID
		g.waitStarted(t)
		j := waitJob(t, s, id, 5*time.Second, StatusRunning)
		var l *JobLog
		// The gate logs its message right after it reports the start; the
		// checks below say what is missing if it never comes.
		_ = services.WaitFor(context.Background(), 5*time.Second, func() error {
			var err error
			if l, err = s.Log(context.Background(), id, MessageQuery{Ascending: true}); err != nil {
				t.Fatal(err)
			}
			if len(l.Messages) == 0 {
				return errors.New("no message yet")
			}
			return nil
		})
		if !j.HasProgress || j.Progress != 55 || j.StatusText != "Copying" || len(l.Messages) != 1 {
			t.Errorf("running job: progress %v %d text %q messages %d", j.HasProgress, j.Progress, j.StatusText, len(l.Messages))
		}
		g.release <- struct{}{}
		waitEnded(t, s, id)
	})
}

func TestClaimExactlyOnce(t *testing.T) {
	const jobs = 200
	forEachShared(t, func(t *testing.T, db1, db2 *sql.DB) {
		var mu sync.Mutex
		runs := map[int64]int{}
		by := map[string]int{}
		count := Command{Name: "count", Access: testAccess, Handler: HandlerFunc(func(ctx context.Context, j *Job, log Logger) (any, error) {
			mu.Lock()
			runs[j.ID]++
			mu.Unlock()
			return nil, nil
		})}
		s1 := newService(t, db1, testConfig("c1"), true, count)
		s2 := newService(t, db2, testConfig("c2"), true, count)

		var wg sync.WaitGroup
		ids := make(chan int64, jobs)
		for g := range 10 {
			wg.Go(func() {
				s := []*Service{s1, s2}[g%2]
				for range jobs / 10 {
					j, err := s.Create(context.Background(), CreateRequest{Command: "count"})
					if err != nil {
						t.Error(err)
						return
					}
					ids <- j.ID
				}
			})
		}
		wg.Wait()
		close(ids)
		for id := range ids {
			j := waitEnded(t, s1, id)
			if j.Status != StatusFinished {
				t.Errorf("job %d is %s %q", id, j.Status, j.StatusText)
			}
			by[j.ControllerID]++
		}
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != jobs {
			t.Errorf("%d jobs ran, want %d", len(runs), jobs)
		}
		for id, n := range runs {
			if n != 1 {
				t.Errorf("job %d ran %d times", id, n)
			}
		}
		t.Logf("jobs run per controller: %v", by)
	})
}

func TestWakeUp(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		started := make(chan time.Time, 1)
		mark := Command{Name: "mark", Access: testAccess, Handler: HandlerFunc(func(context.Context, *Job, Logger) (any, error) {
			started <- time.Now()
			return nil, nil
		})}
		cfg := testConfig("c1")
		// One worker, and no poll within the test: the job can only start
		// because its create woke the worker, idle by then.
		cfg.Workers, cfg.PollInterval = 1, time.Hour
		s := newService(t, db, cfg, false, mark)
		idle := make(chan struct{}, 1)
		s.idleHook = func() {
			select {
			case idle <- struct{}{}:
			default:
			}
		}
		startService(t, s)
		select {
		case <-idle:
		case <-time.After(20 * time.Second):
			t.Fatal("the worker never went idle")
		}
		created := time.Now()
		id := create(t, s, CreateRequest{Command: "mark"}).ID
		select {
		case at := <-started:
			t.Logf("job started %s after create", at.Sub(created))
		case <-time.After(20 * time.Second):
			t.Fatal("job not started: the create did not wake the idle worker (the poll is an hour)")
		}
		waitEnded(t, s, id)
	})
}

func TestExclusive(t *testing.T) {
	forEachShared(t, func(t *testing.T, db1, db2 *sql.DB) {
		var mu sync.Mutex
		active := map[int64]int{}
		most := map[int64]int{}
		var shared atomic.Int32
		var sharedMost atomic.Int32
		// An exclusive job holds until the next job starts beside it (one of
		// its own cluster would show in most) or the other cluster has none
		// left to start, so that a wrong overlap has every chance to happen.
		const perCluster = 6
		started := map[int64]int{}
		nextStart := make(chan struct{})
		change := Command{Name: "change", Access: testAccess, Exclusive: true, Handler: HandlerFunc(func(ctx context.Context, j *Job, log Logger) (any, error) {
			mu.Lock()
			active[j.ClusterID]++
			most[j.ClusterID] = max(most[j.ClusterID], active[j.ClusterID])
			started[j.ClusterID]++
			close(nextStart)
			nextStart = make(chan struct{})
			next, otherDone := nextStart, started[3-j.ClusterID] == perCluster
			mu.Unlock()
			if !otherDone {
				select {
				case <-next:
				case <-ctx.Done():
				case <-time.After(10 * time.Second):
				}
			}
			mu.Lock()
			active[j.ClusterID]--
			mu.Unlock()
			return nil, nil
		})}
		// Non-exclusive jobs on one cluster wait for each other: the first
		// holds until a second runs beside it (or 10s pass, which fails the
		// check below), so their overlap is a condition, not a timing window.
		together := make(chan struct{})
		var meet sync.Once
		look := Command{Name: "look", Access: testAccess, Handler: HandlerFunc(func(ctx context.Context, j *Job, log Logger) (any, error) {
			n := shared.Add(1)
			for {
				m := sharedMost.Load()
				if n <= m || sharedMost.CompareAndSwap(m, n) {
					break
				}
			}
			if n >= 2 {
				meet.Do(func() { close(together) })
			}
			select {
			case <-together:
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			shared.Add(-1)
			return nil, nil
		})}
		s1 := newService(t, db1, testConfig("c1"), true, change, look)
		s2 := newService(t, db2, testConfig("c2"), true, change, look)
		var ids []int64
		for i := range 2 * perCluster {
			ids = append(ids, create(t, []*Service{s1, s2}[i%2], CreateRequest{ClusterID: int64(1 + i%2), Command: "change"}).ID)
		}
		for range 3 {
			ids = append(ids, create(t, s1, CreateRequest{ClusterID: 1, Command: "look"}).ID)
		}
		for _, id := range ids {
			if j := waitEnded(t, s1, id); j.Status != StatusFinished {
				t.Errorf("job %d is %s %q", id, j.Status, j.StatusText)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if most[1] != 1 || most[2] != 1 {
			t.Errorf("most exclusive jobs at once per cluster: %v, want 1 each", most)
		}
		if sharedMost.Load() < 2 {
			t.Errorf("non-exclusive jobs on one cluster never ran together (most %d)", sharedMost.Load())
		}
	})
}

func TestKill(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		g := newGate()
		s := newService(t, db, testConfig("c1"), true, g.command("wait"))
		id := create(t, s, CreateRequest{Command: "wait"}).ID
		if got := g.waitStarted(t); got != id {
			t.Fatalf("started job %d, want %d", got, id)
		}
		waitJob(t, s, id, 5*time.Second, StatusRunning)
		k, err := s.Kill(ctx, id, "alice")
		if err != nil {
			t.Fatal(err)
		}
		// The reply is the job after the request, not before it.
		if !k.KillRequested || k.KilledBy != "alice" || (k.Status.Active() && k.StatusText != TextKillRequested) {
			t.Errorf("kill reply: requested %v by %q, %s %q", k.KillRequested, k.KilledBy, k.Status, k.StatusText)
		}
		select {
		case cause := <-g.cancelled:
			if !errors.Is(cause, ErrKilled) {
				t.Errorf("handler's context cause %v, want ErrKilled", cause)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler's context was not cancelled")
		}
		j := waitEnded(t, s, id)
		if j.Status != StatusAborted || j.StatusText != "Job was aborted by user alice." || j.Ended.IsZero() ||
			j.ExitCode != 143 || j.ExitSignal != "TERM" || string(j.Result) != `{"exit_code":143,"exit_signal":"TERM"}` {
			t.Errorf("killed job is %s %q exit %d signal %q result %s", j.Status, j.StatusText, j.ExitCode, j.ExitSignal, j.Result)
		}
		if _, err := s.Kill(ctx, 9999, "alice"); !errors.Is(err, ErrNotFound) {
			t.Errorf("kill missing job: %v", err)
		}
	})
}

func TestKillThroughOtherController(t *testing.T) {
	forEachShared(t, func(t *testing.T, db1, db2 *sql.DB) {
		g := newGate()
		s1 := newService(t, db1, testConfig("c1"), true, g.command("wait"))
		s2 := newService(t, db2, testConfig("c2"), true) // does not know "wait": never claims it
		id := create(t, s1, CreateRequest{Command: "wait"}).ID
		g.waitStarted(t)
		waitJob(t, s2, id, 5*time.Second, StatusRunning)
		if _, err := s2.Kill(context.Background(), id, "bob"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-g.cancelled:
		case <-time.After(5 * time.Second):
			t.Fatal("the running controller did not notice the kill")
		}
		j := waitEnded(t, s1, id)
		if j.Status != StatusAborted || j.StatusText != "Job was aborted by user bob." || j.ControllerID != "c1" {
			t.Errorf("job is %s %q on %q", j.Status, j.StatusText, j.ControllerID)
		}
	})
}

func TestStopFailsRunningJobs(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		g := newGate()
		cfg := testConfig("c1")
		reg, err := NewRegistry(g.command("wait"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(db, reg, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		id := create(t, s, CreateRequest{Command: "wait"}).ID
		g.waitStarted(t)
		waitJob(t, s, id, 5*time.Second, StatusRunning)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if cause := <-g.cancelled; !errors.Is(cause, ErrControllerStopped) {
			t.Errorf("cause %v, want ErrControllerStopped", cause)
		}
		j, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != StatusFailed || j.StatusText != TextControllerStopped {
			t.Errorf("job after stop is %s %q", j.Status, j.StatusText)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM job_controllers"); n != 0 {
			t.Errorf("%d controller rows after stop", n)
		}
	})
}

func TestRestartRecovery(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		api := newService(t, db, testConfig("c1"), false)
		now := time.Now()
		// running fakes a job claimed by a controller run, and its heartbeat row.
		running := func(controller, instance string, heartbeat time.Time) int64 {
			j := create(t, api, CreateRequest{Command: "success", ClusterID: 5})
			if _, err := db.ExecContext(ctx, `UPDATE jobs SET status = ?, controller_id = ?, instance_id = ?, started = ?
				WHERE job_id = ?`, StatusRunning, controller, instance, sql.Millis(now), j.ID); err != nil {
				t.Fatal(err)
			}
			if !heartbeat.IsZero() {
				if _, err := db.ExecContext(ctx, `INSERT INTO job_controllers (controller_id, instance_id, started, heartbeat)
					VALUES (?, ?, ?, ?)`, controller, instance, sql.Millis(now), sql.Millis(heartbeat)); err != nil {
					t.Fatal(err)
				}
			}
			return j.ID
		}
		tests := []struct {
			name       string
			id         int64
			wantStatus Status
		}{
			{name: "controller without a heartbeat row", id: running("gone", "i1", time.Time{}), wantStatus: StatusFailed},
			{name: "stale heartbeat", id: running("c9", "i2", now.Add(-time.Hour)), wantStatus: StatusFailed},
			{name: "this controller's previous run", id: running("c1", "old", now), wantStatus: StatusFailed},
			{name: "live other controller", id: running("c2", "i3", now.Add(time.Minute)), wantStatus: StatusRunning},
			{name: "defined job runs after restart", id: create(t, api, CreateRequest{Command: "success"}).ID,
				wantStatus: StatusFinished},
		}
		s := newService(t, db, testConfig("c1"), true)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				j := waitJob(t, s, tc.id, 10*time.Second, tc.wantStatus)
				if tc.wantStatus == StatusFailed {
					l, err := s.Log(ctx, j.ID, MessageQuery{})
					if err != nil {
						t.Fatal(err)
					}
					if j.StatusText != TextControllerStopped || j.Ended.IsZero() || len(l.Messages) != 1 ||
						l.Messages[0].Status != MessageFailed {
						t.Errorf("recovered job: %q ended %v messages %+v", j.StatusText, j.Ended, l.Messages)
					}
				}
			})
		}
		// The live controller dies: its heartbeat goes stale and the survivor fails its job.
		if _, err := db.ExecContext(ctx, "UPDATE job_controllers SET heartbeat = ? WHERE controller_id = 'c2'",
			sql.Millis(now.Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, s, tests[3].id, 10*time.Second, StatusFailed)
		if j.StatusText != TextControllerStopped {
			t.Errorf("job of the dead controller: %q", j.StatusText)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM jobs WHERE exclusive_lock IS NOT NULL"); n != 0 {
			t.Errorf("%d cluster locks left", n)
		}
	})
}

func TestExclusiveLockReleasedOnRecovery(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		change := Command{Name: "change", Access: testAccess, Exclusive: true, Handler: testCommands()[0].Handler}
		api := newService(t, db, testConfig("c1"), false, change)
		stuck := create(t, api, CreateRequest{Command: "change", ClusterID: 7})
		if _, err := db.ExecContext(ctx, `UPDATE jobs SET status = ?, controller_id = 'gone', instance_id = 'x',
			exclusive_lock = 7 WHERE job_id = ?`, StatusRunning, stuck.ID); err != nil {
			t.Fatal(err)
		}
		next := create(t, api, CreateRequest{Command: "change", ClusterID: 7})
		s := newService(t, db, testConfig("c1"), true, change)
		if j := waitEnded(t, s, next.ID); j.Status != StatusFinished {
			t.Errorf("exclusive job after the dead one: %s %q", j.Status, j.StatusText)
		}
		if j := waitEnded(t, s, stuck.ID); j.Status != StatusFailed {
			t.Errorf("dead controller's job: %s", j.Status)
		}
	})
}

func ExampleService_Create() {
	// The RPC layer decodes job_spec with Spec and renders the job with Wire.
	var spec Spec
	_ = json.Unmarshal([]byte(`{"command": "success", "job_dat": {"message": "hi"}}`), &spec)
	req := CreateRequest{Title: "Simulated Success", Command: spec.Command, JobData: spec.JobData}
	fmt.Println(req.Command, strings.TrimSpace(string(req.JobData)))
	// Output: success {"message": "hi"}
}

// TestClaimsOnlyWhileAlive: a controller whose own heartbeat is stale (back
// from a database outage, say) claims nothing until its heartbeat is current
// again; the others would fail what it took as the jobs of a dead
// controller.
func TestClaimsOnlyWhileAlive(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		cfg := testConfig("c1")
		// No workers and no heartbeat within the test: it claims by hand.
		cfg.Workers, cfg.HeartbeatInterval, cfg.StaleAfter = -1, time.Hour, 3*time.Hour
		s := newService(t, db, cfg, true)
		id := create(t, s, CreateRequest{Command: "success"}).ID
		setHeartbeat := func(at time.Time) {
			t.Helper()
			if _, err := db.ExecContext(ctx, "UPDATE job_controllers SET heartbeat = ? WHERE controller_id = ?", sql.Millis(at), "c1"); err != nil {
				t.Fatal(err)
			}
		}
		setHeartbeat(time.Now().Add(-cfg.StaleAfter))
		if j, err := s.claim(ctx); err != nil || j != nil {
			t.Fatalf("claim with a stale heartbeat: %v, %v", j, err)
		}
		setHeartbeat(time.Now())
		j, err := s.claim(ctx)
		if err != nil || j == nil || j.ID != id {
			t.Fatalf("claim with a current heartbeat: %v, %v, want job %d", j, err, id)
		}
	})
}
