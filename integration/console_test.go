package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// e2eSetup is what the console's browser test runs with, or why it cannot.
type e2eSetup struct {
	chromium, node, modules string
	missing                 string // the tool that could not be had
	err                     error
}

// e2eReady finds what the console's browser test needs: Debian's chromium,
// Node.js and npm (installed by make test-deps), and playwright-core from
// the npm registry at the version the lock file pins, fetched into a
// temporary directory named by the lock file's hash so that later runs reuse
// it. TestMain starts it in the background, so that on a fresh machine the
// download overlaps the other tests.
var e2eReady = sync.OnceValue(func() (s e2eSetup) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fail := func(missing string, err error) e2eSetup { return e2eSetup{missing: missing, err: err} }
	var err error
	if s.chromium, err = services.Find("chromium"); err != nil {
		return fail("chromium", err)
	}
	if s.node, err = services.Find("node"); err != nil {
		return fail("Node.js", err)
	}
	npm, err := services.Find("npm")
	if err != nil {
		return fail("npm", err)
	}
	src, err := filepath.Abs("e2e")
	if err != nil {
		return fail("", err)
	}
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		return fail("", err)
	}
	sum := sha256.Sum256(lock)
	s.modules = filepath.Join(os.TempDir(), "cmon-e2e-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(s.modules, "node_modules", "playwright-core", "package.json")); err == nil {
		return s
	}
	if err := os.MkdirAll(s.modules, 0o755); err != nil {
		return fail("", err)
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(s.modules, f), b, 0o644)
		}
		if err != nil {
			return fail("", err)
		}
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = s.modules
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail("playwright-core from the npm registry", fmt.Errorf("npm ci: %w: %s", err, out))
	}
	return s
})

// TestConsole drives the web console in a real browser against the real
// binary and real sshd nodes: log in, see the cluster, run hostname on its
// nodes and read each node's output, watch a long job's log grow, kill it,
// log out; a reader is offered no button it may not use. Screenshots go to
// $CMON_SCREENSHOTS when set (README's come from there).
func TestConsole(t *testing.T) {
	tools := e2eReady()
	switch {
	case tools.missing != "":
		services.Unavailable(t, tools.missing, tools.err)
	case tools.err != nil:
		t.Fatal(tools.err)
	}
	chromium, node, modules := tools.chromium, tools.node, tools.modules
	sshd := services.NewSSHD(t, "127.0.0.81", "127.0.0.82")
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "console", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("register: %v", job)
	}
	c.createUser(t, "viewer", "pw-viewer-12345")
	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/console","acl":"user:viewer:r--"}`))
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("CMON_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	// Node resolves the module's imports from where the script is: beside
	// the installed playwright-core.
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "integration", "e2e", "console.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(modules, "console.mjs")
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium,
		"CMON_URL="+c.URL, "CMON_PASSWORD="+adminPassword, "VIEWER_PASSWORD=pw-viewer-12345",
		"CLUSTER_NAME=console", "NODES="+strings.Join(sshd.Addrs, ","), "NODE_HOSTNAME="+host, "SCREENSHOTS="+shots)
	cmd.Dir = modules
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "console e2e: ok") {
		t.Fatalf("console e2e: %v\n%s", err, out)
	}
}

// TestConsoleIsServedSafely: the console's files come from the controller's
// own origin with headers that keep them to it; the API stays the API.
func TestConsoleIsServedSafely(t *testing.T) {
	const frontend = "https://ui.example:8443"
	c := startController(t, controllerOptions{env: []string{"CMON_ALLOWED_ORIGINS=" + frontend}})
	client := loginClient("127.0.0.1")
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(c.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<script type="module" src="/console/app.js">`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET /: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	app, _ := get("/console/app.js")
	if app.StatusCode != http.StatusOK || !strings.HasPrefix(app.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET /console/app.js: %d %s", app.StatusCode, app.Header.Get("Content-Type"))
	}
	if resp, _ := get("/console/nothing.js"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET a missing file: %d", resp.StatusCode)
	}
	// A revalidation costs no body.
	req, _ := http.NewRequest(http.MethodGet, c.URL+"/console/app.js", nil)
	req.Header.Set("If-None-Match", app.Header.Get("ETag"))
	if r, err := client.Do(req); err != nil || r.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %v %v", r, err)
	}
	if _, body := get("/v2/controller"); !strings.Contains(body, "request_status") {
		t.Fatalf("the API moved: %s", body)
	}

	// An external frontend on the allowlist gets CORS headers, with
	// credentials; another origin gets none, and is refused.
	call := func(method, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, c.URL+"/v2/controller", strings.NewReader(`{"operation":"ping"}`))
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	pre := call(http.MethodOptions, frontend)
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != frontend ||
		pre.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight from an allowed origin: %d %v", pre.StatusCode, pre.Header)
	}
	if r := call(http.MethodPost, frontend); r.Header.Get("Access-Control-Allow-Origin") != frontend {
		t.Fatalf("POST from an allowed origin: %v", r.Header)
	}
	for _, m := range []string{http.MethodOptions, http.MethodPost} {
		if r := call(m, "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s from another origin got CORS headers: %v", m, r.Header)
		}
	}
}
