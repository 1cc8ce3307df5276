package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/sql"
)

func TestMain(m *testing.M) { os.Exit(services.Main(m)) }

// testConfig is quick: short polls and heartbeats.
func testConfig(id string) Config {
	return Config{
		ControllerID:      id,
		Workers:           3,
		PollInterval:      100 * time.Millisecond,
		SchedulerInterval: time.Hour, // tests fire schedules themselves
		HeartbeatInterval: 200 * time.Millisecond,
		// Generous: a heartbeat waits for SQLite's write lock, and under -race
		// with many writers that can take a second.
		StaleAfter:   10 * time.Second,
		KillGrace:    2 * time.Second,
		DrainTimeout: 5 * time.Second,
		Retention:    Retention{Interval: -1},
		Logger:       services.TestLogger(),
	}
}

// newService makes a Service; started ones are stopped when the test ends.
func newService(t *testing.T, db *sql.DB, cfg Config, start bool, cmds ...Command) *Service {
	t.Helper()
	reg, err := NewRegistry(append(testCommands(), cmds...)...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if start {
		startService(t, s)
	}
	return s
}

// startService starts s and stops it when the test ends.
func startService(t *testing.T, s *Service) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// forEachShared runs fn on each backend with two handles on one database, as
// two controllers sharing it have.
func forEachShared(t *testing.T, fn func(t *testing.T, db1, db2 *sql.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db1 := services.OpenSQLite(t)
		db2, err := sql.OpenSQLite(context.Background(), strings.TrimPrefix(db1.Where, "sqlite:"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db2.Close() })
		fn(t, db1, db2)
	})
	t.Run("mariadb", func(t *testing.T) {
		dsn := services.SharedMariaDB(t).NewDatabase(t)
		open := func() *sql.DB {
			db, err := sql.Open(context.Background(), dsn, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		db1, db2 := open(), open()
		if _, err := db1.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		fn(t, db1, db2)
	})
}

func create(t *testing.T, s *Service, req CreateRequest) *Job {
	t.Helper()
	j, err := s.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("create %s: %v", req.Command, err)
	}
	return j
}

// waitJob polls until the job's status is one of want and returns it.
func waitJob(t *testing.T, s *Service, id int64, timeout time.Duration, want ...Status) *Job {
	t.Helper()
	var j *Job
	err := services.WaitFor(context.Background(), timeout, func() error {
		var err error
		if j, err = s.Get(context.Background(), id); err != nil {
			return err
		}
		if !slices.Contains(want, j.Status) {
			return fmt.Errorf("job %d is %s (%q), want %v", id, j.Status, j.StatusText, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func waitEnded(t *testing.T, s *Service, id int64) *Job {
	t.Helper()
	return waitJob(t, s, id, 20*time.Second, StatusFinished, StatusFailed, StatusAborted)
}

// testAccess lets the test commands run with or without a cluster.
var testAccess = Access{Need: rbac.Execute, ClusterOptional: true}

// testCommands are the engine tests' "success" (logs job_data.message if
// given) and "fail", alias "failure" (fails with job_data.message, default
// "job failed as requested", and exit code job_data.exit_code, 0 to 255,
// default 1).
func testCommands() []Command {
	type data struct {
		Message  string `json:"message"`
		ExitCode int    `json:"exit_code"`
	}
	parse := func(raw json.RawMessage) (*data, error) {
		d := &data{}
		if err := DecodeJobData(raw, d); err != nil {
			return nil, err
		}
		if d.ExitCode < 0 || d.ExitCode > 255 {
			return nil, errors.New("job_data field \"exit_code\" must be between 0 and 255")
		}
		return d, nil
	}
	success := Command{Name: "success", Access: testAccess}
	success.Validate, success.Handler = Parsed(parse, func(ctx context.Context, _ *Job, d *data, log Logger) (any, error) {
		if d.Message != "" {
			log.Message(ctx, MessageSuccess, d.Message)
		}
		return nil, nil
	})
	fail := Command{Name: "fail", Aliases: []string{"failure"}, Access: testAccess}
	fail.Validate, fail.Handler = Parsed(parse, func(ctx context.Context, _ *Job, d *data, log Logger) (any, error) {
		if d.Message == "" {
			d.Message = "job failed as requested"
		}
		log.Message(ctx, MessageFailed, d.Message)
		return nil, &ExitError{Code: d.ExitCode, Err: errors.New(d.Message)}
	})
	return []Command{success, fail}
}

// sleepCommand is the test-only "sleep" command: it waits job_data.ms
// milliseconds, or until its context ends.
func sleepCommand() Command {
	type data struct {
		MS int `json:"ms"`
	}
	c := Command{Name: "sleep", Access: testAccess}
	parse := func(raw json.RawMessage) (*data, error) {
		d := &data{}
		return d, DecodeJobData(raw, d)
	}
	c.Validate, c.Handler = Parsed(parse, func(ctx context.Context, _ *Job, d *data, _ Logger) (any, error) {
		select {
		case <-time.After(time.Duration(d.MS) * time.Millisecond):
			return nil, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	})
	return c
}

// gate is a command whose runs block until released or cancelled, and that
// reports what happened to them.
type gate struct {
	started   chan int64
	release   chan struct{}
	cancelled chan error
}

func newGate() *gate {
	return &gate{started: make(chan int64, 100), release: make(chan struct{}), cancelled: make(chan error, 100)}
}

func (g *gate) command(name string) Command {
	return Command{
		Name:   name,
		Access: testAccess,
		Handler: HandlerFunc(func(ctx context.Context, job *Job, log Logger) (any, error) {
			g.started <- job.ID
			log.Message(ctx, MessageSuccess, "waiting at the gate")
			select {
			case <-g.release:
				return nil, nil
			case <-ctx.Done():
				g.cancelled <- context.Cause(ctx)
				return nil, ctx.Err()
			}
		}),
	}
}

func (g *gate) waitStarted(t *testing.T) int64 {
	t.Helper()
	select {
	case id := <-g.started:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("no job started at the gate")
		return 0
	}
}

// fakeClock is a Clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func isInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

func countRows(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
