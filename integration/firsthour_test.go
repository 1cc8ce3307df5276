package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cmon-dev/cmon/integration/services"
)

// repoRoot is the repository, where the Makefile is.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// lineWatcher collects a process's output lines and lets a test wait for one.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func watchLines(r io.Reader) *lineWatcher {
	w := &lineWatcher{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *lineWatcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// waitMatch waits until the output matches re and returns the submatches.
func (w *lineWatcher) waitMatch(t *testing.T, timeout time.Duration, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	waitFor(t, timeout, func() error {
		if m = re.FindStringSubmatch(w.text()); m == nil {
			return fmt.Errorf("no line matches %s in:\n%s", re, w.text())
		}
		return nil
	})
	return m
}

// portClosed waits until nothing listens on addr any more.
func portClosed(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		return fmt.Errorf("%s still accepts connections", addr)
	})
}

// startMake runs make in the repository with its output watched.
func startMake(t *testing.T, args ...string) (*exec.Cmd, *lineWatcher) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = repoRoot(t)
	return cmd, startWatched(t, cmd)
}

// startWatched starts cmd with its output watched, in a process group of
// its own; the group is killed, if it still runs, when the test ends (make's
// children hold the output open after make itself is gone).
func startWatched(t *testing.T, cmd *exec.Cmd) *lineWatcher {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := watchLines(out)
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
		_ = cmd.Wait()
	})
	return w
}

// TestMakeRunSaysItIsBuilding: make run names the build before the long
// first compile, then serves until it gets SIGTERM.
func TestMakeRunSaysItIsBuilding(t *testing.T) {
	dir := t.TempDir()
	port, err := services.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := startMake(t, "run", "BIN="+filepath.Join(dir, "cmon"), "RUN_DIR="+filepath.Join(dir, "data"),
		"RUN_ARGS=--rpc-port "+strconv.Itoa(port))
	out.waitMatch(t, 5*time.Minute, regexp.MustCompile(`(?s)building .*cmon.*go build`))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, 5*time.Minute, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	portClosed(t, addr)
}

// TestMakeDemo runs the demo as README says, through make: distinct node host
// keys, hosts with their SSH port, a private log, and SIGTERM to make stopping
// the demo, its sshd nodes and cmon. Run again directly, the demo stops
// everything and says so when its cmon dies.
func TestMakeDemo(t *testing.T) {
	dir := t.TempDir()
	demoBin := filepath.Join(dir, "cmon-demo")
	running := regexp.MustCompile(`cmon is running on (https://\S+) .*nodes 127\.0\.0\.2:(\d+) and 127\.0\.0\.3:\d+\)\.\nLog: (\S+)\.`)

	// check waits for the demo's banner and checks what the demo set up.
	check := func(t *testing.T, out *lineWatcher) (url, sshPort, log string) {
		t.Helper()
		m := out.waitMatch(t, 3*time.Minute, running)
		url, sshPort, log = m[1], m[2], m[3]
		fi, err := os.Stat(log)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("demo log %s: %v %v, want mode 0600", log, fi.Mode(), err)
		}
		if d, err := os.Stat(filepath.Dir(log)); err != nil || d.Mode().Perm() != 0o700 || filepath.Dir(log) == os.TempDir() {
			t.Fatalf("demo log directory %s: %v, want its own with mode 0700", filepath.Dir(log), err)
		}
		c := &controller{t: t, URL: url}
		r := mustOk(t, c.curl(t, "clusters", `{"operation":"getAllClusterInfo","with_hosts":true,
			"authenticate":{"username":"admin","password":"demo-admin-pw"}}`))
		keys := map[string]bool{}
		for _, h := range nodesOf(r.Reply["clusters"].([]any)[0]) {
			if fmt.Sprint(h["port"]) != sshPort {
				t.Fatalf("host %v shows port %v, want its SSH port %s", h["hostname"], h["port"], sshPort)
			}
			keys[hostKeyOf(t, net.JoinHostPort(h["hostname"].(string), sshPort))] = true
		}
		if len(keys) != 2 {
			t.Fatalf("the two demo nodes share a host key")
		}
		return url, sshPort, log
	}

	t.Run("make demo and SIGTERM", func(t *testing.T) {
		port, err := services.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		dataDir := filepath.Join(dir, "data1")
		cmd, out := startMake(t, "-o", "build", "demo", "BIN="+cmonBinary, "DEMO_BIN="+demoBin,
			fmt.Sprintf("DEMO_ARGS=-port %d -data %s", port, dataDir))
		_, sshPort, _ := check(t, out)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		pgrepGone(t, demoBin)
		pgrepGone(t, dataDir)
		portClosed(t, "127.0.0.1:"+strconv.Itoa(port))
		portClosed(t, "127.0.0.2:"+sshPort)
		portClosed(t, "127.0.0.3:"+sshPort)
	})

	t.Run("cmon dies under the demo", func(t *testing.T) {
		port, err := services.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		dataDir := filepath.Join(dir, "data2")
		cmd := exec.Command(demoBin, "-cmon", cmonBinary, "-port", strconv.Itoa(port), "-data", dataDir)
		out := startWatched(t, cmd)
		_, sshPort, log := check(t, out)
		// cmon's command line names its data directory after --data-dir; the
		// demo's after -data.
		if err := exec.Command("pkill", "-KILL", "-f", "[-]-data-dir "+dataDir).Run(); err != nil {
			t.Fatalf("pkill cmon: %v", err)
		}
		<-out.done
		err = cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("the demo's exit after cmon died: %v\n%s", err, out.text())
		}
		if !strings.Contains(out.text(), "demo: cmon exited") || !strings.Contains(out.text(), log) {
			t.Fatalf("the demo did not say cmon died:\n%s", out.text())
		}
		portClosed(t, "127.0.0.2:"+sshPort)
		portClosed(t, "127.0.0.3:"+sshPort)
	})
}

