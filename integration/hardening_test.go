package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// nested is value wrapped in depth JSON arrays.
func nested(depth int, value string) string {
	return strings.Repeat("[", depth) + value + strings.Repeat("]", depth)
}

// TestRepliesStayBounded sends what made replies grow with the square of a
// request's nesting: every reply stays
// small, and what is stored is replayed at its own size.
func TestRepliesStayBounded(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	tests := []struct {
		name, module, body, wantStatus, wantError string
	}{
		{name: "deep request_id, no login", module: "controller",
			body:       fmt.Sprintf(`{"operation":"x","request_id":%s}`, nested(9990, "1")),
			wantStatus: "InvalidRequest", wantError: "nests deeper than 64 levels"},
		{name: "request_id an object", module: "controller", body: `{"operation":"ping","request_id":{"a":[1,2]}}`,
			wantStatus: "InvalidRequest", wantError: "Field 'request_id' must be a string or a number."},
		{name: "request_created an array", module: "auth", body: `{"operation":"authenticate","request_created":[1]}`,
			wantStatus: "InvalidRequest", wantError: "Field 'request_created' must be a string or a number."},
		{name: "deep object keys", module: "controller", body: `{"operation":"ping","x":` + strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200) + "}",
			wantStatus: "InvalidRequest", wantError: "nests deeper than 64 levels"},
		{name: "brackets inside strings do not count", module: "controller", body: `{"operation":"ping","request_id":"` + strings.Repeat("[", 500) + `"}`,
			wantStatus: "Ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.curl(t, tt.module, tt.body)
			if r.Status() != tt.wantStatus || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), tt.wantError) {
				t.Fatalf("got %s %v, want %s %q", r.Status(), r.Reply["error_string"], tt.wantStatus, tt.wantError)
			}
			if len(r.Raw) > 64<<10 {
				t.Fatalf("a %d-byte request got a %d-byte reply", len(tt.body), len(r.Raw))
			}
		})
	}

	t.Run("deep job_data is refused", func(t *testing.T) {
		r := admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","job":{"job_spec":{"command":"success","job_data":{"x":%s}}}}`,
			nested(100, "0")))
		if r.Status() != "InvalidRequest" {
			t.Fatalf("got %s: %.300s", r.Status(), r.Raw)
		}
	})

	t.Run("stored job_data is replayed at its own size", func(t *testing.T) {
		// 60 levels deep and 30,000 elements wide: indented, as replies are,
		// it would be some 7 MB.
		wide := strings.TrimSuffix(strings.Repeat("0,", 30000), ",")
		body := fmt.Sprintf(`{"operation":"createJobInstance","job":{"tags":["wide"],"job_spec":{"command":"success","job_data":{"x":%s}}}}`,
			nested(60, wide))
		id := int64(mustOk(t, admin.call(t, "jobs", body)).Reply["job"].(map[string]any)["job_id"].(float64))
		admin.waitJob(t, id, time.Minute)
		for _, read := range []string{
			fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, id),
			`{"operation":"getJobInstances","tags":["wide"]}`,
		} {
			r := mustOk(t, admin.call(t, "jobs", read))
			if len(r.Raw) > 2*len(body) {
				t.Errorf("%s: a %d-byte job replays as %d bytes", read, len(body), len(r.Raw))
			}
		}
	})
}

