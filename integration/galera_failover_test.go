package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestGaleraNodeKilledUnderLoad: kill -9 of a Galera node while jobs pour in
// through three controllers, and its return; then a controller that knows
// only that node, silent long enough to be thought dead, coming back.
func TestGaleraNodeKilledUnderLoad(t *testing.T) {
	t.Parallel()
	galeraKillDrill(t, 90)
}

// drillTimeout is the drill's CMON_CONTROLLER_TIMEOUT: far above the stall
// of a node's death (about 3 s, see services.StartGalera), short enough to
// wait for a controller to be thought dead.
const drillTimeout = "12s"

// galeraKillDrill runs the drill on the breakable Galera cluster, whose third
// node it kills twice, with jobs created through the controllers; it leaves
// the cluster whole.
func galeraKillDrill(t *testing.T, jobs int) {
	ctx := context.Background()
	g := services.BreakableGalera(t)
	dsns := g.NewDatabase(t)
	const victim = 2
	env := []string{"CMON_CONTROLLER_TIMEOUT=" + drillTimeout}
	// Each controller is given every node, its own first: the one on the
	// victim moves to a live node when its own dies.
	var ctrls []*controller
	for i := range dsns {
		ctrls = append(ctrls, startController(t, controllerOptions{
			backend: backend{name: "galera", dsn: services.ServerList(dsns, i)}, env: env}))
	}
	sessions := adminSessions(t, ctrls)

	t.Run("failover", func(t *testing.T) {
		// The node dies a third of the way through the jobs and comes back
		// while the rest are created.
		killAt, restartAt := make(chan struct{}), make(chan struct{})
		var once [2]sync.Once
		drill := make(chan error, 1)
		go func() {
			<-killAt
			g.Kill(victim)
			// Its controller keeps serving, from another node.
			err := services.WaitFor(ctx, time.Minute, func() error {
				r := sessions[victim].call(t, "jobs", `{"operation":"getJobInstances","limit":1}`)
				if r.Status() != "Ok" {
					return fmt.Errorf("the controller of the dead node: %s", r.Raw)
				}
				return nil
			})
			if err == nil {
				<-restartAt
				err = g.Restart(ctx, victim)
			}
			drill <- err
		}()
		ids := submitJobs(t, sessions, jobs, func(n int) {
			if n >= jobs/3 {
				once[0].Do(func() { close(killAt) })
			}
			if n >= jobs/2 {
				once[1].Do(func() { close(restartAt) })
			}
		})
		if err := <-drill; err != nil {
			t.Fatal(err)
		}
		waitJobsRanOnce(t, sessions, ids)
		if n := sumMetric(t, ctrls[victim:victim+1], "cmon_db_failovers_total"); n < 1 {
			t.Errorf("the controller of the killed node moved to another %d times", n)
		}
	})

	t.Run("returning controller", func(t *testing.T) {
		// A controller given the victim only has no node to move to.
		lone := startController(t, controllerOptions{backend: backend{name: "galera", dsn: dsns[victim]}, env: env})
		loneSession := &session{c: lone, jar: sessions[0].jar}
		waitControllers(t, sessions[0], len(ctrls)+1)
		g.Kill(victim)
		// Thought dead by the others, it must not take jobs when it is back
		// before it has told them it lives: they would fail what it runs.
		waitControllers(t, sessions[0], len(ctrls))
		r := loneSession.call(t, "jobs", `{"operation":"getJobInstances","limit":1}`)
		if r.Status() != "TryAgain" || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), "database is unreachable") {
			t.Errorf("the controller whose only node is dead: %s", r.Raw)
		}
		before := submitJobs(t, sessions[:1], jobs/5, nil)
		if err := g.Restart(ctx, victim); err != nil {
			t.Fatal(err)
		}
		after := submitJobs(t, append(sessions, loneSession), jobs/5, nil)
		waitJobsRanOnce(t, sessions, append(before, after...))
		waitControllers(t, sessions[0], len(ctrls)+1)
		mustOk(t, loneSession.call(t, "users", `{"operation":"whoAmI"}`))
	})
}

// waitControllers waits until getControllers lists n live controllers.
func waitControllers(t *testing.T, s *session, n int) {
	t.Helper()
	waitFor(t, time.Minute, func() error {
		r := s.call(t, "host", `{"operation":"getControllers"}`)
		if r.Status() != "Ok" {
			return fmt.Errorf("getControllers: %s", r.Raw)
		}
		if got := len(r.Reply["controllers"].([]any)); got != n {
			return fmt.Errorf("%d controllers live, want %d", got, n)
		}
		return nil
	})
}
