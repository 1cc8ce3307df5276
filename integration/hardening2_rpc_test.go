package integration

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTreeHiddenReadsAsMissing: to a user who may not read it, an object of
// the access tree that exists and one that does not get the same reply on
// every tree operation, so that probing tells nothing; superusers are still
// told that one does not exist.
func TestTreeHiddenReadsAsMissing(t *testing.T) {
	c, admin, _ := withCluster(t, "127.0.0.91", "c1")
	c.createUser(t, "nobody", "pw-nobody-12345")
	c.createUser(t, "xonly", "pw-xonly-12345")
	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/c1","acl":"user:xonly:--x"}`))
	users := map[string]*session{
		"nobody": c.session(t, "nobody", "pw-nobody-12345"),
		"xonly":  c.session(t, "xonly", "pw-xonly-12345"), // x without r serves nothing, so tells nothing
	}
	tests := []struct {
		name, body, status, need string
	}{
		{name: "getAcl", body: `{"operation":"getAcl","path":"%s"}`, status: "AccessDenied", need: "Read"},
		{name: "getTree", body: `{"operation":"getTree","path":"%s"}`, status: "AccessDenied", need: "Read"},
		{name: "addAcl", body: `{"operation":"addAcl","path":"%s","acl":"user:nobody:rwx"}`, status: "AccessDenied", need: "Owner"},
		{name: "removeAcl", body: `{"operation":"removeAcl","path":"%s","acl":"user:xonly"}`, status: "AccessDenied", need: "Owner"},
		{name: "checkAccess x", body: `{"operation":"checkAccess","path":"%s","privileges":"--x"}`, status: "InvalidRequest", need: "Execute"},
		{name: "checkAccess rw", body: `{"operation":"checkAccess","path":"%s","privileges":"rw-"}`, status: "InvalidRequest", need: "Read"},
	}
	for user, s := range users {
		for _, tt := range tests {
			t.Run(user+"/"+tt.name, func(t *testing.T) {
				existing, missing := s.call(t, "tree", fmt.Sprintf(tt.body, "/c1")), s.call(t, "tree", fmt.Sprintf(tt.body, "/zzz"))
				want := fmt.Sprintf("%s access to object '/zzz' for user %s is denied.", tt.need, user)
				if missing.Status() != tt.status || missing.Reply["error_string"] != want {
					t.Fatalf("missing object: %s, want %s %q", missing.Raw, tt.status, want)
				}
				same := strings.ReplaceAll(fmt.Sprint(existing.Reply["error_string"]), "/c1", "/zzz")
				if existing.Status() != missing.Status() || same != want {
					t.Fatalf("a hidden and a missing object differ:\n%s\n%s", existing.Raw, missing.Raw)
				}
			})
		}
	}
	for _, body := range []string{
		`{"operation":"getAcl","path":"/zzz"}`,
		`{"operation":"getTree","path":"/zzz"}`,
		`{"operation":"addAcl","path":"/zzz","acl":"user:nobody:r--"}`,
		`{"operation":"checkAccess","path":"/zzz","privileges":"r--"}`,
	} {
		if r := admin.call(t, "tree", body); r.Status() != "ObjectNotFound" {
			t.Errorf("admin %s: %s, want ObjectNotFound", body, r.Raw)
		}
	}
	// Whoever reads the object is answered as before.
	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/c1","acl":"user:nobody:r--"}`))
	if acl := mustOk(t, users["nobody"].call(t, "tree", `{"operation":"getAcl","path":"/c1"}`)); acl.Reply["object_name"] != "c1" {
		t.Fatalf("reader's getAcl: %s", acl.Raw)
	}
	mustOk(t, users["nobody"].call(t, "tree", `{"operation":"checkAccess","path":"/c1","privileges":"r--"}`))
}

