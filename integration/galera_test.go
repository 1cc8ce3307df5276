package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// galeraControllers starts one controller per node of the shared Galera
// cluster, all at the same moment, on a fresh empty database.
func galeraControllers(t *testing.T) []*controller {
	t.Helper()
	dsns := services.SharedGalera(t).NewDatabase(t)
	ctrls := make([]*controller, len(dsns))
	failures := make([]string, len(dsns))
	var wg sync.WaitGroup
	for i, dsn := range dsns {
		wg.Go(func() {
			tb := &goroutineTB{TB: t, failure: &failures[i]}
			ctrls[i] = startController(tb, controllerOptions{backend: backend{name: "galera", dsn: dsn}})
		})
	}
	wg.Wait()
	for i, f := range failures {
		if f != "" {
			t.Errorf("controller on node %d: %s", i+1, f)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return ctrls
}

// goroutineTB lets startController run outside the test's goroutine: a fatal
// failure is recorded, for the test to report, and ends only that goroutine.
type goroutineTB struct {
	testing.TB
	failure *string
}

func (g *goroutineTB) Fatal(args ...any) { *g.failure = fmt.Sprint(args...); runtime.Goexit() }

func (g *goroutineTB) Fatalf(format string, args ...any) {
	*g.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestGaleraControllersStartTogether: controllers started at once on an empty
// database, each through another Galera node, all migrate it and serve; a
// named lock, which holds on one node only, let two of three die.
func TestGaleraControllersStartTogether(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			for i, c := range galeraControllers(t) {
				mustOk(t, c.curl(t, "controller", `{"operation":"ping"}`))
				if r := c.session(t, "admin", adminPassword).call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "Ok" {
					t.Errorf("whoAmI on the controller of node %d: %s", i+1, r.Raw)
				}
			}
		})
	}
}

// TestGaleraAclChangesReachOtherNodes: an ACL change through the controller of
// one node is seen by the very next check on the controller of another, every
// time: cmon makes its reads wait for what the cluster committed before.
func TestGaleraAclChangesReachOtherNodes(t *testing.T) {
	ctrls := galeraControllers(t)
	ctrls[0].createUser(t, "odo", "pw-odo-12345")
	admin := ctrls[0].session(t, "admin", adminPassword)
	odo := ctrls[0].session(t, "odo", "pw-odo-12345")
	wrong := 0
	for n := range 120 {
		writer, reader := ctrls[n%len(ctrls)], ctrls[(n+1)%len(ctrls)]
		grant := n%2 == 0
		op := `{"operation":"removeAcl","path":"/","acl":"user:odo"}`
		if grant {
			op = `{"operation":"addAcl","path":"/","acl":"user:odo:rw-"}`
		}
		mustOk(t, (&session{c: writer, jar: admin.jar}).call(t, "tree", op))
		r := (&session{c: reader, jar: odo.jar}).call(t, "tree", `{"operation":"checkAccess","path":"/","privileges":"w"}`)
		if granted := r.Status() == "Ok"; granted != grant {
			wrong++
			t.Logf("change %d (grant %v) through node %d: node %d answers %s", n, grant, n%len(ctrls)+1, (n+1)%len(ctrls)+1, r.Raw)
		}
	}
	if wrong > 0 {
		t.Fatalf("%d of 120 checks right after an ACL change on another node were stale", wrong)
	}
}

// TestGaleraLoginsAcrossControllers: correct logins spread over the three
// controllers at once all succeed, and none counts against the address
// they share: the throttle's rows, written through every node, conflict on
// Galera, and a conflict is run again rather than failed.
func TestGaleraLoginsAcrossControllers(t *testing.T) {
	ctrls := galeraControllers(t)
	const logins, parallel = 120, 6
	var failed atomic.Int32
	var wg sync.WaitGroup
	next := make(chan int)
	for range parallel {
		wg.Go(func() {
			for n := range next {
				c := ctrls[n%len(ctrls)]
				if r := c.login(t, "admin", adminPassword, filepath.Join(t.TempDir(), "jar")); r.Status() != "Ok" {
					failed.Add(1)
					t.Logf("login %d through node %d: %s", n, n%len(ctrls)+1, r.Raw)
				}
			}
		})
	}
	for n := range logins {
		next <- n
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		for i, c := range ctrls {
			log, _ := os.ReadFile(c.logPath)
			for line := range strings.Lines(string(log)) {
				if strings.Contains(line, "level=ERROR") {
					t.Logf("controller on node %d: %s", i+1, line)
				}
			}
		}
		t.Fatalf("%d of %d correct logins failed", n, logins)
	}
	// Nothing was counted against the address: a wrong password now is
	// refused as wrong, not as locked out, and the right one still works.
	for _, c := range ctrls {
		if r := c.login(t, "admin", "wrong-password-1", filepath.Join(t.TempDir(), "jar")); r.Status() != "AccessDenied" ||
			!strings.Contains(fmt.Sprint(r.Reply["error_string"]), "Username or password is incorrect.") {
			t.Fatalf("a wrong password after the logins: %s", r.Raw)
		}
		mustOk(t, c.login(t, "admin", adminPassword, filepath.Join(t.TempDir(), "jar")))
	}
}

// TestGaleraJobsRunOnceThroughThreeControllers: jobs submitted at once
// through the three controllers, whose workers claim them through three
// nodes, each run exactly once and none fails by a conflict.
func TestGaleraJobsRunOnceThroughThreeControllers(t *testing.T) {
	ctrls := galeraControllers(t)
	sessions := make([]*session, len(ctrls))
	for i, c := range ctrls {
		sessions[i] = c.session(t, "admin", adminPassword)
	}
	const total, parallel = 150, 6
	ids := make([]int64, total)
	var wg sync.WaitGroup
	next := make(chan int)
	for range parallel {
		wg.Go(func() {
			for n := range next {
				ids[n] = sessions[n%len(sessions)].createJob(t, 0, "success", map[string]any{"message": "ran"})
			}
		})
	}
	for n := range total {
		next <- n
	}
	close(next)
	wg.Wait()
	waitFor(t, 2*time.Minute, func() error {
		r := mustOk(t, sessions[0].call(t, "jobs", `{"operation":"getJobInstances","limit":1000}`))
		ended := 0
		for _, j := range r.Reply["jobs"].([]any) {
			j := j.(map[string]any)
			switch j["status"] {
			case "FINISHED":
				ended++
			case "FAILED", "ABORTED":
				t.Fatalf("job %v ended %v: %v", j["job_id"], j["status"], j["status_text"])
			}
		}
		if ended < total {
			return fmt.Errorf("%d of %d jobs finished", ended, total)
		}
		return nil
	})
	// A job run twice would say so twice in its log.
	for n, id := range ids {
		log := mustOk(t, sessions[n%len(sessions)].call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"limit":-1}`, id)))
		ran := 0
		for _, m := range log.Reply["messages"].([]any) {
			if m.(map[string]any)["message_text"] == "ran" {
				ran++
			}
		}
		if ran != 1 {
			t.Errorf("job %d ran %d times", id, ran)
		}
	}
}
