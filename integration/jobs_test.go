package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cmon-dev/cmon/integration/services"
)

// session is a client logged in to a controller with a cookie jar.
type session struct {
	c   *controller
	jar string
}

func (c *controller) session(t *testing.T, user, password string) *session {
	t.Helper()
	s := &session{c: c, jar: jar(t)}
	mustOk(t, c.login(t, user, password, s.jar))
	return s
}

func (s *session) call(t *testing.T, module, body string) curlResult {
	t.Helper()
	return s.c.curl(t, module, body, "-b", s.jar)
}

// createJob sends createJobInstance and returns the new job's id.
func (s *session) createJob(t *testing.T, clusterID int64, command string, jobData any) int64 {
	t.Helper()
	data, _ := json.Marshal(jobData)
	r := mustOk(t, s.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
		"job":{"class_name":"CmonJobInstance","title":"it","job_spec":{"command":%q,"job_data":%s}}}`, clusterID, command, data)))
	return int64(r.Reply["job"].(map[string]any)["job_id"].(float64))
}

var endedStatuses = map[string]bool{"FINISHED": true, "FAILED": true, "ABORTED": true}

// waitJob polls getJobInstance, as the reference's clients do, until the job's
// status is one of want (default: any ended status).
func (s *session) waitJob(t *testing.T, id int64, timeout time.Duration, want ...string) map[string]any {
	t.Helper()
	var job map[string]any
	waitFor(t, timeout, func() error {
		job = mustOk(t, s.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, id))).Reply["job"].(map[string]any)
		if status := job["status"].(string); !(len(want) == 0 && endedStatuses[status]) && !contains(want, status) {
			return fmt.Errorf("job %d still %s: %v", id, status, job)
		}
		return nil
	})
	return job
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustStatus(t *testing.T, job map[string]any, want string) {
	t.Helper()
	if job["status"] != want {
		t.Fatalf("job %v is %v (%v), want %s", job["job_id"], job["status"], job["status_text"], want)
	}
}

// clusterOfOne starts a controller with opts and registers, as admin, a
// cluster named name of one sshd node at addr.
func clusterOfOne(t *testing.T, opts controllerOptions, addr, name string) (*controller, *session, int64) {
	t.Helper()
	sshd := services.NewSSHD(t, addr)
	c := startController(t, opts)
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, name, sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("register: %v", job)
	}
	return c, admin, id
}

// registerCluster registers the nodes of sshd as a cluster through a job and
// returns its id.
func (s *session) registerCluster(t *testing.T, name string, sshd *services.SSHD, nodes []string, extra map[string]any) (int64, map[string]any) {
	t.Helper()
	var list []map[string]any
	for _, n := range nodes {
		list = append(list, map[string]any{"hostname": n, "port": 3306, "role": "node", "tags": []string{"db", n}})
	}
	data := map[string]any{"cluster_name": name, "cluster_type": "galera", "vendor": "mariadb", "version": "10.11",
		"ssh_user": sshd.User, "ssh_keyfile": sshd.ClientKey, "ssh_port": sshd.Port, "nodes": list}
	for k, v := range extra {
		data[k] = v
	}
	job := s.waitJob(t, s.createJob(t, 0, "register_cluster", data), 60*time.Second)
	if job["status"] != "FINISHED" {
		return 0, job
	}
	info := mustOk(t, s.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_name":%q}`, name)))
	return int64(info.Reply["cluster"].(map[string]any)["cluster_id"].(float64)), job
}

func TestClustersAndExecSeedFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		sshd := services.NewSSHD(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
		c := startController(t, controllerOptions{backend: b})
		admin := c.session(t, "admin", adminPassword)
		marker := filepath.Join(t.TempDir(), "service-actions")
		id, job := admin.registerCluster(t, "galera1", sshd, sshd.Addrs, map[string]any{
			"service_name": "mariadb", "service_command": "echo {action}-{service} >> " + marker})
		if id == 0 {
			t.Fatalf("registration failed: %v", job)
		}

		all := mustOk(t, admin.call(t, "clusters", `{"operation":"getAllClusterInfo","with_hosts":true}`))
		if all.Reply["total"] != float64(1) {
			t.Fatalf("getAllClusterInfo: %s", all.Raw)
		}
		cluster := all.Reply["clusters"].([]any)[0].(map[string]any)
		if cluster["state"] != "STARTED" || cluster["cluster_type"] != "GALERA" || cluster["effective_privileges"] != "rwx" {
			t.Fatalf("cluster: %v", cluster)
		}
		hostsList := nodesOf(cluster)
		if len(hostsList) != 3 {
			t.Fatalf("hosts: %v", hostsList)
		}
		for _, h := range hostsList {
			if h["hoststatus"] != "CmonHostOnline" || h["lastseen"] == float64(0) {
				t.Fatalf("host not online: %v", h)
			}
		}

		// The protocol's flow: create, take the job id, poll getJobInstance, read getJobLog.
		execID := admin.createJob(t, id, "exec", map[string]any{"command": `set -- $SSH_CONNECTION; echo "node-$3"; echo warn >&2`})
		done := admin.waitJob(t, execID, 60*time.Second)
		mustStatus(t, done, "FINISHED")
		result := done["result"].(map[string]any)
		nodes := result["nodes"].([]any)
		if len(nodes) != 3 || len(result["responded"].([]any)) != 3 {
			t.Fatalf("result: %v", result)
		}
		for i, n := range nodes {
			n := n.(map[string]any)
			if n["stdout"] != "node-"+sshd.Addrs[i]+"\n" || n["exit_status"] != float64(0) || !strings.Contains(n["stderr"].(string), "warn") {
				t.Fatalf("node %d result: %v", i, n)
			}
		}
		log := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"ascending":true,"limit":-1}`, execID)))
		if log.Reply["job"].(map[string]any)["status"] != "FINISHED" {
			t.Fatalf("getJobLog job: %s", log.Raw)
		}
		for _, addr := range sshd.Addrs {
			if !strings.Contains(log.Raw, "node-"+addr) {
				t.Fatalf("job log lacks node-%s output: %s", addr, log.Raw)
			}
		}
		stats := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)))
		if stats.Reply["cluster"].(map[string]any)["job_statistics"].(map[string]any)["by_state"].(map[string]any)["FINISHED"] != float64(1) {
			t.Fatalf("job_statistics: %s", stats.Raw)
		}

		// The protocol's stop example, verbatim but for the ids, with its job_dat spelling.
		stop := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"cluster_id": %d, "job": {"class_name": "CmonJobInstance",
			"job_spec": {"command": "stop", "job_dat":{"clusterid": %d, "node":{"hostname": "127.0.0.3"}}}},
			"operation": "createJobInstance"}`, id, id)))
		mustStatus(t, admin.waitJob(t, int64(stop.Reply["job"].(map[string]any)["job_id"].(float64)), 30*time.Second), "FINISHED")
		if b, _ := os.ReadFile(marker); strings.TrimSpace(string(b)) != "stop-mariadb" {
			t.Fatalf("service command ran as %q", b)
		}

		// A user without access gets the protocol's refusal and does not see the cluster.
		c.createUser(t, "readeruser", "s3cr3tP455")
		reader := c.session(t, "readeruser", "s3cr3tP455")
		denied := reader.call(t, "jobs", fmt.Sprintf(`{"cluster_id": %d, "job": {"class_name": "CmonJobInstance",
			"job_spec": {"command": "stop", "job_dat":{"clusterid": %d, "node":{"hostname": "127.0.0.3"}}}},
			"operation": "createJobInstance"}`, id, id))
		if denied.Status() != "AccessDenied" || denied.Reply["error_string"] != fmt.Sprintf("Execute access to cluster %d for user readeruser is denied.", id) {
			t.Fatalf("reader's stop: %s", denied.Raw)
		}
		if r := mustOk(t, reader.call(t, "clusters", `{"operation":"getAllClusterInfo"}`)); r.Reply["total"] != float64(0) {
			t.Fatalf("reader sees clusters: %s", r.Raw)
		}
		if r := mustOk(t, reader.call(t, "jobs", `{"operation":"getJobInstances"}`)); r.Reply["total"] != float64(0) {
			t.Fatalf("reader sees jobs: %s", r.Raw)
		}

		mustStatus(t, admin.waitJob(t, admin.createJob(t, id, "remove_cluster", map[string]any{}), 30*time.Second), "FINISHED")
		if r := admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)); r.Status() != "ObjectNotFound" || r.Reply["error_string"] != "Cluster was not found." {
			t.Fatalf("removed cluster: %s", r.Raw)
		}
		if r := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, execID))); r.Reply["job"] == nil {
			t.Fatal("the removed cluster's job history is gone")
		}
	})
}

