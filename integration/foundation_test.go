package integration

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestBareV2ReplyAsDocumented(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		// Exactly the documented call: a GET with no body.
		out, err := runCurl("-sk", c.URL+"/v2")
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		for _, want := range []string{`"error_string": "Invalid operation '' on '/v2/info'."`, `"request_operation": ""`,
			`"request_status": "InvalidRequest"`, `"v2"`, `"controller_id": "`} {
			if !strings.Contains(out, want) {
				t.Errorf("reply lacks %s:\n%s", want, out)
			}
		}
		if !regexp.MustCompile(`"request_processed": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`).MatchString(out) {
			t.Errorf("request_processed not in the documented format:\n%s", out)
		}
	})
}

func TestTLSOnly(t *testing.T) {
	c := startController(t, controllerOptions{})
	plainURL := strings.Replace(c.URL, "https://", "http://", 1) + "/v2"
	out, _ := runCurl("-s", "--max-time", "10", plainURL)
	if strings.Contains(out, "request_status") || strings.Contains(out, "controller_id") {
		t.Fatalf("plain HTTP got an RPC reply: %s", out)
	}
	if out, err := runCurl("-sk", "--tlsv1.1", "--tls-max", "1.1", c.URL+"/v2"); err == nil {
		t.Fatalf("TLS 1.1 handshake succeeded: %s", out)
	}
	if out, err := runCurl("-sk", "--tlsv1.2", "--tls-max", "1.2", c.URL+"/v2"); err != nil || !strings.Contains(out, "InvalidRequest") {
		t.Fatalf("TLS 1.2 refused: %v %s", err, out)
	}
}

func TestEnvelopeOverRealTLS(t *testing.T) {
	c := startController(t, controllerOptions{})
	t.Run("ping without auth, trailing slash, any case", func(t *testing.T) {
		r := mustOk(t, c.curl(t, "controller/", `{"operation":"PING","request_id":9,"request_created":"2021-02-09T09:24:47.552Z"}`))
		if r.Reply["request_id"] != float64(9) || r.Reply["request_created"] != "2021-02-09T09:24:47.552Z" ||
			r.Reply["rpc_version"] != "2.0" || r.Reply["package_name"] != "cmon" {
			t.Fatalf("ping reply %s", r.Raw)
		}
		if !strings.Contains(r.Header, "Server: cmon/") {
			t.Fatalf("no Server header: %s", r.Header)
		}
	})
	t.Run("http 1.0 gets no chunking", func(t *testing.T) {
		out, err := runCurl("-sk", "--http1.0", "-i", "-d", `{"operation":"ping"}`, c.URL+"/v2/controller")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(out), "transfer-encoding") || !strings.Contains(out, "Content-Length:") {
			t.Fatalf("HTTP/1.0 reply framing:\n%s", out)
		}
	})
	tests := []struct {
		name, module, body, wantStatus, wantError string
	}{
		{name: "unknown module", module: "nowhere", body: `{"operation":"ping"}`, wantStatus: "InvalidRequest", wantError: "Invalid module '/v2/nowhere'."},
		{name: "unknown operation", module: "controller", body: `{"operation":"explode"}`, wantStatus: "InvalidRequest", wantError: "Invalid operation 'explode' on '/v2/controller'."},
		{name: "malformed json", module: "controller", body: `{"operation": "ping"`, wantStatus: "InvalidRequest"},
		{name: "operation of wrong type", module: "controller", body: `{"operation": ["ping"]}`, wantStatus: "InvalidRequest", wantError: "Field 'operation' must be a string."},
		{name: "body over 1 MiB", module: "controller", body: `{"operation":"ping","x":"` + strings.Repeat("x", 1<<20) + `"}`,
			wantStatus: "InvalidRequest", wantError: "The request body is larger than 1048576 bytes."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.curl(t, tt.module, tt.body)
			if r.Status() != tt.wantStatus {
				t.Fatalf("status %s, want %s: %s", r.Status(), tt.wantStatus, r.Raw)
			}
			if tt.wantError != "" && r.Reply["error_string"] != tt.wantError {
				t.Fatalf("error_string %v, want %q", r.Reply["error_string"], tt.wantError)
			}
		})
	}
	t.Run("non-POST method", func(t *testing.T) {
		out, _ := runCurl("-sk", "-X", "PUT", c.URL+"/v2/controller")
		if !strings.Contains(out, `"request_status": "InvalidRequest"`) || !strings.Contains(out, "Method PUT") {
			t.Fatalf("PUT reply: %s", out)
		}
	})
	if strings.Contains(c.Log(), "panic") {
		t.Fatalf("controller log shows a panic:\n%s", c.Log())
	}
}

func TestSecondBindAddressFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cmon.conf")
	if err := os.WriteFile(cfg, []byte("# two addresses\nRPC_BIND_ADDRESSES=\"127.0.0.1,127.0.0.2\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startController(t, controllerOptions{dataDir: dir, args: []string{"--config", cfg}})
	for _, addr := range []string{"127.0.0.1", "127.0.0.2"} {
		url := strings.Replace(c.URL, "127.0.0.1", addr, 1) + "/v2/controller"
		out, err := runCurl("-sk", "-d", `{"operation":"ping"}`, url)
		if err != nil || !strings.Contains(out, `"request_status": "Ok"`) {
			t.Fatalf("%s not served: %v %s", addr, err, out)
		}
	}
}

func TestRestartKeepsIdentityAndCertificate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		id1 := mustOk(t, c.curl(t, "controller", `{"operation":"ping"}`)).Reply["controller_id"]
		cert1 := fileHash(t, filepath.Join(c.DataDir, "tls", "cmon.crt"))
		c.Restart()
		id2 := mustOk(t, c.curl(t, "controller", `{"operation":"ping"}`)).Reply["controller_id"]
		if id1 == "" || id1 != id2 {
			t.Fatalf("controller_id changed across restart: %v -> %v", id1, id2)
		}
		if cert2 := fileHash(t, filepath.Join(c.DataDir, "tls", "cmon.crt")); cert1 != cert2 {
			t.Fatal("self-signed certificate was regenerated on restart")
		}
		if st, err := os.Stat(filepath.Join(c.DataDir, "tls", "cmon.key")); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("TLS key mode: %v %v", st.Mode(), err)
		}
		if !strings.Contains(c.Log(), "cmon stopped") {
			t.Fatalf("no graceful stop in log:\n%s", c.Log())
		}
	})
}

func TestGeneratedAdminPasswordIsFiledNotLogged(t *testing.T) {
	dir := t.TempDir()
	c := startController(t, controllerOptions{dataDir: dir, generatePassword: true})
	path := filepath.Join(dir, "initial-admin-password")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("initial-admin-password: %v %v", st, err)
	}
	pw, _ := os.ReadFile(path)
	password := strings.TrimSpace(string(pw))
	if len(password) < 16 {
		t.Fatalf("generated password %d characters long", len(password))
	}
	log := c.Log()
	if strings.Contains(log, password) {
		t.Fatal("the generated password appears in the log")
	}
	if !strings.Contains(log, path) {
		t.Fatalf("the log does not name the password file:\n%s", log)
	}
	if st, err := os.Stat(filepath.Join(dir, "cmon.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode: %v %v", st.Mode(), err)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
