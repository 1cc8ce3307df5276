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

// The Galera tests run beside each other (t.Parallel), after the package's
// other tests: each works on a database of its own on the shared cluster
// (the kill drill on a cluster of its own), and one's CPU-bound replication
// fills another's waits.

// galeraControllers starts one controller per node of the shared Galera
// cluster, all at the same moment, on a fresh empty database, with env
// added to their environment.
func galeraControllers(t *testing.T, env ...string) []*controller {
	t.Helper()
	dsns := services.SharedGalera(t).NewDatabase(t)
	ctrls := make([]*controller, len(dsns))
	failures := make([]string, len(dsns))
	var wg sync.WaitGroup
	for i, dsn := range dsns {
		wg.Go(func() {
			tb := &goroutineTB{TB: t, failure: &failures[i]}
			ctrls[i] = startController(tb, controllerOptions{backend: backend{name: "galera", dsn: dsn}, env: env})
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
	t.Parallel()
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

// TestGaleraChangesReachOtherNodes: an ACL change, a logout or a password
// change through the controller of one node holds on the very next request
// to the controller of another, every time, while jobs run through all
// three: cmon makes its reads wait for what the cluster committed before.
func TestGaleraChangesReachOtherNodes(t *testing.T) {
	t.Parallel()
	galeraVisibility(t, galeraControllers(t, "CMON_LOGIN_MAX_FAILURES=1000"), 15)
}

// galeraVisibility runs rounds of changes, each through one controller and
// checked through the others, under a steady job load.
func galeraVisibility(t *testing.T, ctrls []*controller, rounds int) {
	sessions := adminSessions(t, ctrls)
	stopLoad := jobLoad(t, sessions)
	ctrls[0].createUser(t, "odo", "pw-odo-0")
	password := "pw-odo-0"
	odo := ctrls[0].session(t, "odo", password)
	as := func(c *controller, s *session) *session { return &session{c: c, jar: s.jar} }
	var wrong []string
	for n := range rounds {
		writer, reader, third := ctrls[n%len(ctrls)], ctrls[(n+1)%len(ctrls)], ctrls[(n+2)%len(ctrls)]
		where := fmt.Sprintf("round %d (through %s, read through %s)", n, writer.URL, reader.URL)

		grant := n%2 == 0
		op := `{"operation":"removeAcl","path":"/","acl":"user:odo"}`
		if grant {
			op = `{"operation":"addAcl","path":"/","acl":"user:odo:rw-"}`
		}
		mustOk(t, as(writer, sessions[0]).call(t, "tree", op))
		r := as(reader, odo).call(t, "tree", `{"operation":"checkAccess","path":"/","privileges":"w"}`)
		if granted := r.Status() == "Ok"; granted != grant {
			wrong = append(wrong, fmt.Sprintf("%s: an ACL change (grant %v): %s", where, grant, r.Raw))
		}

		other := writer.session(t, "odo", password)
		mustOk(t, as(reader, other).call(t, "auth", `{"operation":"logout"}`))
		if r := as(third, other).call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "AuthRequired" {
			wrong = append(wrong, fmt.Sprintf("%s: a session logged out: %s", where, r.Raw))
		}

		if n%5 != 4 {
			continue
		}
		old := password
		password = fmt.Sprintf("pw-odo-%d", n)
		mustOk(t, as(writer, sessions[0]).call(t, "users",
			fmt.Sprintf(`{"operation":"changePassword","user":{"user_name":"odo"},"new_password":%q}`, password)))
		if r := as(reader, odo).call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "AuthRequired" {
			wrong = append(wrong, fmt.Sprintf("%s: a session from before a password change: %s", where, r.Raw))
		}
		if r := third.login(t, "odo", old, jar(t)); r.Status() != "AccessDenied" {
			wrong = append(wrong, fmt.Sprintf("%s: the old password: %s", where, r.Raw))
		}
		odo = reader.session(t, "odo", password)
	}
	ids := stopLoad()
	if len(wrong) > 0 {
		t.Fatalf("%d checks right after a change on another node were stale:\n%s", len(wrong), strings.Join(wrong, "\n"))
	}
	waitJobsRanOnce(t, sessions, ids)
	t.Logf("%d rounds beside %d jobs; conflicts retried: %d", rounds, len(ids), conflictsRetried(t, ctrls))
}

// jobLoad runs jobs through the sessions, one client per session, each
// creating a job once its last has ended, until the returned stop is
// called; stop returns the jobs' ids.
func jobLoad(t *testing.T, sessions []*session) (stop func() []int64) {
	done := make(chan struct{})
	var mu sync.Mutex
	var ids []int64
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				// One job at a time per client: a steady load, not a flood.
				id := s.createJob(t, 0, "success", map[string]any{"message": "ran"})
				s.waitJob(t, id, time.Minute)
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	return func() []int64 {
		close(done)
		wg.Wait()
		return ids
	}
}

// TestGaleraLoginsAcrossControllers: correct logins spread over the three
// controllers at once all succeed, and none counts against the address
// they share: the throttle's rows, written through every node, conflict on
// Galera, and a conflict is run again rather than failed.
func TestGaleraLoginsAcrossControllers(t *testing.T) {
	t.Parallel()
	galeraLogins(t, galeraControllers(t), 60)
}

func galeraLogins(t *testing.T, ctrls []*controller, logins int) {
	const parallel = 6
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
	t.Logf("%d logins; conflicts retried: %d", logins, conflictsRetried(t, ctrls))
}

// TestGaleraJobsRunOnceThroughThreeControllers: jobs submitted at once
// through the three controllers, whose workers claim them through three
// nodes, each run exactly once and none fails by a conflict.
func TestGaleraJobsRunOnceThroughThreeControllers(t *testing.T) {
	t.Parallel()
	ctrls := galeraControllers(t)
	sessions := adminSessions(t, ctrls)
	ids := submitJobs(t, sessions, 150, nil)
	waitJobsRanOnce(t, sessions, ids)
	// A claim that lost a conflict and was run again takes the job its
	// last try found, not one an earlier try lost to another controller;
	// a job two claims took is run by the one that holds it, and left
	// alone by the other.
	for i, c := range ctrls {
		for line := range strings.Lines(c.Log()) {
			if strings.Contains(line, "ended by another controller") {
				t.Errorf("controller on node %d: %s", i+1, line)
			}
		}
	}
	t.Logf("%d jobs; conflicts retried: %d", len(ids), conflictsRetried(t, ctrls))
}

// adminSessions logs in as admin once and returns a session of that login
// on each controller: the session is the database's, any controller serves it.
func adminSessions(t *testing.T, ctrls []*controller) []*session {
	admin := ctrls[0].session(t, "admin", adminPassword)
	sessions := make([]*session, len(ctrls))
	for i, c := range ctrls {
		sessions[i] = &session{c: c, jar: admin.jar}
	}
	return sessions
}

// submitJobs creates total "success" jobs from several clients at once,
// round robin over sessions, and returns their ids. A TryAgain reply (the
// controller's database node just died) is sent again, as a client would;
// created, when set, hears the count after each job.
func submitJobs(t *testing.T, sessions []*session, total int, created func(n int)) []int64 {
	const parallel = 6
	ids := make([]int64, total)
	var done, retried atomic.Int32
	var wg sync.WaitGroup
	next := make(chan int)
	for range parallel {
		wg.Go(func() {
			for n := range next {
				s := sessions[n%len(sessions)]
				body := fmt.Sprintf(`{"operation":"createJobInstance","job":{"class_name":"CmonJobInstance","title":"drill %d",
					"job_spec":{"command":"success","job_data":{"message":"ran"}}}}`, n)
				waitFor(t, time.Minute, func() error {
					r := s.call(t, "jobs", body)
					if r.Status() == "TryAgain" {
						retried.Add(1)
						return fmt.Errorf("job %d through %s: %s", n, s.c.URL, r.Raw)
					}
					ids[n] = int64(mustOk(t, r).Reply["job"].(map[string]any)["job_id"].(float64))
					return nil
				})
				if created != nil {
					created(int(done.Add(1)))
				}
			}
		})
	}
	for n := range total {
		next <- n
	}
	close(next)
	wg.Wait()
	if n := retried.Load(); n > 0 {
		t.Logf("%d submissions answered TryAgain and were sent again", n)
	}
	return ids
}

// waitJobsRanOnce waits until every job of ids has FINISHED, failing at the
// first that ends otherwise, and checks from each job's log that it ran once.
func waitJobsRanOnce(t *testing.T, sessions []*session, ids []int64) {
	t.Helper()
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	waitFor(t, 3*time.Minute, func() error {
		r := mustOk(t, sessions[0].call(t, "jobs", `{"operation":"getJobInstances","show_failed":true,"show_aborted":true,"limit":1000}`))
		for _, j := range r.Reply["jobs"].([]any) {
			j := j.(map[string]any)
			if want[int64(j["job_id"].(float64))] {
				t.Fatalf("job %v ended %v: %v", j["job_id"], j["status"], j["status_text"])
			}
		}
		r = mustOk(t, sessions[0].call(t, "jobs", `{"operation":"getJobInstances","show_finished":true,"limit":1}`))
		if finished := int(r.Reply["total"].(float64)); finished < len(ids) {
			return fmt.Errorf("%d of %d jobs finished", finished, len(ids))
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

// conflictsRetried sums the controllers' cmon_db_conflicts_retried_total.
func conflictsRetried(t *testing.T, ctrls []*controller) int {
	return sumMetric(t, ctrls, "cmon_db_conflicts_retried_total")
}

// sumMetric sums an unlabelled metric over the controllers' /metrics.
func sumMetric(t *testing.T, ctrls []*controller, name string) int {
	t.Helper()
	sum := 0
	for _, c := range ctrls {
		out, err := runCurl("-sk", "--max-time", "30", c.URL+"/metrics")
		if err != nil {
			t.Fatalf("metrics of %s: %v", c.URL, err)
		}
		if !strings.Contains(out, "\n"+name+" ") {
			t.Fatalf("no %s in the metrics of %s", name, c.URL)
		}
		sum += int(scrape(out, name))
	}
	return sum
}
