package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cmon")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// envOf is an environment holding exactly env, in os.LookupEnv's shape.
func envOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "# comment\nRPC_PORT=\"9600\"\nRPC_BIND_ADDRESSES='127.0.0.1, ::1'\nCMON_LOG_LEVEL=warn\n"+
		"CMON_METRICS_ADDRESS=127.0.0.1:9502\nCMON_EXEC_DENY='rm -rf'\n")
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantPort    int
		wantBind    []string
		wantLog     string
		wantMetrics string
		wantDeny    string
	}{
		{name: "defaults", wantPort: 9501, wantBind: []string{"127.0.0.1"}, wantLog: "info"},
		{name: "file over defaults", args: []string{"--config", file}, wantPort: 9600, wantBind: []string{"127.0.0.1", "::1"}, wantLog: "warn",
			wantMetrics: "127.0.0.1:9502", wantDeny: "rm -rf"},
		{name: "env over file", args: []string{"--config", file}, env: map[string]string{"RPC_PORT": "9700"},
			wantPort: 9700, wantBind: []string{"127.0.0.1", "::1"}, wantLog: "warn", wantMetrics: "127.0.0.1:9502", wantDeny: "rm -rf"},
		{name: "empty env clears the file's value", args: []string{"--config", file},
			env:      map[string]string{"CMON_METRICS_ADDRESS": "", "CMON_EXEC_DENY": ""},
			wantPort: 9600, wantBind: []string{"127.0.0.1", "::1"}, wantLog: "warn"},
		{name: "empty env over the default", env: map[string]string{"CMON_METRICS_ADDRESS": ""},
			wantPort: 9501, wantBind: []string{"127.0.0.1"}, wantLog: "info"},
		{name: "flag over empty env", args: []string{"--config", file, "--metrics-address", "127.0.0.1:9503"},
			env:      map[string]string{"CMON_METRICS_ADDRESS": ""},
			wantPort: 9600, wantBind: []string{"127.0.0.1", "::1"}, wantLog: "warn", wantMetrics: "127.0.0.1:9503", wantDeny: "rm -rf"},
		{name: "flag over env", args: []string{"--config", file, "--rpc-port", "9800", "--rpc-bind-addresses", "[::1]"},
			env: map[string]string{"RPC_PORT": "9700"}, wantPort: 9800, wantBind: []string{"::1"}, wantLog: "warn",
			wantMetrics: "127.0.0.1:9502", wantDeny: "rm -rf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := loadConfig(tt.args, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Port != tt.wantPort || !slices.Equal(c.BindAddresses, tt.wantBind) || c.LogLevel != tt.wantLog {
				t.Fatalf("got port %d bind %v log %s; want %d %v %s", c.Port, c.BindAddresses, c.LogLevel, tt.wantPort, tt.wantBind, tt.wantLog)
			}
			if c.MetricsAddress != tt.wantMetrics || c.ExecDeny != tt.wantDeny {
				t.Fatalf("got metrics address %q exec deny %q; want %q %q", c.MetricsAddress, c.ExecDeny, tt.wantMetrics, tt.wantDeny)
			}
		})
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		args    []string
		env     map[string]string
		wantKey string
		absent  string
	}{
		{name: "unknown key in file", file: "RPC_PROT=9501\n", wantKey: "RPC_PROT"},
		{name: "port out of range", file: "RPC_PORT=70000\n", wantKey: "RPC_PORT"},
		{name: "port not a number", env: map[string]string{"RPC_PORT": "nine"}, wantKey: "RPC_PORT"},
		{name: "empty env is a value, checked like any other", env: map[string]string{"RPC_PORT": ""}, wantKey: "RPC_PORT (environment)"},
		{name: "empty env cannot clear the data directory", env: map[string]string{"CMON_DATA_DIR": ""}, wantKey: "CMON_DATA_DIR (environment)"},
		{name: "bad address", args: []string{"--rpc-bind-addresses", "127.0.0.1,not-an-ip"}, wantKey: "RPC_BIND_ADDRESSES"},
		{name: "empty address list", file: "RPC_BIND_ADDRESSES=\" , \"\n", wantKey: "RPC_BIND_ADDRESSES"},
		{name: "unterminated quote", file: "RPC_PORT=\"9501\n", wantKey: "RPC_PORT"},
		{name: "line without equals", file: "RPC_PORT\n", wantKey: "line 1"},
		{name: "unreadable file", args: []string{"--config", "/nonexistent/cmon"}, wantKey: "/nonexistent/cmon"},
		{name: "cert without key", env: map[string]string{"CMON_TLS_CERT": "/x.crt"}, wantKey: "CMON_TLS_KEY"},
		{name: "bad log level", file: "CMON_LOG_LEVEL=loud\n", wantKey: "CMON_LOG_LEVEL"},
		{name: "host offline after zero checks", args: []string{"--host-offline-after", "0"}, wantKey: "CMON_HOST_OFFLINE_AFTER"},
		{name: "host offline after not a number", env: map[string]string{"CMON_HOST_OFFLINE_AFTER": "two"}, wantKey: "CMON_HOST_OFFLINE_AFTER"},
		{name: "unexpected argument", args: []string{"serve"}, wantKey: "serve"},
		{name: "bad mysql dsn says what is wrong, not the value", env: map[string]string{"CMON_MYSQL_DSN": "not a dsn s3cr3t"},
			wantKey: "CMON_MYSQL_DSN (environment): not a valid MySQL DSN", absent: "s3cr3t"},
		{name: "admin password under the floor", env: map[string]string{"CMON_ADMIN_PASSWORD": "s3cr3t"},
			wantKey: "CMON_ADMIN_PASSWORD", absent: "s3cr3t"},
		{name: "admin password under a floor set in another source", file: "CMON_MIN_PASSWORD_LENGTH=20\n",
			env: map[string]string{"CMON_ADMIN_PASSWORD": "Adm1n-test-pw"}, wantKey: "CMON_ADMIN_PASSWORD", absent: "Adm1n-test-pw"},
		{name: "bad exec regular expression", args: []string{"--exec-deny", "rm (-rf"}, wantKey: "CMON_EXEC_DENY"},
		{name: "unreadable certificate", env: map[string]string{"CMON_TLS_CERT": "/nonexistent/cmon.crt", "CMON_TLS_KEY": "/nonexistent/cmon.key"},
			wantKey: "CMON_TLS_CERT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeConfig(t, tt.file)}, args...)
			}
			_, _, err := loadConfig(args, envOf(tt.env))
			if err == nil {
				t.Fatal("loadConfig accepted bad input")
			}
			if !strings.Contains(err.Error(), tt.wantKey) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q should be one line naming %s", err, tt.wantKey)
			}
			if tt.absent != "" && strings.Contains(err.Error(), tt.absent) {
				t.Fatalf("error %q shows the secret value", err)
			}
		})
	}
}

