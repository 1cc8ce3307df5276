package jobs

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"

	"github.com/cmon-dev/cmon/sql"
)

// switchPermit refuses every job once refuse is set, as an owner deleted,
// disabled or stripped of a privilege is.
type switchPermit struct {
	mu     sync.Mutex
	refuse string
}

func (p *switchPermit) set(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = reason
}

func (p *switchPermit) Permit(context.Context, *Job, *Draft) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse != "" {
		return &RefusedError{p.refuse}
	}
	return nil
}

func TestRefusedOwnersJobsDoNotRun(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		clock := newFakeClock(mustTime(t, "2030-01-01T10:00:30Z"))
		permit := &switchPermit{}
		cfg := testConfig("c1")
		cfg.Clock, cfg.Permit = clock, permit
		s := newService(t, db, cfg, true)
		tmpl := create(t, s, CreateRequest{Command: "success", Recurrence: "* * * * *", Owner: Owner{UserID: 7, UserName: "bob"}})
		if n := fireAt(t, s, clock, "2030-01-01T10:01:00Z"); n != 1 {
			t.Fatalf("fired %d, want 1", n)
		}
		if c := waitEnded(t, s, children(t, s, tmpl.ID)[0].ID); c.Status != StatusFinished {
			t.Fatalf("a permitted firing: %s %q", c.Status, c.StatusText)
		}

		// Refused, a job fails without running.
		permit.set("its owner bob is disabled")
		plain := create(t, s, CreateRequest{Command: "success", Owner: Owner{UserID: 7, UserName: "bob"}})
		if j := waitEnded(t, s, plain.ID); j.Status != StatusFailed || j.StatusText != "Not run: its owner bob is disabled." {
			t.Fatalf("a refused job: %s %q", j.Status, j.StatusText)
		}

		// The template does not fire again: it is paused, and says why.
		if n := fireAt(t, s, clock, "2030-01-01T10:02:00Z"); n != 0 {
			t.Errorf("a refused template fired %d times", n)
		}
		got, err := s.Get(context.Background(), tmpl.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != StatusPaused || got.StatusText != "Paused: its owner bob is disabled." || len(children(t, s, tmpl.ID)) != 1 {
			t.Fatalf("template after a refusal: %s %q, %d children", got.Status, got.StatusText, len(children(t, s, tmpl.ID)))
		}
		l, err := s.Log(context.Background(), tmpl.ID, MessageQuery{Limit: -1})
		if err != nil || !slices.ContainsFunc(l.Messages, func(m Message) bool {
			return m.Status == MessageFailed && m.Text == "Not run: its owner bob is disabled. The schedule is paused."
		}) {
			t.Fatalf("template log: %+v %v", l, err)
		}
	})
}
