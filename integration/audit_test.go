package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAuditTrail: logins, an ACL change, a job creation and refusals are
// recorded with who, what and how it ended; superusers read them with
// filters, others are refused; each change is logged once at info level;
// secrets in job_data stay out of the trail.
func TestAuditTrail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		c.createUser(t, "garak", "pw-garak-12345")
		admin := c.session(t, "admin", adminPassword)
		garak := c.session(t, "garak", "pw-garak-12345")
		if r := c.login(t, "garak", "wrong-password", jar(t)); r.Status() != "AccessDenied" {
			t.Fatalf("wrong password: %s", r.Raw)
		}
		mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/","acl":"user:garak:r--"}`))
		jobID := admin.createJob(t, 0, "success", map[string]any{"message": "hi", "password": "hunter2-secret"})
		if r := garak.call(t, "users", `{"operation":"createUser","new_password":"pw-x-12345","user":{"user_name":"nog"}}`); r.Status() != "AccessDenied" {
			t.Fatalf("garak created a user: %s", r.Raw)
		}
		mustOk(t, garak.call(t, "users", `{"operation":"whoAmI"}`)) // a read: not audited

		entries := func(filter string) (float64, []map[string]any) {
			t.Helper()
			r := mustOk(t, admin.call(t, "audit", `{"operation":"getAuditEntries"`+filter+`}`))
			var out []map[string]any
			for _, e := range r.Reply["entries"].([]any) {
				out = append(out, e.(map[string]any))
			}
			return r.Reply["total"].(float64), out
		}
		find := func(list []map[string]any, operation, outcome string) map[string]any {
			for _, e := range list {
				if e["operation"] == operation && e["outcome"] == outcome {
					return e
				}
			}
			return nil
		}
		_, all := entries("")
		tests := []struct {
			name, operation, outcome, user, object string
		}{
			{name: "login", operation: "authenticateWithPassword", outcome: "Ok", user: "garak"},
			{name: "failed login", operation: "authenticateWithPassword", outcome: "AccessDenied", user: "garak"},
			{name: "acl change", operation: "addAcl", outcome: "Ok", user: "admin", object: "/"},
			{name: "job creation", operation: "createJobInstance", outcome: "Ok", user: "admin"},
			{name: "refusal", operation: "createUser", outcome: "AccessDenied", user: "garak", object: "user:nog"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := find(all, tt.operation, tt.outcome)
				if e == nil || e["user_name"] != tt.user || (tt.object != "" && e["object"] != tt.object) ||
					e["remote_address"] == "" || e["controller"] == "" || e["created"] == "" {
					t.Fatalf("entry %s/%s: %v\nall: %v", tt.operation, tt.outcome, e, all)
				}
			})
		}
		job := find(all, "createJobInstance", "Ok")
		if job["job_id"] != float64(jobID) || !strings.HasPrefix(job["command"].(string), "success ") ||
			strings.Contains(job["command"].(string), "hunter2") || !strings.Contains(job["command"].(string), "***") {
			t.Fatalf("job entry: %v", job)
		}
		if find(all, "whoAmI", "Ok") != nil {
			t.Fatal("a read was audited")
		}
		if n, list := entries(`,"user_name":"garak"`); n < 3 || len(list) != int(n) {
			t.Fatalf("garak's entries: %v %v", n, list)
		}
		if n, list := entries(`,"operation_name":"addAcl"`); n != 1 || list[0]["object"] != "/" {
			t.Fatalf("addAcl entries: %v %v", n, list)
		}
		// The reference controller's name and its cluster_ids filter; the
		// job above has no cluster, so cluster 0 holds it.
		r := mustOk(t, admin.call(t, "audit", `{"operation":"getEntries","cluster_ids":[0],"ascending":true}`))
		if first := r.Reply["audit_entries"].([]any)[0].(map[string]any); first["operation"] != "createUser" {
			t.Fatalf("getEntries ascending starts with %v", first)
		}
		if n, list := entries(`,"limit":2,"offset":1`); len(list) != 2 || n < 5 {
			t.Fatalf("a page of 2: %v %v", n, list)
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if n, _ := entries(fmt.Sprintf(`,"from":%q`, future)); n != 0 {
			t.Fatalf("entries from the future: %v", n)
		}
		if r := garak.call(t, "audit", `{"operation":"getAuditEntries"}`); r.Status() != "AccessDenied" {
			t.Fatalf("a non-superuser read the audit trail: %s", r.Raw)
		}
		log := c.Log()
		for _, want := range []string{"msg=audit", "operation=addAcl", "operation=createUser outcome=AccessDenied"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log lacks %q", want)
			}
		}
		if strings.Contains(log, "hunter2") {
			t.Error("a job_data secret reached the log")
		}
	})
}
