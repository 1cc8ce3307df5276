package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestLookalikeNamesRefused: users, groups and clusters follow one name
// rule, so that no name passes for another: invisible and format characters
// are refused, and so is a new name that looks like an existing one, naming
// that one; names that only look like themselves pass.
func TestLookalikeNamesRefused(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.92")
	forEachBackend(t, func(t *testing.T, b backend) {
		c := startController(t, controllerOptions{backend: b})
		admin := c.session(t, "admin", adminPassword)
		t.Run("users", func(t *testing.T) {
			createUser := func(name string) curlResult {
				return admin.call(t, "users", fmt.Sprintf(`{"operation":"createUser","new_password":"pw-names-12345",
					"user":{"class_name":"CmonUser","user_name":%s}}`, jsonString(name)))
			}
			mustRefuse(t, "createUser", `existing user "admin"`, createUser, "\u0430dmin", "\uff41\uff44\uff4d\uff49\uff4e", "Admin", "adrnin")
			mustRefuse(t, "createUser", "not printable", createUser, "ad\u200bmin", "\u202eadmin")
			for _, name := range []string{"jürgen", "Jane Doe", "ops.bot-1_eu", "оператор"} {
				mustOk(t, createUser(name))
			}
		})
		t.Run("groups", func(t *testing.T) {
			createGroup := func(name string) curlResult {
				return admin.call(t, "users", fmt.Sprintf(`{"operation":"createGroup","group":{"group_name":%s}}`, jsonString(name)))
			}
			mustOk(t, createGroup("ops"))
			mustRefuse(t, "createGroup", `existing group "ops"`, createGroup, "\u043eps", "OPS", "\uff4f\uff50\uff53")
			mustRefuse(t, "createGroup", `existing group "admins"`, createGroup, "\u0430dmins")
			mustRefuse(t, "createGroup", "not printable", createGroup, "ops\u200b", "ops\u202e")
			// A group created along with a user follows the rule too.
			withGroup := func(name string) curlResult {
				return admin.call(t, "users", fmt.Sprintf(`{"operation":"createUser","create_group":true,"new_password":"pw-names-12345",
					"user":{"class_name":"CmonUser","user_name":"grouped","groups":[{"group_name":%s}]}}`, jsonString(name)))
			}
			mustRefuse(t, "createUser in group", `existing group "ops"`, withGroup, "Ops")
			mustOk(t, createGroup("dba_team-2.eu"))
			mustOk(t, withGroup("операторы"))
		})
		t.Run("clusters", func(t *testing.T) {
			if id, job := admin.registerCluster(t, "c1", sshd, sshd.Addrs, nil); id == 0 {
				t.Fatalf("register c1: %v", job)
			}
			for _, name := range []string{"\u04411", "\uff431", "C1", "cl"} {
				id, job := admin.registerCluster(t, name, sshd, sshd.Addrs, nil)
				if id != 0 || !strings.Contains(fmt.Sprint(job["status_text"]), `existing cluster "c1"`) {
					t.Errorf("register %+q: cluster %d, job %v %v", name, id, job["status"], job["status_text"])
				}
			}
			register := func(name string) curlResult {
				return admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","job":{"job_spec":{"command":"register_cluster",
					"job_data":{"cluster_name":%s,"cluster_type":"galera","ssh_user":%q,"nodes":[{"hostname":%q}]}}}}`,
					jsonString(name), sshd.User, sshd.Addrs[0]))
			}
			mustRefuse(t, "register_cluster", "not printable", register, "c1\u200b", "c1\u202e")
			if id, job := admin.registerCluster(t, "c2", sshd, sshd.Addrs, nil); id == 0 {
				t.Fatalf("register c2: %v", job)
			}
			list := mustOk(t, admin.call(t, "clusters", `{"operation":"getAllClusterInfo"}`))
			if n := len(list.Reply["clusters"].([]any)); n != 2 {
				t.Fatalf("%d clusters after the look-alikes, want c1 and c2: %s", n, list.Raw)
			}
		})
	})
}

// mustRefuse checks that call refuses each name as InvalidRequest with an
// error naming why.
func mustRefuse(t *testing.T, what, why string, call func(name string) curlResult, names ...string) {
	t.Helper()
	for _, name := range names {
		r := call(name)
		if r.Status() != "InvalidRequest" || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), why) {
			t.Errorf("%s %+q: want InvalidRequest mentioning %s: %s", what, name, why, r.Raw)
		}
	}
}

// jsonString is name as a JSON string.
func jsonString(name string) string {
	b, _ := json.Marshal(name)
	return string(b)
}