// TestDSNParsedNotDialed: a DSN that parses passes the configuration even
// when no server answers there; reaching it is start-up's business.
func TestDSNParsedNotDialed(t *testing.T) {
	dsn := "cmon:pw@tcp(127.0.0.1:1)/cmon"
	c, _, err := loadConfig(nil, envOf(map[string]string{"CMON_MYSQL_DSN": dsn}))
	if err != nil {
		t.Fatalf("loadConfig with a DSN that parses: %v", err)
	}
	if c.MySQLDSN != dsn {
		t.Fatalf("DSN %q, want %q", c.MySQLDSN, dsn)
	}
}

func TestSecretValuesStayOutOfErrors(t *testing.T) {
	for _, s := range settings() {
		if !s.secret {
			continue
		}
		err := configError(s, "environment", os.ErrInvalid)
		if !strings.Contains(err.Error(), s.key) || strings.Contains(err.Error(), os.ErrInvalid.Error()) {
			t.Errorf("%s: error %q should name the key and nothing of the value", s.key, err)
		}
	}
}

func TestShippedConfigFileParses(t *testing.T) {
	path := filepath.Join("..", "etc", "default", "cmon")
	if _, err := readConfigFile(path); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings() {
		if !strings.Contains(string(body), s.key+"=") {
			t.Errorf("etc/default/cmon does not document %s", s.key)
		}
	}
}

func TestHelpGoesToStdoutWithTypes(t *testing.T) {
	var stdout, stderr strings.Builder
	if err := run([]string{"--help"}, envOf(nil), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--rpc-port int", "--rpc-bind-addresses list", "--job-retention duration", "[CMON_LOG_LEVEL]"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, stdout.String())
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("--help wrote to stderr: %s", stderr.String())
	}
}

func TestJSONLogFormat(t *testing.T) {
	var out strings.Builder
	level := new(slog.LevelVar)
	newLogger(&out, level, "json").Info("started", "controller", "c1")
	var line map[string]any
	if err := json.Unmarshal([]byte(out.String()), &line); err != nil || line["msg"] != "started" || line["controller"] != "c1" {
		t.Fatalf("a JSON log line: %v %q", err, out.String())
	}
	level.Set(slog.LevelWarn)
	out.Reset()
	newLogger(&out, level, "text").Info("hidden")
	if out.Len() != 0 {
		t.Fatalf("an info line at level warn: %q", out.String())
	}
}
