package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/sql"
)

func TestMain(m *testing.M) { os.Exit(services.Main(m)) }

// testConfig is an engine with quick polls and heartbeats.
func testConfig(id string) jobs.Config {
	return jobs.Config{
		ControllerID:      id,
		Workers:           3,
		PollInterval:      100 * time.Millisecond,
		SchedulerInterval: time.Hour,
		HeartbeatInterval: 200 * time.Millisecond,
		StaleAfter:        10 * time.Second,
		KillGrace:         2 * time.Second,
		DrainTimeout:      5 * time.Second,
		Retention:         jobs.Retention{Interval: -1},
		Logger:            services.TestLogger(),
	}
}

// newService makes an engine running cmds; a started one is stopped when
// the test ends.
func newService(t *testing.T, db *sql.DB, cfg jobs.Config, start bool, cmds ...jobs.Command) *jobs.Service {
	t.Helper()
	reg, err := jobs.NewRegistry(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jobs.New(db, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !start {
		return s
	}
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
	return s
}

func create(t *testing.T, s *jobs.Service, req jobs.CreateRequest) *jobs.Job {
	t.Helper()
	j, err := s.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("create %s: %v", req.Command, err)
	}
	return j
}

// waitEnded waits for the job to end and returns it.
func waitEnded(t *testing.T, s *jobs.Service, id int64) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	err := services.WaitFor(context.Background(), 20*time.Second, func() error {
		var err error
		if j, err = s.Get(context.Background(), id); err != nil {
			return err
		}
		if !j.Status.Ended() {
			return fmt.Errorf("job %d is %s (%q)", id, j.Status, j.StatusText)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("job %d did not end: %v", id, err)
	}
	return j
}

func isInvalid(err error) bool {
	var ie *jobs.InvalidError
	return errors.As(err, &ie)
}

// exitCode is the exit code a handler's error gives its job.
func exitCode(err error) int {
	var ee *jobs.ExitError
	if errors.As(err, &ee) && ee.Code != 0 {
		return ee.Code
	}
	return 1
}
