package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
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

	"github.com/cmon-dev/cmon/integration/services"
)

// cmonBinary is the daemon under test: $CMON_BIN (make test passes bin/cmon),
// else built once by TestMain.
var cmonBinary string

func TestMain(m *testing.M) {
	bin, cleanup, err := services.CmonBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	cmonBinary = bin
	flag.Parse()
	run := flag.Lookup("test.run").Value.String()
	if run == "" || matches(run, "TestConsole") {
		go e2eReady() // fetches playwright-core, if need be, while the other tests run
	}
	if run == "" || matches(run, "TestGalera") || matches(run, "TestSoakGalera") {
		services.WarmGalera() // the clusters start while the other tests run
	}
	code := services.Main(m)
	cleanup()
	os.Exit(code)
}

// matches tells whether a -run pattern may select the named test.
func matches(pattern, name string) bool {
	ok, err := regexp.MatchString(strings.Split(pattern, "/")[0], name)
	return ok || err != nil
}

// backend is a database a controller under test runs on.
type backend struct {
	name string
	dsn  string // empty: SQLite in the data directory
}

// forEachBackend runs fn on SQLite and on a fresh MariaDB database.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, backend{name: "sqlite"}) })
	t.Run("mariadb", func(t *testing.T) {
		fn(t, backend{name: "mariadb", dsn: services.SharedMariaDB(t).NewDatabase(t)})
	})
}

// controllerOptions configure one cmon process.
type controllerOptions struct {
	backend       backend
	dataDir       string   // default: a new temporary directory
	bindAddresses []string // passed as a flag when set; clients use the first or 127.0.0.1
	port          int      // default: a spare port
	// generatePassword leaves CMON_ADMIN_PASSWORD unset, so cmon generates one;
	// otherwise the admin password is adminPassword.
	generatePassword bool
	args             []string
	env              []string
	// logLevel is passed as --log-level (default debug); "config" passes
	// none, leaving the level to the configuration file.
	logLevel string
}

const adminPassword = "Adm1n-test-pw"

// controller is a running cmon process.
type controller struct {
	t       testing.TB
	opts    controllerOptions
	URL     string
	DataDir string
	Port    int
	logPath string
	cmd     *exec.Cmd
	done    chan error
	mu      sync.Mutex
	exited  bool
	exitErr error
}

func startController(t testing.TB, opts controllerOptions) *controller {
	t.Helper()
	if opts.dataDir == "" {
		opts.dataDir = t.TempDir()
	}
	host := "127.0.0.1"
	if len(opts.bindAddresses) > 0 {
		host = opts.bindAddresses[0]
	}
	if opts.port == 0 {
		p, err := services.FreePort(host)
		if err != nil {
			t.Fatal(err)
		}
		opts.port = p
	}
	c := &controller{t: t, opts: opts, DataDir: opts.dataDir, Port: opts.port,
		URL:     "https://" + net.JoinHostPort(host, strconv.Itoa(opts.port)),
		logPath: filepath.Join(opts.dataDir, "cmon.log")}
	c.start()
	t.Cleanup(c.Stop)
	return c
}

func (c *controller) start() {
	c.t.Helper()
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logFile.Close()
	args := []string{"--data-dir", c.opts.dataDir, "--rpc-port", strconv.Itoa(c.opts.port)}
	switch c.opts.logLevel {
	case "":
		args = append(args, "--log-level", "debug")
	case "config":
	default:
		args = append(args, "--log-level", c.opts.logLevel)
	}
	if len(c.opts.bindAddresses) > 0 {
		args = append(args, "--rpc-bind-addresses", strings.Join(c.opts.bindAddresses, ","))
	}
	c.cmd = exec.Command(cmonBinary, append(args, c.opts.args...)...)
	// Secrets travel in the environment, never on the command line.
	c.cmd.Env = append(os.Environ(), "CMON_MYSQL_DSN="+c.opts.backend.dsn)
	if !c.opts.generatePassword {
		c.cmd.Env = append(c.cmd.Env, "CMON_ADMIN_PASSWORD="+adminPassword)
	}
	c.cmd.Env = append(c.cmd.Env, c.opts.env...)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("start cmon: %v", err)
	}
	c.mu.Lock()
	c.exited, c.exitErr = false, nil
	c.mu.Unlock()
	c.done = make(chan error, 1)
	go func() {
		err := c.cmd.Wait()
		c.mu.Lock()
		c.exited, c.exitErr = true, err
		c.mu.Unlock()
		c.done <- err
	}()
	err = services.WaitFor(context.Background(), 30*time.Second, func() error {
		if exited, err := c.exitStatus(); exited {
			return fmt.Errorf("cmon exited: %v", err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp",
			strings.TrimPrefix(c.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		c.t.Fatalf("cmon did not come up: %v\n%s", err, c.Log())
	}
}

func (c *controller) exitStatus() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exited, c.exitErr
}

// Log is everything the controller printed so far.
func (c *controller) Log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// Stop sends SIGTERM and waits for a graceful exit; it returns the exit error.
func (c *controller) Stop() {
	if exited, _ := c.exitStatus(); exited || c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Errorf("cmon did not stop within 20s of SIGTERM")
	}
}

// Kill ends the controller with SIGKILL, as a crash would.
func (c *controller) Kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// Restart stops the controller gracefully and starts it again on the same data.
func (c *controller) Restart() {
	c.Stop()
	c.start()
}

// curlResult is one curl call: the parsed JSON reply and the raw output.
type curlResult struct {
	Reply  map[string]any
	Raw    string
	Header string
}

// Status is the reply's request_status.
func (r curlResult) Status() string { s, _ := r.Reply["request_status"].(string); return s }

// curl posts body to /v2/<module> with the real curl binary. The body goes on
// stdin, so passwords in it never reach the process list. extra are more curl
// arguments, such as -c/-b cookie jars.
func (c *controller) curl(t testing.TB, module, body string, extra ...string) curlResult {
	t.Helper()
	args := append([]string{"-sk", "--max-time", "60", "-D", "-", "-X", "POST", "--data-binary", "@-",
		c.URL + "/v2/" + module}, extra...)
	cmd := exec.Command("curl", args...)
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s: %v: %s", module, err, out)
	}
	header, payload, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
	for strings.HasPrefix(header, "HTTP/1.1 100") { // curl's Expect: 100-continue on large bodies
		header, payload, _ = strings.Cut(payload, "\n\n")
	}
	res := curlResult{Raw: payload, Header: header}
	if err := json.Unmarshal([]byte(payload), &res.Reply); err != nil {
		t.Fatalf("curl %s: reply is not JSON: %v\n%s", module, err, out)
	}
	return res
}

// nodesOf are a cluster's hosts as a reply lists them, but the controller
// itself, which the reference lists among each cluster's hosts.
func nodesOf(cluster any) []map[string]any {
	var out []map[string]any
	list, _ := cluster.(map[string]any)["hosts"].([]any)
	for _, h := range list {
		if h := h.(map[string]any); h["nodetype"] != "controller" {
			out = append(out, h)
		}
	}
	return out
}

// mustOk fails the test unless the reply's status is Ok.
func mustOk(t testing.TB, r curlResult) curlResult {
	t.Helper()
	if r.Status() != "Ok" {
		t.Fatalf("request_status %q, want Ok: %s", r.Status(), r.Raw)
	}
	return r
}

// runCurl runs curl with the given arguments and returns combined output and error.
func runCurl(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("curl", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// sharedDSN is a fresh database on the shared MariaDB, for several controllers.
func sharedDSN(t *testing.T) string {
	t.Helper()
	return services.SharedMariaDB(t).NewDatabase(t)
}