func TestRegistrationWithUnreachableNodeStoresNothing(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.5", "127.0.0.6")
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "broken", sshd, []string{"127.0.0.5", "127.0.0.6", "127.0.0.99"}, nil)
	if id != 0 || job["status"] != "FAILED" || !strings.Contains(fmt.Sprint(job["status_text"]), "127.0.0.99") {
		t.Fatalf("registration with an unreachable node: %v", job)
	}
	if r := mustOk(t, admin.call(t, "clusters", `{"operation":"getAllClusterInfo"}`)); r.Reply["total"] != float64(0) {
		t.Fatalf("a failed registration stored a cluster: %s", r.Raw)
	}
}

func TestMonitorDegradedAndBack(t *testing.T) {
	sshd := services.NewSSHDPerNode(t, "127.0.0.7", "127.0.0.8", "127.0.0.9")
	c := startController(t, controllerOptions{env: []string{"CMON_MONITOR_INTERVAL=1s"}})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "monitored", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("registration: %v", job)
	}
	waitState := func(state, offlineHost string) {
		t.Helper()
		// Two monitor intervals, with their jitter, plus the check itself.
		waitFor(t, 2*1200*time.Millisecond+10*time.Second, func() error {
			r := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)))
			cl := r.Reply["cluster"].(map[string]any)
			ok := cl["state"] == state
			for _, h := range nodesOf(cl) {
				want := "CmonHostOnline"
				if h["hostname"] == offlineHost {
					want = "CmonHostOffLine"
				}
				ok = ok && h["hoststatus"] == want
			}
			if !ok {
				return fmt.Errorf("cluster did not become %s (offline %q): %s", state, offlineHost, r.Raw)
			}
			return nil
		})
	}
	sshd.PauseNode(1)
	waitState("DEGRADED", "127.0.0.8")
	if err := sshd.ResumeNode(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	waitState("STARTED", "")
	if !strings.Contains(c.Log(), "cluster state changed") {
		t.Fatal("state changes are not logged")
	}
	check := admin.waitJob(t, admin.createJob(t, id, "check_hosts", map[string]any{}), 30*time.Second)
	mustStatus(t, check, "FINISHED")
}

// pgrepGone waits until no process's command line contains marker.
func pgrepGone(t *testing.T, marker string) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if out, err := exec.Command("pgrep", "-f", marker).Output(); err == nil || len(out) > 0 {
			return fmt.Errorf("processes with %s still run: %s", marker, out)
		}
		return nil
	})
}

func pgrepSeen(t *testing.T, marker string) {
	t.Helper()
	waitFor(t, 20*time.Second, func() error {
		if out, _ := exec.Command("pgrep", "-f", marker).Output(); len(out) == 0 {
			return fmt.Errorf("no process with %s started", marker)
		}
		return nil
	})
}