// TestExecSecretsHidden: the values of an exec job's environment and its
// stdin are "***" in every reply that carries the job, to its reader, to its
// owner and to the admin alike, and never in the audit trail or the
// controller's log; a clone, copied on the server, still runs with them.
func TestExecSecretsHidden(t *testing.T) {
	const envSecret, stdinSecret = "EnvSecret999", "StdinSecret777\n"
	stdin := base64.StdEncoding.EncodeToString([]byte(stdinSecret))
	c, admin, id := withCluster(t, "127.0.0.92", "sec")
	c.createUser(t, "peeker", "pw-peeker-12345")
	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/sec","acl":"user:peeker:r--"}`))
	peeker := c.session(t, "peeker", "pw-peeker-12345")

	// The node prints only hashes of what it was given, so its output proves
	// the secrets were used without holding them.
	data := fmt.Sprintf(`{"command":"echo \"$SECRET_VAR\" | sha256sum; sha256sum","env":[{"key":"SECRET_VAR","value":%q}],"stdin_base64":%q}`,
		envSecret, stdin)
	hashOf := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) + "  -\n" }
	wantOutput := hashOf(envSecret+"\n") + hashOf(stdinSecret)
	create := func(t *testing.T, extra string) (int64, curlResult) {
		t.Helper()
		r := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
			"job":{"title":"secret"%s,"job_spec":{"command":"exec","job_data":%s}}}`, id, extra, data)))
		return int64(r.Reply["job"].(map[string]any)["job_id"].(float64)), r
	}
	// hidden checks that a reply carries the job's secrets only as "***".
	hidden := func(t *testing.T, what string, r curlResult, job map[string]any) {
		t.Helper()
		for _, secret := range []string{envSecret, strings.TrimSpace(stdinSecret), stdin} {
			if strings.Contains(r.Raw, secret) {
				t.Fatalf("%s shows the secret %q: %s", what, secret, r.Raw)
			}
		}
		jobData := job["job_spec"].(map[string]any)["job_data"].(map[string]any)
		env := jobData["env"].([]any)[0].(map[string]any)
		if env["key"] != "SECRET_VAR" || env["value"] != "***" || jobData["stdin_base64"] != "***" ||
			!strings.Contains(fmt.Sprint(jobData["command"]), "sha256sum") {
			t.Fatalf("%s job_data: %v", what, jobData)
		}
	}
	ran := func(t *testing.T, job map[string]any) {
		t.Helper()
		mustStatus(t, job, "FINISHED")
		node := job["result"].(map[string]any)["nodes"].([]any)[0].(map[string]any)
		if node["stdout"] != wantOutput {
			t.Fatalf("node output %q, want %q: the job did not run with its secrets", node["stdout"], wantOutput)
		}
	}

	execID, created := create(t, "")
	hidden(t, "createJobInstance", created, created.Reply["job"].(map[string]any))
	ran(t, admin.waitJob(t, execID, 60*time.Second))
	for name, s := range map[string]*session{"admin": admin, "peeker": peeker} {
		t.Run(name, func(t *testing.T) {
			get := mustOk(t, s.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, execID)))
			hidden(t, "getJobInstance", get, get.Reply["job"].(map[string]any))
			log := mustOk(t, s.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"limit":-1}`, execID)))
			hidden(t, "getJobLog", log, log.Reply["job"].(map[string]any))
			list := mustOk(t, s.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstances","cluster_id":%d,"with_result":true}`, id)))
			jobs := list.Reply["jobs"].([]any)
			if len(jobs) == 0 {
				t.Fatalf("getJobInstances: %s", list.Raw)
			}
			for _, j := range jobs {
				if j := j.(map[string]any); j["title"] == "secret" {
					hidden(t, "getJobInstances", list, j)
				}
			}
		})
	}

	clone := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"cloneJobInstance","job_id":%d}`, execID)))
	hidden(t, "cloneJobInstance", clone, clone.Reply["job"].(map[string]any))
	ran(t, admin.waitJob(t, int64(clone.Reply["job"].(map[string]any)["job_id"].(float64)), 60*time.Second))

	// A job waiting for its time: the scheduled listing and the kill reply.
	laterID, later := create(t, `,"scheduled":"2099-01-01T00:00:00.000Z"`)
	hidden(t, "createJobInstance scheduled", later, later.Reply["job"].(map[string]any))
	scheduled := mustOk(t, peeker.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstances","cluster_id":%d,"show_scheduled":true}`, id)))
	if jobs := scheduled.Reply["jobs"].([]any); len(jobs) != 1 {
		t.Fatalf("scheduled listing: %s", scheduled.Raw)
	} else {
		hidden(t, "getJobInstances show_scheduled", scheduled, jobs[0].(map[string]any))
	}
	killed := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"killJobInstance","job_id":%d}`, laterID)))
	hidden(t, "killJobInstance", killed, killed.Reply["job"].(map[string]any))

	audit := mustOk(t, admin.call(t, "audit", `{"operation":"getAuditEntries","operation_name":"createJobInstance"}`))
	if !strings.Contains(audit.Raw, "SECRET_VAR") {
		t.Fatalf("the audit trail lost the variable's name: %s", audit.Raw)
	}
	for _, secret := range []string{envSecret, strings.TrimSpace(stdinSecret), stdin} {
		if strings.Contains(audit.Raw, secret) || strings.Contains(c.Log(), secret) {
			t.Fatalf("the secret %q is in the audit trail or the controller's log", secret)
		}
	}
}
