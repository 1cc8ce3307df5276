package integration

import (
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestChangesReachEveryController: each controller serves sessions, users,
// the access tree and the inventory from memory; a change made through one
// controller is seen by the very next request on another sharing the
// database, with no wait between them.
func TestChangesReachEveryController(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.31")
	shared := backend{name: "mariadb", dsn: sharedDSN(t)}
	a := startController(t, controllerOptions{backend: shared})
	b := startController(t, controllerOptions{backend: shared})
	a.createUser(t, "odo", "pw-odo-12345")
	adminA := a.session(t, "admin", adminPassword)
	adminB := &session{c: b, jar: adminA.jar}
	odoA := a.session(t, "odo", "pw-odo-12345")
	odoB := &session{c: b, jar: odoA.jar}
	listed := func(s *session) (total float64, first map[string]any) {
		t.Helper()
		r := mustOk(t, s.call(t, "clusters", `{"operation":"getAllClusterInfo","with_hosts":true}`))
		list, present := r.Reply["clusters"].([]any)
		if !present {
			t.Fatalf("getAllClusterInfo without a clusters list: %s", r.Raw) // clients iterate it, empty or not
		}
		if len(list) > 0 {
			first = list[0].(map[string]any)
		}
		return r.Reply["total"].(float64), first
	}
	// b holds both sessions, both users, the tree and the empty inventory.
	for _, s := range []*session{adminB, odoB} {
		if total, _ := listed(s); total != 0 {
			t.Fatalf("clusters before any registration: %v", total)
		}
	}

	t.Run("cluster registration", func(t *testing.T) {
		if id, job := adminA.registerCluster(t, "shared", sshd, sshd.Addrs, nil); id == 0 {
			t.Fatalf("register: %v", job)
		}
		total, first := listed(adminB)
		if total != 1 || first["cluster_name"] != "shared" || len(nodesOf(first)) != 1 {
			t.Fatalf("b lists %v clusters after registration through a: %v", total, first)
		}
		mustOk(t, adminB.call(t, "clusters", `{"operation":"getClusterInfo","cluster_name":"shared"}`))
	})

	t.Run("acl change", func(t *testing.T) {
		if total, _ := listed(odoB); total != 0 {
			t.Fatalf("odo reads a cluster before any grant: %v", total)
		}
		mustOk(t, adminA.call(t, "tree", `{"operation":"addAcl","path":"/shared","acl":"user:odo:r--"}`))
		total, first := listed(odoB)
		if total != 1 || first["effective_privileges"] != "r--" {
			t.Fatalf("after a grant through a, odo on b lists %v: %v", total, first)
		}
		mustOk(t, adminA.call(t, "tree", `{"operation":"removeAcl","path":"/shared","acl":"user:odo"}`))
		if total, _ := listed(odoB); total != 0 {
			t.Fatalf("after the grant's removal through a, odo on b still lists %v", total)
		}
	})

	t.Run("logout", func(t *testing.T) {
		other := a.session(t, "odo", "pw-odo-12345")
		otherB := &session{c: b, jar: other.jar}
		mustOk(t, otherB.call(t, "users", `{"operation":"whoAmI"}`))
		mustOk(t, other.call(t, "auth", `{"operation":"logout"}`))
		if r := otherB.call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "AuthRequired" {
			t.Fatalf("a session logged out through a still works on b: %s", r.Raw)
		}
		mustOk(t, odoB.call(t, "users", `{"operation":"whoAmI"}`)) // odo's other session lives on
	})

	t.Run("password change", func(t *testing.T) {
		mustOk(t, odoB.call(t, "users", `{"operation":"whoAmI"}`))
		mustOk(t, adminA.call(t, "users", `{"operation":"changePassword","user":{"user_name":"odo"},"new_password":"pw-odo-67890"}`))
		if r := odoB.call(t, "users", `{"operation":"whoAmI"}`); r.Status() != "AuthRequired" {
			t.Fatalf("a session from before a password change through a still works on b: %s", r.Raw)
		}
		if r := b.login(t, "odo", "pw-odo-12345", jar(t)); r.Status() != "AccessDenied" {
			t.Fatalf("the old password still logs in on b: %s", r.Raw)
		}
		renewed := b.session(t, "odo", "pw-odo-67890")
		r := mustOk(t, renewed.call(t, "users", `{"operation":"whoAmI"}`))
		if name := r.Reply["user"].(map[string]any)["user_name"]; name != "odo" {
			t.Fatalf("whoAmI after the change: %s", r.Raw)
		}
	})
}