// TestConnectionFlood holds slow-body TLS connections from one address, as
// a client starving the controller of connections would: past its bound the
// controller closes new ones at once, and keeps serving other clients while
// the flood lasts.
func TestConnectionFlood(t *testing.T) {
	const bound, flood = 20, 200
	c := startController(t, controllerOptions{args: []string{"--max-connections-per-address", strconv.Itoa(bound)}})
	addr := strings.TrimPrefix(c.URL, "https://")
	held := 0
	var conns []net.Conn
	t.Cleanup(func() {
		for _, conn := range conns {
			conn.Close()
		}
	})
	for range flood {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			continue // closed by the controller: past the bound
		}
		conns = append(conns, conn)
		// A request whose body never comes keeps the connection busy.
		if _, err := fmt.Fprintf(conn, "POST /v2/controller HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"); err == nil {
			held++
		}
	}
	if held == 0 || held > bound {
		t.Fatalf("the controller took %d slow connections from one address, want 1 to %d", held, bound)
	}
	out, err := runCurl("-sk", "--max-time", "20", "--interface", "127.0.0.2", "-d", `{"operation":"ping"}`, c.URL+"/v2/controller")
	if err != nil || !strings.Contains(out, `"request_status": "Ok"`) {
		t.Fatalf("ping from another address during the flood: %v: %s", err, out)
	}
	for _, conn := range conns {
		conn.Close()
	}
	conns = nil
	// The flooding address is served again once its connections are gone.
	err = services.WaitFor(context.Background(), 30*time.Second, func() error {
		out, err := runCurl("-sk", "--max-time", "10", "-d", `{"operation":"ping"}`, c.URL+"/v2/controller")
		if err != nil || !strings.Contains(out, `"request_status": "Ok"`) {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after the flood: %v", err)
	}
}

// TestStartUpGuards: a busy port stops start-up before anything is written,
// a second controller cannot take a data directory in use, and the generated
// certificate names every address and configured name.
func TestStartUpGuards(t *testing.T) {
	t.Run("busy port", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		dir := filepath.Join(t.TempDir(), "data")
		port := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
		out, err := exec.Command(cmonBinary, "--data-dir", dir, "--rpc-port", port).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "port "+port) {
			t.Fatalf("cmon on a busy port: %v: %s", err, out)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cmon wrote its data directory before finding the port busy: %v", err)
		}
	})
	t.Run("data directory in use", func(t *testing.T) {
		c := startController(t, controllerOptions{})
		port, err := services.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(cmonBinary, "--data-dir", c.DataDir, "--rpc-port", strconv.Itoa(port)).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "in use by another cmon") {
			t.Fatalf("a second cmon on one data directory: %v: %s", err, out)
		}
		mustOk(t, c.curl(t, "controller", `{"operation":"ping"}`))
	})
	t.Run("certificate names", func(t *testing.T) {
		names := func(c *controller) []string {
			conn, err := tls.Dial("tcp", strings.TrimPrefix(c.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			leaf := conn.ConnectionState().PeerCertificates[0]
			out := slices.Clone(leaf.DNSNames)
			for _, ip := range leaf.IPAddresses {
				out = append(out, ip.String())
			}
			return out
		}
		c := startController(t, controllerOptions{bindAddresses: []string{"127.0.0.1", "127.0.0.7"}, args: []string{"--tls-names", "cmon.test"}})
		host, _ := os.Hostname()
		got := names(c)
		for _, want := range []string{"127.0.0.1", "127.0.0.7", "localhost", "cmon.test", strings.ToLower(host)} {
			if !slices.Contains(got, want) {
				t.Errorf("the certificate names %v, not %s", got, want)
			}
		}
		c.opts.args = []string{"--tls-names", "other.test"}
		c.Restart()
		if got := names(c); !slices.Contains(got, "other.test") {
			t.Errorf("after a change of names the certificate names %v, not other.test", got)
		}
	})
	t.Run("origin", func(t *testing.T) {
		c := startController(t, controllerOptions{args: []string{"--allowed-origins", "https://ui.test:8443"}})
		for origin, want := range map[string]string{
			"https://evil.test":                        "AccessDenied",
			"https://ui.test:8443":                     "Ok",
			strings.Replace(c.URL, "https", "http", 1): "AccessDenied",
			c.URL: "Ok",
		} {
			if r := c.curl(t, "controller", `{"operation":"ping"}`, "-H", "Origin: "+origin); r.Status() != want {
				t.Errorf("from origin %s: %s, want %s", origin, r.Status(), want)
			}
		}
	})
}

// TestNamesAndProbing: names that look like others are refused, and a user
// learns nothing of users it may not see.
func TestNamesAndProbing(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	for _, name := range []string{"ad\u00admin", "ad\u200bmin", "\u202enimda", "ad\u0007min"} {
		quoted, _ := json.Marshal(name)
		r := admin.call(t, "users", fmt.Sprintf(`{"operation":"createUser","new_password":"pw-look-12345","user":{"user_name":%s}}`, quoted))
		if r.Status() != "InvalidRequest" || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), "not printable") {
			t.Errorf("createUser %q: %s", name, r.Raw)
		}
	}
	c.createUser(t, "bob", "pw-bob-12345")
	bob := c.session(t, "bob", "pw-bob-12345")
	existing := bob.call(t, "users", `{"operation":"getKeys","user":{"user_id":1}}`)
	missing := bob.call(t, "users", `{"operation":"getKeys","user":{"user_id":9999}}`)
	if existing.Status() != "AccessDenied" || missing.Status() != "AccessDenied" ||
		strings.Contains(existing.Raw, "admin") ||
		strings.ReplaceAll(fmt.Sprint(existing.Reply["error_string"]), "'1'", "'9999'") != fmt.Sprint(missing.Reply["error_string"]) {
		t.Errorf("getKeys of user 1 and of user 9999 tell them apart:\n%s\n%s", existing.Raw, missing.Raw)
	}
}