func TestKillTimeoutAndCrashRecovery(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.10", "127.0.0.11")
	c := startController(t, controllerOptions{env: []string{"CMON_JOB_WORKERS=2"}})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "killable", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("registration: %v", job)
	}
	// Commands travel on stdin, so ps shows only the processes they start: a
	// sleep with a unique fractional duration marks each test's remote process.
	stamp := fmt.Sprint(time.Now().UnixNano() % 1_000_000_000)
	sleeper := func(tag int) (command, marker string) {
		marker = fmt.Sprintf("sleep 300.%d%s", tag, stamp)
		return marker + "; echo never", marker
	}

	t.Run("kill mid-run", func(t *testing.T) {
		command, marker := sleeper(1)
		jobID := admin.createJob(t, id, "exec", map[string]any{"command": command, "execute_concurrently": true})
		admin.waitJob(t, jobID, 20*time.Second, "RUNNING")
		pgrepSeen(t, marker)
		kill := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"killJobInstance","job_id":%d}`, jobID)))
		// The reply says what the kill did, not how the job was before it.
		if k := kill.Reply["job"].(map[string]any); k["status_text"] != "Kill requested." && k["status"] != "ABORTED" {
			t.Fatalf("killJobInstance reply: %s", kill.Raw)
		}
		aborted := admin.waitJob(t, jobID, 30*time.Second)
		mustStatus(t, aborted, "ABORTED")
		result, _ := aborted["result"].(map[string]any)
		if aborted["exit_code"] != float64(143) || aborted["exit_signal"] != "TERM" ||
			result["exit_code"] != float64(143) || result["exit_signal"] != "TERM" || result["nodes"] == nil {
			t.Fatalf("an aborted job must not look successful: %v", aborted)
		}
		pgrepGone(t, marker)
	})
	t.Run("timeout leaves no remote process", func(t *testing.T) {
		command, marker := sleeper(2)
		jobID := admin.createJob(t, id, "exec", map[string]any{"command": command, "timeout_sec": 1})
		pgrepSeen(t, marker)
		done := admin.waitJob(t, jobID, 30*time.Second)
		mustStatus(t, done, "FAILED")
		if done["exit_code"] == float64(0) || done["exit_signal"] != "TERM" {
			t.Fatalf("a timed-out job must not look successful: %v", done)
		}
		pgrepGone(t, marker)
	})
	t.Run("kill -9 of the controller mid-job", func(t *testing.T) {
		command, marker := sleeper(3)
		running := admin.createJob(t, id, "exec", map[string]any{"command": command, "nodes": []string{"127.0.0.10"}})
		admin.waitJob(t, running, 20*time.Second, "RUNNING")
		// Fill the other worker so one more job stays queued across the crash.
		blocker := admin.createJob(t, id, "exec", map[string]any{"command": command, "nodes": []string{"127.0.0.11"}})
		admin.waitJob(t, blocker, 20*time.Second, "RUNNING")
		queued := admin.createJob(t, 0, "success", map[string]any{})
		admin.waitJob(t, queued, 5*time.Second, "DEFINED")
		c.Kill()
		c.start()
		admin = c.session(t, "admin", adminPassword)
		for _, jid := range []int64{running, blocker} {
			crashed := admin.waitJob(t, jid, 30*time.Second)
			mustStatus(t, crashed, "FAILED")
			if !strings.Contains(fmt.Sprint(crashed["status_text"]), "controller stopped") {
				t.Fatalf("status_text of a job cut by a crash: %v", crashed["status_text"])
			}
			// Recovery ends the commands the crash left running, as a kill
			// would, and says so in the job's log.
			waitFor(t, time.Minute, func() error {
				log := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"limit":-1}`, jid)))
				if !strings.Contains(log.Raw, "the command left running when the controller stopped (process group ") ||
					!strings.Contains(log.Raw, "was ended (TERM, then KILL after 5 s)") {
					return fmt.Errorf("job %d's log does not say its command was ended: %.2000s", jid, log.Raw)
				}
				return nil
			})
		}
		pgrepGone(t, marker)
		mustStatus(t, admin.waitJob(t, queued, 30*time.Second), "FINISHED")
	})
}

func TestTwoHundredJobsRunExactlyOnce(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.12")
	dsn := backend{name: "mariadb", dsn: sharedDSN(t)}
	a := startController(t, controllerOptions{backend: dsn})
	b := startController(t, controllerOptions{backend: dsn})
	admin := a.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "busy", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("registration: %v", job)
	}
	out := filepath.Join(t.TempDir(), "runs")
	const n = 200
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			target := a
			if i%2 == 1 {
				target = b
			}
			body := fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,"authenticate":{"username":"admin","password":%q},
				"job":{"job_spec":{"command":"exec","job_data":{"command":"echo run-%d >> %s"}}}}`, id, adminPassword, i, out)
			cmd := exec.Command("curl", "-sk", "--max-time", "60", "--data-binary", "@-", target.URL+"/v2/jobs")
			cmd.Stdin = strings.NewReader(body)
			if res, err := cmd.Output(); err != nil || !strings.Contains(string(res), `"request_status": "Ok"`) {
				errs <- fmt.Sprintf("job %d: %v %s", i, err, res)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	waitFor(t, 3*time.Minute, func() error {
		r := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstances","cluster_id":%d,"show_finished":true}`, id)))
		if r.Reply["total"] != float64(n) {
			return fmt.Errorf("finished jobs: %v of %d", r.Reply["total"], n)
		}
		return nil
	})
	b2, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Fields(string(b2)) {
		seen[line]++
	}
	for i := range n {
		if k := fmt.Sprintf("run-%d", i); seen[k] != 1 {
			t.Fatalf("%s ran %d times", k, seen[k])
		}
	}
}

