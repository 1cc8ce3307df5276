package integration

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBadConfigWithPortTaken: cmon checks its whole configuration before it
// binds a port, so a bad setting is reported as such, not as the port in use,
// and nothing is written (a `make run` controller up on 9501 once made a bad
// DSN read as the port in use).
func TestBadConfigWithPortTaken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantKey string
	}{
		{name: "port out of range", args: []string{"--rpc-port", "99999"}, wantKey: "RPC_PORT"},
		{name: "bad bind address", env: []string{"RPC_BIND_ADDRESSES=localhost-ish"}, wantKey: "RPC_BIND_ADDRESSES"},
		{name: "unreadable config", args: []string{"--config", "/nonexistent/cmon"}, wantKey: "/nonexistent/cmon"},
		{name: "bad mysql dsn hides the value", env: []string{"CMON_MYSQL_DSN=not a dsn s3cr3t"}, wantKey: "CMON_MYSQL_DSN"},
		{name: "admin password under the floor", env: []string{"CMON_ADMIN_PASSWORD=s3cr3t"}, wantKey: "CMON_ADMIN_PASSWORD"},
		{name: "bad exec regular expression", args: []string{"--exec-allow", "(unclosed"}, wantKey: "CMON_EXEC_ALLOW"},
		{name: "unreadable certificate", args: []string{"--tls-cert", "/nonexistent/cmon.crt", "--tls-key", "/nonexistent/cmon.key"},
			wantKey: "CMON_TLS_CERT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			cmd := exec.Command(cmonBinary, append([]string{"--data-dir", dir, "--rpc-port", port}, tt.args...)...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("cmon started with bad configuration: %s", out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tt.wantKey) || strings.Contains(string(out), "address already in use") {
				t.Fatalf("error output should end in one line naming %s, not the busy port:\n%s", tt.wantKey, out)
			}
			if strings.Contains(string(out), "s3cr3t") {
				t.Fatalf("error output shows the secret:\n%s", out)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("cmon wrote its data directory despite a bad configuration: %v", err)
			}
		})
	}
}