// TestRecurringJobsFollowTheirOwner: a recurring job runs as its owner is now
// (findings 2 and 3): deleting or disabling the owner, or taking away the
// privilege the command needs, stops it at its next firing, paused, with the
// reason in its status and log.
func TestRecurringJobsFollowTheirOwner(t *testing.T) {
	c, admin, clusterID := withCluster(t, "127.0.0.21", "owned")
	for _, u := range []string{"deleted", "disabled", "revoked"} {
		c.createUser(t, u, "pw-"+u+"-12345")
		mustOk(t, admin.call(t, "tree", fmt.Sprintf(`{"operation":"addAcl","path":"/owned","acl":"user:%s:r-x"}`, u)))
	}
	tests := []struct {
		user   string
		change string // what admin does to the owner, as a request
		module string
		want   string // in the paused template's status_text
	}{
		{user: "deleted", module: "users", change: `{"operation":"deleteUser","user":{"user_name":"deleted"}}`, want: "no longer exists"},
		{user: "disabled", module: "users", change: `{"operation":"disable","user":{"user_name":"disabled"}}`, want: "is disabled"},
		{user: "revoked", module: "tree", change: `{"operation":"removeAcl","path":"/owned","acl":"user:revoked"}`,
			want: fmt.Sprintf("Execute access to cluster %d ('owned') for user revoked is denied", clusterID)},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			owner := c.session(t, tt.user, "pw-"+tt.user+"-12345")
			r := mustOk(t, owner.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
				"job":{"recurrence":"@every 1s","tags":[%q],"job_spec":{"command":"success"}}}`, clusterID, tt.user)))
			tmpl := int64(r.Reply["job"].(map[string]any)["job_id"].(float64))
			// It runs while its owner may run it.
			waitFor(t, 60*time.Second, func() error {
				list := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstances","tags":[%q],"show_finished":true}`, tt.user)))
				if list.Reply["total"].(float64) < 1 {
					return fmt.Errorf("no run finished yet")
				}
				return nil
			})
			mustOk(t, admin.call(t, tt.module, tt.change))
			waitFor(t, 60*time.Second, func() error {
				j := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, tmpl))).Reply["job"].(map[string]any)
				if j["status"] != "PAUSED" || !strings.Contains(fmt.Sprint(j["status_text"]), tt.want) {
					return fmt.Errorf("template is %v %q", j["status"], j["status_text"])
				}
				return nil
			})
		})
	}
}

// stays checks cond over d, failing at its first miss: how a test shows
// that something does not happen, which no condition can signal.
func stays(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.After(d)
	for {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-end:
			return
		case <-tick.C:
		}
	}
}

// waitFor polls check until it passes or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	if err := services.WaitFor(context.Background(), timeout, check); err != nil {
		t.Fatal(err)
	}
}

// TestHiddenClusterReadsAsMissing: to a user who may not read it, a cluster
// that exists and one that does not get the same refusal.
func TestHiddenClusterReadsAsMissing(t *testing.T) {
	c, _, id := withCluster(t, "127.0.0.22", "hidden")
	c.createUser(t, "prober", "pw-prober-12345")
	prober := c.session(t, "prober", "pw-prober-12345")
	pairs := []struct{ name, existing, missing string }{
		{name: "getClusterInfo by id",
			existing: fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id), missing: `{"operation":"getClusterInfo","cluster_id":9999}`},
		{name: "getClusterInfo by name",
			existing: `{"operation":"getClusterInfo","cluster_name":"hidden"}`, missing: `{"operation":"getClusterInfo","cluster_name":"nosuch"}`},
		{name: "getJobInstances by name",
			existing: `{"operation":"getJobInstances","cluster_name":"hidden"}`, missing: `{"operation":"getJobInstances","cluster_name":"nosuch"}`},
		{name: "exec by id",
			existing: fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,"job":{"job_spec":{"command":"exec","job_data":{"command":"id"}}}}`, id),
			missing:  `{"operation":"createJobInstance","cluster_id":9999,"job":{"job_spec":{"command":"exec","job_data":{"command":"id"}}}}`},
		{name: "stop named in job_data",
			existing: fmt.Sprintf(`{"operation":"createJobInstance","job":{"job_spec":{"command":"stop","job_data":{"clusterid":%d,"node":{"hostname":"a"}}}}}`, id),
			missing:  `{"operation":"createJobInstance","job":{"job_spec":{"command":"stop","job_data":{"clusterid":9999,"node":{"hostname":"a"}}}}}`},
	}
	module := func(body string) string {
		if strings.Contains(body, "JobInstance") {
			return "jobs"
		}
		return "clusters"
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			e, m := prober.call(t, module(p.existing), p.existing), prober.call(t, module(p.missing), p.missing)
			same := strings.NewReplacer(strconv.FormatInt(id, 10), "9999", "hidden", "nosuch").Replace(fmt.Sprint(e.Reply["error_string"]))
			if e.Status() != "AccessDenied" || e.Status() != m.Status() || same != fmt.Sprint(m.Reply["error_string"]) {
				t.Errorf("a hidden and a missing cluster differ:\n%s\n%s", e.Raw, m.Raw)
			}
		})
	}
}

// withCluster starts a controller with a cluster of one node on addr,
// registered by admin.
func withCluster(t *testing.T, addr, name string) (*controller, *session, int64) {
	t.Helper()
	sshd := services.NewSSHD(t, addr)
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, name, sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("register: %v", job)
	}
	return c, admin, id
}
