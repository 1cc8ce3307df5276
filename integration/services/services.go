// Package services starts the real services cmon's tests need (MariaDB, OpenSSH
// sshd) on loopback, on spare ports, in temporary directories, and stops them
// afterwards. It never installs anything: `make test-deps` (the command in
// ./install, which `make test` runs first) installs the Debian packages of
// Tools, and the starters only look for the programs.
//
// Outside CI a service that cannot be had skips the tests that need it; with
// CI=true it fails them, so a missing service never passes as a skip.
package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI tells whether the run is under CI, where missing services are failures.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// Unavailable fails the test under CI and skips it elsewhere.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required under CI: %v", what, err)
	}
	t.Skipf("%s unavailable (set CI=true to make this a failure): %v", what, err)
}

// TestLogger is the log of the code under test: discarded unless
// JOBS_TEST_LOG is set, then everything down to debug on stderr.
func TestLogger() *slog.Logger {
	if os.Getenv("JOBS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// registry holds the services started lazily by a test binary, so that Main
// can stop them when its tests are done. A test binary is one process, and this
// is its only shared state.
var registry struct {
	sync.Mutex
	stops []func()
	// warming are the services started ahead of their first use.
	warming sync.WaitGroup
}

func onStop(stop func()) {
	registry.Lock()
	defer registry.Unlock()
	registry.stops = append(registry.stops, stop)
}

// shared is a service started once per test binary on first use and stopped
// by Main; a failed start is remembered, so later tests fail or skip at once.
type shared[T interface{ Stop() }] struct {
	mu  sync.Mutex
	v   T
	err error
	ok  bool
}

func (s *shared[T]) get(t testing.TB, what string, start func() (T, error)) T {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start(start)
	if s.err != nil {
		Unavailable(t, what, s.err)
	}
	return s.v
}

// start starts the service unless it runs or failed; s.mu is held.
func (s *shared[T]) start(start func() (T, error)) {
	if s.ok || s.err != nil {
		return
	}
	s.v, s.err = start()
	if s.ok = s.err == nil; s.ok {
		onStop(s.v.Stop)
	}
}

// warm starts the service in the background, so that a slow start overlaps
// other tests instead of adding to the run; its first get waits for it.
func (s *shared[T]) warm(start func() (T, error)) {
	registry.warming.Add(1)
	go func() {
		defer registry.warming.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.start(start)
	}()
}

// Main runs a package's tests and then stops every service they started. Use it
// from TestMain: func TestMain(m *testing.M) { os.Exit(services.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	registry.warming.Wait() // a start still under way is stopped too
	registry.Lock()
	defer registry.Unlock()
	for i := len(registry.stops) - 1; i >= 0; i-- {
		registry.stops[i]()
	}
	registry.stops = nil
	return code
}

// lookPath also searches the sbin folders, which a non-root PATH may lack. An
// absolute path names a file that need not be executable, such as a library.
func lookPath(program string) (string, error) {
	if filepath.IsAbs(program) {
		if _, err := os.Stat(program); err != nil {
			return "", fmt.Errorf("%s not found", program)
		}
		return program, nil
	}
	if p, err := exec.LookPath(program); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, program)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", program)
}

// FreePort asks the kernel for a TCP port that is free on addr at the moment.
func FreePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor polls ready until it returns nil or the timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, ready func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for {
		if err = ready(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errorLines are the lines of out that report errors, at most n, or its
// last n lines when none does: a tool's error can sit above its footer.
func errorLines(out []byte, n int) string {
	var errs []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "ERROR") {
			errs = append(errs, strings.TrimSpace(line))
		}
	}
	if len(errs) == 0 {
		return lastLines(out, n)
	}
	return strings.Join(errs[:min(n, len(errs))], " | ")
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// stopProcess ends a service process: SIGTERM, then SIGKILL if it lingers.
func stopProcess(cmd *exec.Cmd, done <-chan error) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// CmonBinary is the cmon binary under test: $CMON_BIN (make test sets it to
// the one it built), else one built now from the module holding the working
// directory, removed by cleanup.
func CmonBinary() (bin string, cleanup func(), err error) {
	if bin := os.Getenv("CMON_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		return abs, func() {}, err
	}
	root, err := os.Getwd()
	if err != nil {
		return "", nil, err
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", nil, errors.New("build cmon: no go.mod above the working directory")
		}
		root = parent
	}
	dir, err := os.MkdirTemp("", "cmon-bin-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "cmon")
	cmd := exec.Command("go", "build", "-o", bin, "./cmon")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build cmon: %w: %s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}
