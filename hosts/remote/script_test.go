package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// runLocally runs an invocation the way sshd would: the login shell gets the
// exec request as its -c argument and the stdin bytes as stdin.
func runLocally(t *testing.T, line string, stdin []byte) (stdout, stderr []byte, status int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run: %v", err)
	}
	// The first stdout line is the bootstrap's process group report.
	first, rest, ok := bytes.Cut(out.Bytes(), []byte("\n"))
	if !ok || !bytes.HasPrefix(first, []byte(pgidPrefix)) {
		t.Fatalf("stdout does not start with the pgid line: %q", out.String())
	}
	return rest, errb.Bytes(), cmd.ProcessState.ExitCode()
}

func TestInvocationRoundTrip(t *testing.T) {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	tricky := "it's \"quoted\" $HOME `id` \\n \\ back\nsecond line\n\ttab ünïcödé '' ;|&><"
	tests := []struct {
		name    string
		command string
		env     []EnvVar
		dir     string
		stdin   []byte
		stdout  string
		status  int
	}{
		{name: "plain", command: "echo hello", stdout: "hello\n"},
		{name: "exit status", command: "echo out; exit 7", stdout: "out\n", status: 7},
		{name: "tricky env values", command: `printf '%s|%s|%s' "$A" "$B" "$C_1"`,
			env: []EnvVar{{"A", tricky}, {"B", ""}, {"C_1", "x'y"}}, stdout: tricky + "||x'y"},
		{name: "env not exported to the caller's shell only", command: `sh -c 'printf %s "$A"'`,
			env: []EnvVar{{"A", "child sees it"}}, stdout: "child sees it"},
		{name: "multi-line command", command: "for i in 1 2 3; do\n  echo $i\ndone", stdout: "1\n2\n3\n"},
		{name: "dir with quote and space", command: "pwd", dir: "/", stdout: "/\n"},
		{name: "stdin after script", command: "cat", stdin: []byte("line one\nline two"), stdout: "line one\nline two"},
		{name: "binary stdin", command: "cat", stdin: allBytes, stdout: string(allBytes)},
		{name: "stdin read by line", command: "read -r a; read -r b; echo \"$b,$a\"", stdin: []byte("x\ny\n"), stdout: "y,x\n"},
		{name: "command without trailing newline", command: "printf done", stdout: "done"},
		{name: "command that reads nothing", command: "true", stdin: bytes.Repeat([]byte("z"), 1<<16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := newInvocation(tt.command, tt.dir, tt.env, Sudo{}, tt.stdin)
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, status := runLocally(t, inv.line, inv.stdin)
			if string(stdout) != tt.stdout || status != tt.status {
				t.Errorf("got stdout %q status %d (stderr %q), want %q status %d", stdout, status, stderr, tt.stdout, tt.status)
			}
			for _, e := range tt.env {
				if e.Value != "" && strings.Contains(inv.line, e.Value) {
					t.Errorf("env value %q is on the command line", e.Value)
				}
			}
		})
	}
}

func TestInvocationDirMissing(t *testing.T) {
	inv, err := newInvocation("echo should not run", "/nonexistent/dir", nil, Sudo{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, status := runLocally(t, inv.line, inv.stdin)
	if status == 0 || len(stdout) != 0 || len(stderr) == 0 {
		t.Errorf("got stdout %q stderr %q status %d, want a failure before the command", stdout, stderr, status)
	}
}

func TestSudoPasswordTravelsOnStdinOnly(t *testing.T) {
	const password = "pa ss'wörd$1"
	inv, err := newInvocation("id -u", "", []EnvVar{{"TOKEN", "s3cr3t-value"}}, Sudo{Password: password}, []byte("in"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(inv.line, password) || strings.Contains(inv.line, "s3cr3t-value") {
		t.Fatalf("a secret is on the command line: %s", inv.line)
	}
	if !strings.HasPrefix(inv.line, "exec sudo -S -k -p '' -- /bin/sh -c '") {
		t.Errorf("command line %q does not run sudo -S", inv.line)
	}
	if !bytes.HasPrefix(inv.stdin, []byte(password+"\n"+scriptMarker+"\n")) {
		t.Errorf("stdin does not start with the password line and the marker: %q", inv.stdin)
	}
	if !bytes.HasSuffix(inv.stdin, []byte("id -u\nin")) {
		t.Errorf("stdin does not end with the command and the caller's stdin: %q", inv.stdin)
	}

	// When sudo needs no password it leaves the line unread: the bootstrap
	// must skip it rather than run it. Simulate with the same stdin, no sudo.
	plain := strings.TrimPrefix(inv.line, "exec sudo -S -k -p '' -- ")
	stdout, stderr, status := runLocally(t, plain, inv.stdin)
	if status != 0 || strings.TrimSpace(string(stdout)) == "" || strings.Contains(string(stdout)+string(stderr), password) {
		t.Errorf("got stdout %q stderr %q status %d", stdout, stderr, status)
	}

	noPw, err := newInvocation("id -u", "", nil, Sudo{Enabled: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(noPw.line, "exec sudo -n -- ") || !bytes.HasPrefix(noPw.stdin, []byte(scriptMarker+"\n")) {
		t.Errorf("sudo -n invocation: line %q stdin %q", noPw.line, noPw.stdin)
	}
}

func TestInvocationInvalid(t *testing.T) {
	tests := []struct {
		name    string
		command string
		env     []EnvVar
		dir     string
		sudo    Sudo
	}{
		{name: "empty command", command: "  "},
		{name: "NUL in command", command: "echo a\x00b"},
		{name: "bad env name", command: "true", env: []EnvVar{{"A-B", "x"}}},
		{name: "env name with space", command: "true", env: []EnvVar{{"A B", "x"}}},
		{name: "env name injection", command: "true", env: []EnvVar{{"A=1; rm -rf / #", "x"}}},
		{name: "NUL in env value", command: "true", env: []EnvVar{{"A", "x\x00"}}},
		{name: "NUL in dir", command: "true", dir: "/tmp\x00"},
		{name: "newline in sudo password", command: "true", sudo: Sudo{Password: "a\nb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newInvocation(tt.command, tt.dir, tt.env, tt.sudo, nil); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for _, s := range []string{"", "a", "'", "''", "a'b'c", `\'`, "$(id)", "\n"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+ShellQuote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("ShellQuote(%q) came back as %q (%v)", s, out, err)
		}
	}
}

// TestKillScriptEndsGroup runs the kill script locally against a process
// group with a child that ignores SIGTERM, so that SIGKILL must follow.
func TestKillScriptEndsGroup(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", `trap "" TERM; sleep 30 & trap "" TERM; sleep 31; wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	if err := services.WaitFor(context.Background(), 10*time.Second, func() error {
		if live := liveMembers(t, pgid); len(live) < 3 {
			return fmt.Errorf("group members %v", live)
		}
		return nil
	}); err != nil {
		t.Fatal(err) // the shell and both sleeps, traps set
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", EndGroupCommand(pgid, 500*time.Millisecond)).CombinedOutput(); err != nil {
		t.Fatalf("kill script: %v: %s", err, out)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the group's leader survived the kill script")
	}
	// A killed child stays a member, as a zombie, until init reaps it: only
	// live members count.
	if live := liveMembers(t, pgid); len(live) > 0 {
		t.Errorf("process group %d still has live members %v", pgid, live)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("SIGKILL came after %s, before the grace period", d)
	}
}

// liveMembers lists the processes of group pgid that are not zombies (Linux).
func liveMembers(t *testing.T, pgid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// Fields after the parenthesized command: state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			live = append(live, path)
		}
	}
	return live
}