// hostKeyOf is the host key fingerprint addr presents.
func hostKeyOf(t *testing.T, addr string) string {
	t.Helper()
	var fp string
	_, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "nobody", Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			fp = ssh.FingerprintSHA256(key)
			return nil
		}})
	if fp == "" {
		t.Fatalf("no host key from %s: %v", addr, err)
	}
	return fp
}

// TestNoDataDirectoryGuessed: without HOME, and not root, cmon asks for
// --data-dir instead of writing under whatever directory it started in.
func TestNoDataDirectoryGuessed(t *testing.T) {
	port, err := services.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// Bounded: were the check gone, cmon would serve until killed.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"--rpc-port", strconv.Itoa(port)}
	bin, work := cmonBinary, t.TempDir()
	cmd := exec.CommandContext(ctx, bin, args...)
	if os.Geteuid() == 0 {
		// As nobody, in a directory nobody may write to and reach.
		top, err := os.MkdirTemp("", "cmon-nohome-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(top) })
		work, bin = filepath.Join(top, "work"), filepath.Join(top, "cmon")
		b, err := os.ReadFile(cmonBinary)
		if err == nil {
			err = os.WriteFile(bin, b, 0o755)
		}
		if err == nil {
			err = os.Mkdir(work, 0o777)
		}
		if err == nil {
			err = errors.Join(os.Chmod(top, 0o755), os.Chmod(work, 0o777))
		}
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.CommandContext(ctx, bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no HOME, no XDG_STATE_HOME
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--data-dir") || !strings.Contains(string(out), "HOME is not set") {
		t.Fatalf("cmon without HOME: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Fatalf("cmon wrote into its working directory: %v", entries)
	}
}

// TestFirstHourRoughEdges: the password floor, light listings, refusals in
// one wording, an aborted pending job, and a key file blamed on cmon.
func TestFirstHourRoughEdges(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.71")
	dataDir := t.TempDir()
	c := startController(t, controllerOptions{dataDir: dataDir, env: []string{"CMON_MIN_PASSWORD_LENGTH=1"}})
	admin := c.session(t, "admin", adminPassword)
	// Made under a floor of 1: it must keep working under the default.
	c.createUser(t, "old", "short")
	c.Stop()
	c.opts.env = nil
	c.start()
	admin = c.session(t, "admin", adminPassword)
	c.session(t, "old", "short")

	t.Run("password floor", func(t *testing.T) {
		r := admin.call(t, "users", `{"operation":"createUser","new_password":"a","user":{"user_name":"weak"}}`)
		if r.Status() != "InvalidRequest" || !strings.Contains(r.Raw, "shorter than 8 characters") {
			t.Fatalf("createUser with a one-character password: %s", r.Raw)
		}
		r = admin.call(t, "users", `{"operation":"changePassword","user":{"user_name":"old"},"new_password":"seven77"}`)
		if r.Status() != "InvalidRequest" || !strings.Contains(r.Raw, "shorter than 8 characters") {
			t.Fatalf("changePassword to seven characters: %s", r.Raw)
		}
		mustOk(t, admin.call(t, "users", `{"operation":"createUser","new_password":"eight888","user":{"user_name":"strong"}}`))
	})

	keyCopy := filepath.Join(t.TempDir(), "key")
	b, err := os.ReadFile(sshd.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyCopy, b, 0o600); err != nil {
		t.Fatal(err)
	}
	id, job := admin.registerCluster(t, "first", sshd, sshd.Addrs, map[string]any{"ssh_keyfile": keyCopy})
	if id == 0 {
		t.Fatalf("register: %v", job)
	}

	t.Run("key file blamed on cmon", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "gone")
		_, j := admin.registerCluster(t, "keyless", sshd, sshd.Addrs, map[string]any{"ssh_keyfile": missing})
		text := fmt.Sprint(j["status_text"])
		if j["status"] != "FAILED" || !strings.Contains(text, "key file "+missing+" cannot be read by cmon") ||
			strings.Contains(text, "unreachable") || strings.Contains(text, "authentication refused") {
			t.Fatalf("registration with a missing key file: %v", j)
		}
		if err := os.Remove(keyCopy); err != nil {
			t.Fatal(err)
		}
		j = admin.waitJob(t, admin.createJob(t, id, "exec", map[string]any{"command": "true"}), 60*time.Second)
		if j["status"] != "FAILED" || !strings.Contains(fmt.Sprint(j["status_text"]), "key file "+keyCopy+" cannot be read by cmon") {
			t.Fatalf("exec after the key file went: %v", j)
		}
	})

	t.Run("listings leave results out", func(t *testing.T) {
		jobID := admin.createJob(t, 0, "success", map[string]any{})
		mustStatus(t, admin.waitJob(t, jobID, 30*time.Second), "FINISHED")
		listed := func(extra string) map[string]any {
			r := mustOk(t, admin.call(t, "jobs", `{"operation":"getJobInstances"`+extra+`}`))
			for _, j := range r.Reply["jobs"].([]any) {
				if j := j.(map[string]any); j["job_id"] == float64(jobID) {
					return j
				}
			}
			t.Fatalf("job %d not listed: %s", jobID, r.Raw)
			return nil
		}
		// An exec job's result, the heavy kind, is what a listing leaves out.
		execs := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstances","cluster_id":%d}`, id)))
		for _, j := range execs.Reply["jobs"].([]any) {
			if _, ok := j.(map[string]any)["result"]; ok {
				t.Fatalf("a listing carries a result: %s", execs.Raw)
			}
		}
		withResult := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstances","cluster_id":%d,"with_result":true}`, id)))
		if !strings.Contains(withResult.Raw, `"nodes"`) {
			t.Fatalf("with_result lists no results: %s", withResult.Raw)
		}
		if _, ok := listed("")["result"]; ok {
			t.Fatal("the default listing carries results")
		}

		// A listing without a limit holds the newest 100; limit asks for more.
		for range 100 {
			admin.createJob(t, 0, "success", map[string]any{})
		}
		r := mustOk(t, admin.call(t, "jobs", `{"operation":"getJobInstances"}`))
		total := int(r.Reply["total"].(float64))
		if n := len(r.Reply["jobs"].([]any)); n != 100 || total <= 100 {
			t.Fatalf("default listing: %d jobs of %d, want 100 of more", n, total)
		}
		r = mustOk(t, admin.call(t, "jobs", `{"operation":"getJobInstances","limit":500}`))
		if n := len(r.Reply["jobs"].([]any)); n != total {
			t.Fatalf("limit 500: %d jobs of %d", n, total)
		}
	})

	t.Run("a job killed before it runs", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		r := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","job":{"scheduled":%q,"job_spec":{"command":"success"}}}`, at)))
		jobID := r.Reply["job"].(map[string]any)["job_id"]
		k := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"killJobInstance","job_id":%v}`, jobID))).Reply["job"].(map[string]any)
		if k["status"] != "ABORTED" || k["exit_code"] != float64(143) || k["exit_signal"] != "TERM" {
			t.Fatalf("killJobInstance of a scheduled job: %v", k)
		}
	})

	t.Run("refusals in one wording", func(t *testing.T) {
		c.createUser(t, "bob", "pw-bob-12345")
		mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/first","acl":"user:bob:r--"}`))
		bob := c.session(t, "bob", "pw-bob-12345")
		hidden := 0
		{
			_, j := admin.registerCluster(t, "hidden", sshd, sshd.Addrs, nil)
			mustStatus(t, j, "FINISHED")
			info := mustOk(t, admin.call(t, "clusters", `{"operation":"getClusterInfo","cluster_name":"hidden"}`))
			hidden = int(info.Reply["cluster"].(map[string]any)["cluster_id"].(float64))
		}
		tests := []struct {
			name, module, body, status, want string
		}{
			{name: "execute on a readable cluster", module: "jobs", status: "AccessDenied",
				body: fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,"job":{"job_spec":{"command":"exec","job_data":{"command":"true"}}}}`, id),
				want: fmt.Sprintf("Execute access to cluster %d ('first') for user bob is denied.", id)},
			{name: "a cluster bob may not read, named by id", module: "clusters", status: "AccessDenied",
				body: fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, hidden),
				want: fmt.Sprintf("Read access to cluster %d for user bob is denied.", hidden)},
			{name: "a superuser's operation", module: "users", status: "AccessDenied",
				body: `{"operation":"createUser","new_password":"pw-eve-12345","user":{"user_name":"eve"}}`,
				want: "Superuser access to operation createUser for user bob is denied."},
			{name: "another user", module: "users", status: "AccessDenied",
				body: `{"operation":"setUser","user":{"user_name":"admin","first_name":"x"}}`,
				want: "Write access to user 'admin' for user bob is denied."},
			{name: "an ACL bob does not own", module: "tree", status: "AccessDenied",
				body: `{"operation":"addAcl","path":"/first","acl":"user:bob:rwx"}`,
				want: "Owner access to object '/first' for user bob is denied."},
			{name: "checkAccess", module: "tree", status: "InvalidRequest",
				body: `{"operation":"checkAccess","path":"/first","privileges":"rw"}`,
				want: "Write access to object '/first' for user bob is denied."},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := bob.call(t, tt.module, tt.body)
				if r.Status() != tt.status || r.Reply["error_string"] != tt.want {
					t.Fatalf("want %s %q: %s", tt.status, tt.want, r.Raw)
				}
			})
		}
	})
}