func TestRecurringJobFiresAndPauses(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	r := mustOk(t, admin.call(t, "jobs", `{"operation":"createJobInstance","job":{"title":"tick","recurrence":"@every 1s",
		"job_spec":{"command":"success","job_data":{"message":"tick"}}}}`))
	tmpl := r.Reply["job"].(map[string]any)
	if tmpl["status"] != "SCHEDULED" {
		t.Fatalf("recurring job: %v", tmpl)
	}
	// children counts the template's runs, and those not ended yet.
	children := func() (all, active int) {
		list := mustOk(t, admin.call(t, "jobs", `{"operation":"getJobInstances","limit":1000}`))
		for _, j := range list.Reply["jobs"].([]any) {
			if j := j.(map[string]any); j["parent_job_id"] == tmpl["job_id"] {
				all++
				if !endedStatuses[j["status"].(string)] {
					active++
				}
			}
		}
		return all, active
	}
	waitFor(t, 20*time.Second, func() error {
		if n, _ := children(); n < 2 {
			return fmt.Errorf("recurring job fired %d times", n)
		}
		return nil
	})
	mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"updateJobInstance","job":{"job_id":%v,"status":"PAUSED"}}`, tmpl["job_id"])))
	// A firing already under way finishes; after that, none comes.
	var paused int
	waitFor(t, 20*time.Second, func() error {
		var active int
		if paused, active = children(); active > 0 {
			return fmt.Errorf("%d runs still under way", active)
		}
		return nil
	})
	// That nothing happens takes a span to show: three firing intervals.
	stays(t, 3*time.Second, func() error {
		if n, _ := children(); n != paused {
			return fmt.Errorf("a paused template fired: %d -> %d", paused, n)
		}
		return nil
	})
}

func TestJobsBadInput(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	tests := []struct {
		name, body, wantStatus, wantError string
	}{
		{name: "unknown command", body: `{"operation":"createJobInstance","job":{"job_spec":{"command":"explode"}}}`,
			wantStatus: "InvalidRequest", wantError: "explode"},
		{name: "unknown cluster", body: `{"operation":"createJobInstance","cluster_id":4242,"job":{"job_spec":{"command":"exec","job_data":{"command":"true"}}}}`,
			wantStatus: "ObjectNotFound", wantError: "Cluster was not found."},
		{name: "bad cron", body: `{"operation":"createJobInstance","job":{"recurrence":"every tuesday","job_spec":{"command":"success"}}}`,
			wantStatus: "InvalidRequest"},
		{name: "schedule in the past", body: `{"operation":"createJobInstance","job":{"scheduled":"2001-01-01T00:00:00.000Z","job_spec":{"command":"success"}}}`,
			wantStatus: "InvalidRequest"},
		{name: "job_data of wrong type", body: `{"operation":"createJobInstance","job":{"job_spec":{"command":"fail","job_data":{"exit_code":"x"}}}}`,
			wantStatus: "InvalidRequest"},
		{name: "missing job", body: `{"operation":"createJobInstance"}`, wantStatus: "InvalidRequest"},
		{name: "no such job", body: `{"operation":"getJobInstance","job_id":987654}`, wantStatus: "ObjectNotFound"},
		{name: "job_id not a number", body: `{"operation":"getJobLog","job_id":"seven"}`, wantStatus: "InvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := admin.call(t, "jobs", tt.body)
			if r.Status() != tt.wantStatus || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), tt.wantError) {
				t.Fatalf("want %s mentioning %q: %s", tt.wantStatus, tt.wantError, r.Raw)
			}
		})
	}
	if r := mustOk(t, admin.call(t, "jobs", `{"operation":"getJobInstances"}`)); r.Reply["total"] != float64(0) {
		t.Fatalf("bad input queued jobs: %s", r.Raw)
	}
	// fail and success finish at once, for clients' self-tests.
	mustStatus(t, admin.waitJob(t, admin.createJob(t, 0, "fail", map[string]any{"message": "as asked"}), 10*time.Second), "FAILED")
	done := admin.waitJob(t, admin.createJob(t, 0, "success", map[string]any{}), 10*time.Second)
	mustStatus(t, done, "FINISHED")
	if r := admin.call(t, "jobs", fmt.Sprintf(`{"operation":"updateJobInstance","job":{"job_id":%v,"status":"RUNNING"}}`, done["job_id"])); r.Status() != "InvalidRequest" {
		t.Fatalf("update to RUNNING: %s", r.Raw)
	}
	if r := admin.call(t, "jobs", fmt.Sprintf(`{"operation":"deleteJobInstance","job_id":%v}`, done["job_id"])); r.Status() != "Ok" {
		t.Fatalf("delete a finished job: %s", r.Raw)
	}
}

func TestExecSequentialConcurrentAbortOnError(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.13", "127.0.0.14", "127.0.0.15")
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "modes", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("registration: %v", job)
	}
	// Fails on the second node only.
	failing := `set -- $SSH_CONNECTION; [ "$3" != 127.0.0.14 ]`
	tests := []struct {
		name                       string
		data                       map[string]any
		wantResponded, wantPending int
	}{
		{name: "sequential aborts after the first failure", data: map[string]any{"command": failing},
			wantResponded: 2, wantPending: 1},
		{name: "sequential without abort_on_error runs all", data: map[string]any{"command": failing, "abort_on_error": false},
			wantResponded: 3},
		{name: "concurrent runs all", data: map[string]any{"command": failing, "execute_concurrently": true},
			wantResponded: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := admin.waitJob(t, admin.createJob(t, id, "exec", tt.data), 60*time.Second)
			mustStatus(t, done, "FAILED")
			result := done["result"].(map[string]any)
			pending, _ := result["pending"].([]any)
			if got := len(result["responded"].([]any)); got != tt.wantResponded || len(pending) != tt.wantPending {
				t.Fatalf("responded %d pending %d, want %d and %d: %v", got, len(pending), tt.wantResponded, tt.wantPending, result)
			}
			if !strings.Contains(fmt.Sprint(done["status_text"]), "127.0.0.14") {
				t.Fatalf("status_text does not name the failing node: %v", done["status_text"])
			}
		})
	}
	// timeout_sec bounds each node, not the sequence: 3 x 1 s under a 2 s timeout finishes.
	mustStatus(t, admin.waitJob(t, admin.createJob(t, id, "exec", map[string]any{"command": "sleep 1", "timeout_sec": 2}), 60*time.Second), "FINISHED")

	// Sequential means one node after another: the start times do not overlap.
	done := admin.waitJob(t, admin.createJob(t, id, "exec", map[string]any{"command": "sleep 0.3"}), 60*time.Second)
	mustStatus(t, done, "FINISHED")
	nodes := done["result"].(map[string]any)["nodes"].([]any)
	for i := 1; i < len(nodes); i++ {
		prevEnd := nodes[i-1].(map[string]any)["ended"].(string)
		start := nodes[i].(map[string]any)["started"].(string)
		if start < prevEnd {
			t.Fatalf("node %d started at %s before node %d ended at %s", i, start, i-1, prevEnd)
		}
	}
}

func TestRegistrationPinsHostKeyFingerprints(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.16")
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	register := func(fp string) map[string]any {
		data := map[string]any{"cluster_name": "pinned", "cluster_type": "generic", "ssh_user": sshd.User,
			"ssh_keyfile": sshd.ClientKey, "ssh_port": sshd.Port,
			"nodes": []map[string]any{{"hostname": "127.0.0.16", "host_key_fingerprints": []string{fp}}}}
		return admin.waitJob(t, admin.createJob(t, 0, "register_cluster", data), 60*time.Second)
	}
	wrong := register("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	mustStatus(t, wrong, "FAILED")
	if !strings.Contains(fmt.Sprint(wrong["status_text"]), "host key") {
		t.Fatalf("a wrong fingerprint should fail on the host key: %v", wrong["status_text"])
	}
	if r := mustOk(t, admin.call(t, "clusters", `{"operation":"getAllClusterInfo"}`)); r.Reply["total"] != float64(0) {
		t.Fatalf("a cluster was stored: %s", r.Raw)
	}
	mustStatus(t, register(ssh.FingerprintSHA256(sshd.HostKey())), "FINISHED")
	r := admin.call(t, "jobs", `{"operation":"createJobInstance","job":{"job_spec":{"command":"register_cluster","job_data":{
		"cluster_name":"x","cluster_type":"generic","ssh_user":"root","nodes":[{"hostname":"127.0.0.17","host_key_fingerprints":["md5:xx"]}]}}}}`)
	if r.Status() != "InvalidRequest" {
		t.Fatalf("a malformed fingerprint: %s", r.Raw)
	}
}
