package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/cmon-dev/cmon/integration/services"
)

// dialer counts the TCP connections a client opens and can break them.
type dialer struct {
	n     atomic.Int64
	mu    sync.Mutex
	conns []*testConn
}

// testConn can go silent like a peer behind a dead network: what is written
// is dropped, and nothing more arrives.
type testConn struct {
	net.Conn
	silent atomic.Bool
}

func (c *testConn) Write(p []byte) (int, error) {
	if c.silent.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.n.Add(1)
	tc := &testConn{Conn: c}
	d.mu.Lock()
	d.conns = append(d.conns, tc)
	d.mu.Unlock()
	return tc, nil
}

// breakAll cuts every connection under the client's feet.
func (d *dialer) breakAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}

// silenceAll makes every connection a black hole.
func (d *dialer) silenceAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.silent.Store(true)
	}
}

type testClient struct {
	*Client
	dials *dialer
	known KnownHosts
}

// waitPooled waits until the client's pool holds n connections.
func (c *testClient) waitPooled(t *testing.T, n int) {
	t.Helper()
	err := services.WaitFor(context.Background(), 20*time.Second, func() error {
		c.pool.mu.Lock()
		defer c.pool.mu.Unlock()
		if len(c.pool.conns) != n {
			return fmt.Errorf("%d pooled connections, want %d", len(c.pool.conns), n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// newTestClient returns a client in learning mode with an in-memory store,
// unless change says otherwise.
func newTestClient(t *testing.T, change func(*Config)) *testClient {
	t.Helper()
	d := &dialer{}
	cfg := Config{
		KnownHosts:    NewMemoryKnownHosts(),
		LearnHostKeys: true,
		Dial:          d.dial,
		KillGrace:     500 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if change != nil {
		change(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &testClient{Client: c, dials: d, known: cfg.KnownHosts}
}

func node(s *services.SSHD, i int) Target {
	return Target{Host: s.Addrs[i], Port: s.Port, User: s.User, KeyFile: s.ClientKey}
}

// unique makes a marker no other process on this machine has in its arguments.
func unique(t *testing.T) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// pgrep tells whether a local process has pattern in its arguments: the sshd
// runs on this machine, so its commands are local processes.
func pgrep(t *testing.T, pattern string) bool {
	t.Helper()
	found, err := running(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// running is pgrep for goroutines other than the test's.
func running(pattern string) (bool, error) {
	err := exec.Command("pgrep", "-f", pattern).Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgrep: %w", err)
	}
	return true, nil
}

func TestRun(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	allBytes := make([]byte, 256*4)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	tricky := "it's \"quoted\" $HOME `id`\nline two\t\\"
	tests := []struct {
		name   string
		req    Request
		stdout string
		stderr string // "*": any
		status int
		signal string
	}{
		{name: "stdout stderr status", req: Request{Command: "echo out; echo err >&2; exit 3"},
			stdout: "out\n", stderr: "err\n", status: 3},
		{name: "success", req: Request{Command: "true"}},
		{name: "killed by signal", req: Request{Command: "echo before; kill -TERM $$; echo after"},
			stdout: "before\n", status: 143, signal: "TERM"},
		{name: "env and stdin", req: Request{Command: `printf '%s|%s|' "$GREETING" "$EMPTY"; cat`,
			Env: []EnvVar{{"GREETING", tricky}, {"EMPTY", ""}}, Stdin: []byte("from stdin\n")},
			stdout: tricky + "||from stdin\n"},
		{name: "AcceptEnv is not needed", req: Request{Command: `sh -c 'echo "$LC_CMON_TEST"'`,
			Env: []EnvVar{{"LC_CMON_TEST", "inherited"}}}, stdout: "inherited\n"},
		{name: "working directory", req: Request{Command: "pwd", Dir: "/usr/bin"}, stdout: "/usr/bin\n"},
		{name: "missing working directory", req: Request{Command: "echo ran", Dir: "/nonexistent/cmon"}, stderr: "*", status: 1},
		{name: "binary round trip on both streams", req: Request{Command: "tee /dev/stderr", Stdin: allBytes},
			stdout: string(allBytes), stderr: string(allBytes)},
		{name: "stdin not read", req: Request{Command: "echo done", Stdin: bytes.Repeat([]byte("x"), 1<<20)},
			stdout: "done\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Run(context.Background(), node(sshd, 0), tt.req)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if string(res.Stdout) != tt.stdout {
				t.Errorf("stdout %q, want %q", res.Stdout, tt.stdout)
			}
			if tt.stderr != "*" && string(res.Stderr) != tt.stderr {
				t.Errorf("stderr %q, want %q", res.Stderr, tt.stderr)
			}
			if res.ExitStatus != tt.status || res.ExitSignal != tt.signal {
				t.Errorf("exit %d signal %q, want %d %q", res.ExitStatus, res.ExitSignal, tt.status, tt.signal)
			}
			if res.Node != sshd.Addr(0) || res.Started.IsZero() || res.Ended.Before(res.Started) {
				t.Errorf("node %q started %v ended %v", res.Node, res.Started, res.Ended)
			}
		})
	}
}

func TestSecretsStayOffTheProcessList(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	secret := "env-secret-" + unique(t)
	password := "sudo-secret-" + unique(t)
	// The command runs until the test has looked at the process list enough.
	release := filepath.Join(t.TempDir(), "release")
	req := Request{Command: `while [ ! -e ` + ShellQuote(release) + ` ]; do sleep 0.05; done; printf %s "$TOKEN"`,
		Env: []EnvVar{{"TOKEN", secret}}}
	// Where sudo asks no password the line is fed and skipped, which is the
	// path where a password could most easily leak. Without such a sudo
	// TestSudo is unavailable, which fails a CI run.
	if services.PasswordlessSudo(context.Background()) == nil {
		req.Sudo = Sudo{Password: password}
	}
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = c.Run(context.Background(), node(sshd, 1), req)
	}()
	// Look while the remote loop is seen running, five times at least.
	for looked := 0; looked < 5; {
		out, perr := exec.Command("ps", "-eo", "args").Output()
		if perr != nil {
			t.Fatalf("ps: %v", perr)
		}
		if bytes.Contains(out, []byte(secret)) || bytes.Contains(out, []byte(password)) {
			t.Fatalf("a secret shows in ps:\n%s", out)
		}
		if bytes.Contains(out, []byte("sleep 0.05")) {
			looked++
		}
		select {
		case <-done:
			t.Fatalf("the command ended before it was released: %v", err)
		default:
		}
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	<-done
	if err != nil || string(res.Stdout) != secret {
		t.Fatalf("Run: %v, stdout %q", err, res.Stdout)
	}
}

func TestOutputLimit(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	tests := []struct {
		name      string
		limit     int
		size      int
		wantBytes int
	}{
		{name: "small limit", limit: 1000, size: 3 << 20, wantBytes: 1000},
		{name: "default limit", limit: 0, size: 5 << 20, wantBytes: DefaultOutputLimit},
		{name: "under the limit", limit: 1 << 20, size: 1000, wantBytes: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var streamed atomic.Int64
			res, err := c.Run(context.Background(), node(sshd, 0), Request{
				Command:     fmt.Sprintf("head -c %d /dev/zero; echo small >&2", tt.size),
				OutputLimit: tt.limit,
				OnOutput: func(ch Chunk) {
					if ch.Stream == Stdout {
						streamed.Add(int64(len(ch.Data)))
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			truncated := tt.size > tt.wantBytes
			if len(res.Stdout) != tt.wantBytes || res.StdoutTruncated != truncated || streamed.Load() != int64(tt.wantBytes) {
				t.Errorf("stdout %d bytes (truncated %v, streamed %d), want %d (truncated %v)",
					len(res.Stdout), res.StdoutTruncated, streamed.Load(), tt.wantBytes, truncated)
			}
			if cap(res.Stdout) > 2*tt.wantBytes {
				t.Errorf("result holds %d bytes of capacity for %d of output", cap(res.Stdout), tt.wantBytes)
			}
			if string(res.Stderr) != "small\n" || res.StderrTruncated || res.ExitStatus != 0 {
				t.Errorf("stderr %q truncated %v exit %d", res.Stderr, res.StderrTruncated, res.ExitStatus)
			}
		})
	}
}

func TestOutputStreamsWhileRunning(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	var mu sync.Mutex
	var chunks []Chunk
	var arrived []time.Time
	res, err := c.Run(context.Background(), node(sshd, 0), Request{
		Command: "echo first; echo warn >&2; sleep 1; echo second",
		OnOutput: func(ch Chunk) {
			mu.Lock()
			defer mu.Unlock()
			chunks = append(chunks, Chunk{Node: ch.Node, Stream: ch.Stream, Data: bytes.Clone(ch.Data)})
			arrived = append(arrived, time.Now())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The two streams are copied independently: order only within each.
	var stdout, stderr []byte
	var first time.Time
	for i, ch := range chunks {
		if ch.Node != sshd.Addr(0) {
			t.Errorf("chunk from %q", ch.Node)
		}
		if ch.Stream == Stderr {
			stderr = append(stderr, ch.Data...)
			continue
		}
		if len(stdout) == 0 {
			first = arrived[i]
		}
		stdout = append(stdout, ch.Data...)
	}
	if string(stdout) != "first\nsecond\n" || string(stderr) != "warn\n" {
		t.Fatalf("streamed stdout %q stderr %q", stdout, stderr)
	}
	if early := res.Ended.Sub(first); early < 700*time.Millisecond {
		t.Errorf("the first chunk came only %s before the end: not streamed", early)
	}
}

func TestTimeoutAndKillEndRemoteProcesses(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	tests := []struct {
		name   string
		stop   func(cancel context.CancelFunc) // called once the command has started; nil: the request's timeout
		kind   error
		marker string
		sudo   bool
	}{
		{name: "timeout", kind: ErrTimeout},
		{name: "cancel", stop: func(cancel context.CancelFunc) { cancel() }, kind: ErrKilled},
		{name: "timeout with sudo", kind: ErrTimeout, sudo: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{}
			if tt.sudo {
				services.NeedSudo(t)
				req.Sudo = Sudo{Enabled: true}
			}
			// Fractional sleeps make arguments no other process has; the
			// background one would outlive a kill of the shell alone.
			child := "sleep 3001." + unique(t)
			main := "sleep 3002." + unique(t)
			req.Command = fmt.Sprintf("echo started; %s & %s; echo never", child, main)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.stop == nil {
				req.Timeout = 3 * time.Second
			} else {
				// "started" comes after the child is spawned: stop then.
				req.OnOutput = func(Chunk) { tt.stop(cancel) }
			}
			res, err := c.Run(ctx, node(sshd, 2), req)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Run error %v, want %v", err, tt.kind)
			}
			// The output proves the command ran past spawning its child, so
			// the check below is not vacuous.
			if string(res.Stdout) != "started\n" || res.ExitSignal == "" {
				t.Errorf("partial result: stdout %q exit %d signal %q", res.Stdout, res.ExitStatus, res.ExitSignal)
			}
			for _, p := range []string{child, main} {
				if pgrep(t, p) {
					t.Errorf("%q still runs on the node", p)
				}
			}
			// The connection is still good for the next command.
			if res, err := c.Run(context.Background(), node(sshd, 2), Request{Command: "echo again"}); err != nil || string(res.Stdout) != "again\n" {
				t.Errorf("after the kill: %v %q", err, res.Stdout)
			}
		})
	}
}

func TestSudo(t *testing.T) {
	services.NeedSudo(t)
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	tests := []struct {
		name string
		sudo Sudo
	}{
		{name: "sudo -n", sudo: Sudo{Enabled: true}},
		{name: "sudo -S with a password sudo does not ask for", sudo: Sudo{Password: "unused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Run(context.Background(), node(sshd, 3), Request{
				Command: `printf '%s %s %s ' "$(id -u)" "$SUDO_USER" "$V"; cat`, Sudo: tt.sudo,
				Env: []EnvVar{{"V", "kept"}}, Stdin: []byte("in"),
			})
			if err != nil {
				t.Fatal(err)
			}
			// SUDO_USER is the login user: sudo ran the command as root for it.
			if want := "0 " + sshd.User + " kept in"; string(res.Stdout) != want || res.ExitStatus != 0 {
				t.Errorf("stdout %q stderr %q exit %d, want %q", res.Stdout, res.Stderr, res.ExitStatus, want)
			}
		})
	}
}

func TestRefusedCommandNeverReachesNode(t *testing.T) {
	sshd := services.SharedSSHD(t)
	onlyEcho, err := NewFilter(FilterConfig{Order: DenyAllow, Deny: []string{`.*`}, Allow: []string{`^echo [a-z]+$`}})
	if err != nil {
		t.Fatal(err)
	}
	noTouch, err := NewFilter(FilterConfig{Deny: []string{`\btouch\b`}})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, func(cfg *Config) {
		cfg.Filters = Filters{Default: noTouch, Clusters: map[string]*Filter{"prod": onlyEcho}}
	})
	marker := filepath.Join(t.TempDir(), "reached")
	tests := []struct {
		name    string
		cluster string
		command string
		refused bool
	}{
		{name: "default filter refuses", command: "touch " + marker, refused: true},
		{name: "cluster filter refuses", cluster: "prod", command: "echo x > " + marker, refused: true},
		{name: "cluster filter allows", cluster: "prod", command: "echo hello"},
		{name: "default filter allows", command: "echo x > " + marker + ".allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.dials.n.Load()
			tg := node(sshd, 4)
			tg.Cluster = tt.cluster
			_, err := c.Run(context.Background(), tg, Request{Command: tt.command})
			if tt.refused {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("error %v, want refused", err)
				}
				if c.dials.n.Load() != before {
					t.Error("a refused command opened a connection")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker file exists (%v): a refused command ran", err)
	}
	if _, err := os.Stat(marker + ".allowed"); err != nil {
		t.Errorf("the allowed command did not run: %v", err)
	}
}

func TestUnreachableAndRefusedLogin(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	port, err := services.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(otherKey, "")
	if err != nil {
		t.Fatal(err)
	}
	strangerKey := filepath.Join(t.TempDir(), "stranger")
	if err := os.WriteFile(strangerKey, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target Target
		kind   error
		text   string // in the error, when set
	}{
		{name: "no listener", target: Target{Host: "127.0.0.1", Port: port, User: sshd.User, KeyFile: sshd.ClientKey}, kind: ErrConnect},
		{name: "key not authorized", target: Target{Host: sshd.Addrs[5], Port: sshd.Port, User: sshd.User, KeyFile: strangerKey}, kind: ErrAuth},
		{name: "unknown user", target: Target{Host: sshd.Addrs[5], Port: sshd.Port, User: "no-such-user-cmon", KeyFile: sshd.ClientKey}, kind: ErrAuth},
		{name: "missing key file", target: Target{Host: sshd.Addrs[5], Port: sshd.Port, User: sshd.User, KeyFile: "/nonexistent/key"}, kind: ErrSetup,
			text: "key file /nonexistent/key cannot be read by cmon: no such file or directory"},
		{name: "key file not a key", target: Target{Host: sshd.Addrs[5], Port: sshd.Port, User: sshd.User, KeyFile: sshd.ClientKey + ".pub"}, kind: ErrSetup,
			text: "is not a private key cmon can use"},
		{name: "no host", target: Target{User: "root"}, kind: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Run(context.Background(), tt.target, Request{Command: "true"})
			if !errors.Is(err, tt.kind) || !strings.Contains(fmt.Sprint(err), tt.text) {
				t.Fatalf("error %v, want %v with %q", err, tt.kind, tt.text)
			}
			var e *Error
			if !errors.As(err, &e) || e.Node != tt.target.Addr() || res == nil || res.ExitStatus != -1 {
				t.Errorf("error %#v result %+v", e, res)
			}
		})
	}
}

func TestAgentAuth(t *testing.T) {
	sshd := services.SharedSSHD(t)
	pemBytes, err := os.ReadFile(sshd.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); _ = agent.ServeAgent(keyring, conn) }()
		}
	}()
	c := newTestClient(t, func(cfg *Config) { cfg.AgentSocket = sock })
	tg := node(sshd, 6)
	tg.KeyFile = ""
	res, err := c.Run(context.Background(), tg, Request{Command: "echo via agent"})
	if err != nil || string(res.Stdout) != "via agent\n" {
		t.Fatalf("Run: %v %q", err, res.Stdout)
	}
}

func TestConnectionReuse(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	logins := sshd.AcceptedLogins()
	run := func(i int, req Request) {
		t.Helper()
		if req.Command == "" {
			req.Command = "echo hi"
		}
		res, err := c.Run(context.Background(), node(sshd, i), req)
		if err != nil || string(res.Stdout) != "hi\n" {
			t.Fatalf("Run on node %d: %v %q", i, err, res.Stdout)
		}
	}
	expect := func(what string, dials int64) {
		t.Helper()
		if got := c.dials.n.Load(); got != dials {
			t.Fatalf("%s: %d connections, want %d", what, got, dials)
		}
	}

	for range 5 {
		run(7, Request{})
	}
	expect("five commands on one node", 1)
	err := services.WaitFor(context.Background(), 2*time.Second, func() error {
		if n := sshd.AcceptedLogins() - logins; n != 1 {
			return fmt.Errorf("sshd logged %d logins", n)
		}
		return nil
	})
	if err != nil {
		t.Errorf("sshd log: %v", err)
	}

	run(8, Request{})
	expect("another node", 2)

	// Several commands at once on one node share the connection, and stay
	// under sshd's MaxSessions (10 in the harness) without being refused.
	var wg sync.WaitGroup
	errs := make(chan error, 15)
	for range 15 {
		wg.Go(func() {
			res, err := c.Run(context.Background(), node(sshd, 7), Request{Command: "sleep 0.3; echo hi"})
			if err == nil && string(res.Stdout) != "hi\n" {
				err = fmt.Errorf("stdout %q", res.Stdout)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent command: %v", err)
		}
	}
	expect("fifteen concurrent commands", 2)

	// A broken pooled connection is replaced without the caller noticing.
	c.dials.breakAll()
	run(7, Request{})
	expect("after the connections broke", 3)

	// keep_open: the connection closes after its idle time.
	run(7, Request{KeepOpen: 200 * time.Millisecond})
	c.waitPooled(t, 0)
	run(7, Request{})
	expect("after the idle time", 4)

	// close: the connection closes once the command is done.
	run(7, Request{Close: true})
	run(7, Request{})
	expect("after close", 5)
}

func TestKeepAliveDropsSilentConnection(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, func(cfg *Config) { cfg.KeepAlive = 200 * time.Millisecond })
	if _, err := c.Run(context.Background(), node(sshd, 10), Request{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	c.dials.silenceAll()
	// Without keep-alives the next command would wait on the dead connection.
	c.waitPooled(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Run(ctx, node(sshd, 10), Request{Command: "echo fresh"})
	if err != nil || string(res.Stdout) != "fresh\n" {
		t.Fatalf("Run after the connection went silent: %v", err)
	}
	if n := c.dials.n.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestFanOutOverNodes(t *testing.T) {
	sshd := services.SharedSSHD(t)
	c := newTestClient(t, nil)
	var all []Target
	for i := range sshd.Addrs {
		all = append(all, node(sshd, i))
	}
	if len(all) != 20 {
		t.Fatalf("%d nodes", len(all))
	}

	t.Run("concurrent over 20 nodes", func(t *testing.T) {
		const bound = 5
		got := c.RunMany(context.Background(), all, Request{Command: `sleep 0.3; echo "$SSH_CONNECTION"`},
			FanOut{Concurrent: true, Parallelism: bound})
		if len(got.Responded) != 20 || len(got.Unreachable)+len(got.Unapproved)+len(got.Pending) != 0 {
			t.Fatalf("buckets %+v", got)
		}
		type edge struct {
			at    time.Time
			delta int
		}
		var edges []edge
		for i, n := range got.Nodes {
			// sshd saw the connection on the node's own address.
			if f := strings.Fields(string(n.Result.Stdout)); len(f) != 4 || f[2] != sshd.Addrs[i] {
				t.Errorf("node %d answered %q", i, n.Result.Stdout)
			}
			edges = append(edges, edge{n.Result.Started, 1}, edge{n.Result.Ended, -1})
		}
		slices.SortFunc(edges, func(a, b edge) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.delta - b.delta // an end before a start at the same instant
		})
		running, peak := 0, 0
		for _, e := range edges {
			running += e.delta
			peak = max(peak, running)
		}
		if peak > bound || peak < 2 {
			t.Errorf("peak concurrency %d, want 2..%d", peak, bound)
		}
	})

	t.Run("sequential abort on error", func(t *testing.T) {
		// The command fails on the second node only (sshd tells it its own address).
		cmd := fmt.Sprintf(`case "$SSH_CONNECTION" in *" %s "*) exit 1;; esac; echo ok`, sshd.Addrs[1])
		got := c.RunMany(context.Background(), all[:5], Request{Command: cmd}, FanOut{AbortOnError: true})
		if !slices.Equal(got.Responded, []string{sshd.Addr(0), sshd.Addr(1)}) || len(got.Pending) != 3 {
			t.Errorf("responded %v pending %v", got.Responded, got.Pending)
		}
		if got.Nodes[1].Result.ExitStatus != 1 || got.Nodes[2].Result != nil {
			t.Errorf("node results %+v", got.Nodes[:3])
		}

		got = c.RunMany(context.Background(), all[:5], Request{Command: cmd}, FanOut{})
		if len(got.Responded) != 5 {
			t.Errorf("without abort: responded %v", got.Responded)
		}
	})

	t.Run("unreachable node aborts", func(t *testing.T) {
		port, err := services.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		dead := Target{Host: "127.0.0.1", Port: port, User: sshd.User, KeyFile: sshd.ClientKey}
		ts := []Target{all[0], dead, all[1], all[2]}
		got := c.RunMany(context.Background(), ts, Request{Command: "true"}, FanOut{AbortOnError: true})
		if !slices.Equal(got.Responded, []string{sshd.Addr(0)}) || !slices.Equal(got.Unreachable, []string{dead.Addr()}) ||
			!slices.Equal(got.Pending, []string{sshd.Addr(1), sshd.Addr(2)}) {
			t.Errorf("buckets %+v", got)
		}
	})
}

func TestHostKeys(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.40")
	store := NewMemoryKnownHosts()
	tg := Target{Host: sshd.Addrs[0], Port: sshd.Port, User: sshd.User, KeyFile: sshd.ClientKey}
	ctx := context.Background()
	run := func(c *testClient, tg Target) error {
		_, err := c.Run(ctx, tg, Request{Command: "true"})
		return err
	}

	strict := newTestClient(t, func(cfg *Config) { cfg.KnownHosts = store; cfg.LearnHostKeys = false })
	if err := run(strict, tg); !errors.Is(err, ErrUnknownHostKey) {
		t.Fatalf("strict client on an unknown host: %v", err)
	}

	learner := newTestClient(t, func(cfg *Config) { cfg.KnownHosts = store })
	if err := run(learner, tg); err != nil {
		t.Fatalf("registration: %v", err)
	}
	keys, err := store.Lookup(ctx, tg.Addr())
	if err != nil || len(keys) != 1 || !sameKey(keys[0], sshd.HostKey()) {
		t.Fatalf("store after registration: %v %v", keys, err)
	}
	if err := run(strict, tg); err != nil {
		t.Fatalf("strict client on a known host: %v", err)
	}

	// The node is reinstalled: the pooled connections break, and the
	// reconnection meets a new key.
	oldKey := sshd.HostKey()
	if err := sshd.RestartWithNewHostKey(ctx); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*testClient{"strict": strict, "learning": learner} {
		err := run(c, tg)
		if !errors.Is(err, ErrHostKey) {
			t.Fatalf("%s client after the key changed: %v", name, err)
		}
		if !strings.Contains(err.Error(), ssh.FingerprintSHA256(sshd.HostKey())) {
			t.Errorf("the error does not name the presented key: %v", err)
		}
	}
	if keys, _ := store.Lookup(ctx, tg.Addr()); len(keys) != 1 || !sameKey(keys[0], oldKey) {
		t.Fatal("the key on record changed")
	}

	// Fingerprints given at registration are the only keys accepted.
	fresh := newTestClient(t, func(cfg *Config) { cfg.LearnHostKeys = false })
	wrong := tg
	wrong.HostKeyFingerprints = []string{ssh.FingerprintSHA256(oldKey)}
	if err := run(fresh, wrong); !errors.Is(err, ErrHostKey) {
		t.Errorf("wrong fingerprint: %v", err)
	}
	right := tg
	right.HostKeyFingerprints = []string{ssh.FingerprintSHA256(sshd.HostKey())}
	if err := run(fresh, right); err != nil {
		t.Errorf("right fingerprint: %v", err)
	}
	if keys, _ := fresh.known.Lookup(ctx, tg.Addr()); len(keys) != 1 || !sameKey(keys[0], sshd.HostKey()) {
		t.Errorf("the fingerprinted key was not recorded: %v", keys)
	}
	if err := run(fresh, tg); err != nil {
		t.Errorf("after fingerprint registration: %v", err)
	}

	// An operator who checked the reinstall forgets the old key; the next
	// registration learns the new one.
	if err := store.Forget(ctx, tg.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := run(learner, tg); err != nil {
		t.Errorf("registration after forget: %v", err)
	}
}
