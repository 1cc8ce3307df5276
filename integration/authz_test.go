package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// The callers of the access matrix: a superuser, the cluster's owner, users
// with r--, r-x and rw- on it through its ACL, a user with nothing, and a
// client that never logged in.
const (
	super  = "admin"
	owner  = "owner"
	reader = "reader"
	runner = "runner"
	writer = "writer"
	nobody = "nobody"
	anon   = "(anonymous)"
)

var (
	everyone      = []string{super, owner, reader, runner, writer, nobody, anon}
	authenticated = []string{super, owner, reader, runner, writer, nobody}
	readers       = []string{super, owner, reader, runner, writer}
	executors     = []string{super, owner, runner}
	ownerOrSuper  = []string{super, owner}
	superOnly     = []string{super}
)

func password(role string) string {
	if role == super {
		return adminPassword
	}
	return "pw-" + role + "-12345"
}

// matrixRow is one operation: how each caller sends it and who may.
type matrixRow struct {
	name   string
	module string
	// body is the request for a caller; it may first prepare what the
	// request acts on (as admin), so that every allowed cell can succeed.
	body  func(t *testing.T, role string) string
	allow []string
	// denied is the status of an authenticated caller who is refused
	// (default AccessDenied); a client that never logged in gets AuthRequired.
	denied string
	// fresh sends the request with no session: the login steps.
	fresh bool
	// hidden: a caller who may not read the job is told it does not exist.
	hidden bool
	// send, when set, makes the request itself (several steps).
	send func(t *testing.T, role string) curlResult
}

// accessFixture is the controller and cluster the matrix runs against.
type accessFixture struct {
	c        *controller
	sshd     *services.SSHD
	sessions map[string]*session
	cluster  int64
	pubKey   string
	privKey  string
	n        int // makes fixture names unique
}

func (f *accessFixture) admin() *session { return f.sessions[super] }

func (f *accessFixture) unique(prefix string) string {
	f.n++
	return fmt.Sprintf("%s%d", prefix, f.n)
}

// job makes an exec job on the matrix cluster as admin: scheduled far
// ahead, so that it waits to be killed, deleted, paused or cloned.
func (f *accessFixture) job(t *testing.T) int64 {
	return f.jobOf(t, "exec", `{"command":"true"}`)
}

// jobOf is job with another command.
func (f *accessFixture) jobOf(t *testing.T, command, jobData string) int64 {
	t.Helper()
	r := mustOk(t, f.admin().call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
		"job":{"scheduled":"2099-01-01T00:00:00.000Z","job_spec":{"command":%q,"job_data":%s}}}`, f.cluster, command, jobData)))
	return int64(r.Reply["job"].(map[string]any)["job_id"].(float64))
}

func newAccessFixture(t *testing.T) *accessFixture {
	sshd := services.NewSSHD(t, "127.0.0.18")
	// The controller's own key reaches the nodes, so that a non-superuser can
	// register a cluster without naming a key file.
	c := startController(t, controllerOptions{args: []string{"--ssh-key-file", sshd.ClientKey}})
	f := &accessFixture{c: c, sshd: sshd, sessions: map[string]*session{}}
	f.sessions[super] = c.session(t, super, adminPassword)
	mustOk(t, f.admin().call(t, "users", `{"operation":"createGroup","group":{"group_name":"spare"}}`))
	c.createUser(t, owner, password(owner), "owners")
	for _, role := range []string{reader, runner, writer, nobody, "bystander"} {
		c.createUser(t, role, password(role))
	}
	for _, role := range []string{owner, reader, runner, writer, nobody} {
		f.sessions[role] = c.session(t, role, password(role))
	}

	dir := t.TempDir()
	f.privKey = filepath.Join(dir, "key.pem")
	pub := filepath.Join(dir, "pub.pem")
	run(t, "openssl", "genrsa", "-out", f.privKey, "2048")
	run(t, "openssl", "rsa", "-in", f.privKey, "-pubout", "-out", pub)
	pem, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	f.pubKey = string(pem)
	for _, role := range authenticated {
		mustOk(t, f.admin().call(t, "users", fmt.Sprintf(`{"operation":"addKey","user":{"user_name":%q},
			"public_key":{"name":"login","key":%q}}`, role, f.pubKey)))
	}

	// w on "/" lets the owner register its cluster, which it then owns.
	mustOk(t, f.admin().call(t, "tree", `{"operation":"addAcl","path":"/","acl":"user:owner:-w-"}`))
	job := f.sessions[owner].waitJob(t, f.sessions[owner].createJob(t, 0, "register_cluster", map[string]any{
		"cluster_name": "mx", "cluster_type": "galera", "ssh_user": sshd.User, "ssh_port": sshd.Port,
		"nodes": []map[string]any{{"hostname": "127.0.0.18", "port": 3306}}}), 60*time.Second)
	mustStatus(t, job, "FINISHED")
	acl := mustOk(t, f.sessions[owner].call(t, "tree", `{"operation":"getAcl","path":"/mx"}`))
	if acl.Reply["owner_user_name"] != owner || acl.Reply["owner_group_name"] != "owners" ||
		acl.Reply["acl"] != "user::rwx,group::rwx,other::---" || acl.Reply["object_name"] != "mx" || acl.Reply["object_path"] != "/" {
		t.Fatalf("a new cluster's ACL: %s", acl.Raw)
	}
	// The owner shares its cluster.
	mustOk(t, f.sessions[owner].call(t, "tree", `{"operation":"addAcl","path":"/mx","acl":"user:reader:r--,user:runner:r-x,user:writer:rw-"}`))
	info := mustOk(t, f.sessions[owner].call(t, "clusters", `{"operation":"getClusterInfo","cluster_name":"mx"}`))
	f.cluster = int64(info.Reply["cluster"].(map[string]any)["cluster_id"].(float64))
	return f
}

func (f *accessFixture) rows() []matrixRow {
	static := func(body string) func(*testing.T, string) string {
		return func(*testing.T, string) string { return body }
	}
	// self names the caller (nobody for the anonymous client).
	self := func(role string) string {
		if role == anon {
			return nobody
		}
		return role
	}
	onJob := func(op string) func(*testing.T, string) string {
		return func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":%q,"job_id":%d}`, op, f.job(t))
		}
	}
	// keyLogin asks for a challenge in a new cookie jar and answers it with
	// op, signed by the key every user has.
	keyLogin := func(op string) func(*testing.T, string) curlResult {
		return func(t *testing.T, role string) curlResult {
			keyJar := jar(t)
			ch := mustOk(t, f.c.curl(t, "auth", fmt.Sprintf(`{"operation":"authenticate","user_name":%q}`, self(role)), "-c", keyJar))
			return f.c.curl(t, "auth", fmt.Sprintf(`{"operation":%q,"signature":%q}`, op, sign(t, f.privKey, ch.Reply["challenge"].(string))), "-b", keyJar)
		}
	}
	victim := func(t *testing.T) string {
		name := f.unique("victim")
		f.c.createUser(t, name, "pw-victim-12345", "spare")
		return name
	}
	return []matrixRow{
		{name: "controller ping", module: "controller", body: static(`{"operation":"ping"}`), allow: everyone},

		{name: "authenticateWithPassword", module: "auth", fresh: true, allow: everyone, body: func(_ *testing.T, role string) string {
			return fmt.Sprintf(`{"operation":"authenticateWithPassword","user_name":%q,"password":%q}`, self(role), password(self(role)))
		}},
		{name: "authenticate", module: "auth", fresh: true, allow: everyone, body: func(_ *testing.T, role string) string {
			return fmt.Sprintf(`{"operation":"authenticate","user_name":%q}`, self(role))
		}},
		{name: "authenticateResponse", module: "auth", allow: everyone, send: keyLogin("authenticateResponse")},
		{name: "response", module: "auth", allow: everyone, send: keyLogin("response")},
		{name: "logout", module: "auth", fresh: true, allow: everyone, body: static(`{"operation":"logout"}`)},

		{name: "whoAmI", module: "users", body: static(`{"operation":"whoAmI"}`), allow: authenticated},
		{name: "getUsers", module: "users", body: static(`{"operation":"getUsers"}`), allow: authenticated},
		{name: "getGroups", module: "users", body: static(`{"operation":"getGroups"}`), allow: authenticated},
		{name: "setUser itself", module: "users", allow: authenticated, body: func(_ *testing.T, role string) string {
			return fmt.Sprintf(`{"operation":"setUser","user":{"user_name":%q,"first_name":"Renamed"}}`, self(role))
		}},
		{name: "setUser another", module: "users", allow: superOnly, body: static(`{"operation":"setUser","user":{"user_name":"bystander","last_name":"Else"}}`)},
		{name: "changePassword itself", module: "users", allow: authenticated, body: func(_ *testing.T, role string) string {
			return fmt.Sprintf(`{"operation":"changePassword","old_password":%q,"new_password":%q}`, password(self(role)), password(self(role)))
		}},
		{name: "getKeys itself", module: "users", body: static(`{"operation":"getKeys"}`), allow: authenticated},
		{name: "getKeys of another", module: "users", body: static(`{"operation":"getKeys","user":{"user_name":"bystander"}}`), allow: superOnly},
		{name: "deleteKey itself", module: "users", body: static(`{"operation":"deleteKey","public_key":{"name":"login"}}`), allow: authenticated},
		{name: "addKey itself", module: "users", allow: authenticated, body: static(fmt.Sprintf(
			`{"operation":"addKey","public_key":{"name":"login","key":%q}}`, f.pubKey))},
		{name: "createUser", module: "users", allow: superOnly, body: func(*testing.T, string) string {
			return fmt.Sprintf(`{"operation":"createUser","new_password":"pw-new-12345","user":{"user_name":%q}}`, f.unique("new"))
		}},
		{name: "deleteUser", module: "users", allow: superOnly, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"deleteUser","user":{"user_name":%q}}`, victim(t))
		}},
		{name: "disable", module: "users", allow: superOnly, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"disable","user":{"user_name":%q}}`, victim(t))
		}},
		{name: "enable", module: "users", allow: superOnly, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"enable","user":{"user_name":%q}}`, victim(t))
		}},
		{name: "createGroup", module: "users", allow: superOnly, body: func(*testing.T, string) string {
			return fmt.Sprintf(`{"operation":"createGroup","group":{"group_name":%q}}`, f.unique("group"))
		}},
		{name: "deleteGroup", module: "users", allow: superOnly, body: func(t *testing.T, _ string) string {
			name := f.unique("group")
			mustOk(t, f.admin().call(t, "users", fmt.Sprintf(`{"operation":"createGroup","group":{"group_name":%q}}`, name)))
			return fmt.Sprintf(`{"operation":"deleteGroup","group":{"group_name":%q}}`, name)
		}},
		{name: "addToGroup", module: "users", allow: superOnly, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"addToGroup","user":{"user_name":%q},"group_name":"owners"}`, victim(t))
		}},
		{name: "removeFromGroup", module: "users", allow: superOnly, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"removeFromGroup","user":{"user_name":%q},"group_name":"spare"}`, victim(t))
		}},

		{name: "clusters ping", module: "clusters", body: static(`{"operation":"ping"}`), allow: everyone},
		{name: "getAllClusterInfo", module: "clusters", body: static(`{"operation":"getAllClusterInfo"}`), allow: authenticated},
		{name: "getClusterInfo", module: "clusters", body: static(`{"operation":"getClusterInfo","cluster_name":"mx"}`), allow: readers},

		{name: "createJobInstance exec (x)", module: "jobs", allow: executors, body: static(fmt.Sprintf(
			`{"operation":"createJobInstance","cluster_id":%d,"job":{"job_spec":{"command":"exec","job_data":{"command":"true"}}}}`, f.cluster))},
		{name: "createJobInstance add_node (w and x)", module: "jobs", allow: ownerOrSuper, body: static(fmt.Sprintf(
			`{"operation":"createJobInstance","cluster_id":%d,"job":{"job_spec":{"command":"add_node","job_data":{"node":{"hostname":"127.0.0.99"}}}}}`, f.cluster))},
		{name: "createJobInstance register_cluster (w on /)", module: "jobs", allow: ownerOrSuper, body: func(*testing.T, string) string {
			return fmt.Sprintf(`{"operation":"createJobInstance","job":{"job_spec":{"command":"register_cluster","job_data":{
				"cluster_name":%q,"cluster_type":"galera","ssh_user":"nobody","nodes":[{"hostname":"127.0.0.99","port":1}]}}}}`, f.unique("unreachable"))
		}},
		{name: "createJobInstance remove_cluster (w on /)", module: "jobs", allow: ownerOrSuper, body: func(t *testing.T, role string) string {
			target := f.cluster
			if slices.Contains(ownerOrSuper, role) { // they would remove it: give them one of their own
				id, job := f.admin().registerCluster(t, f.unique("doomed"), f.sshd, []string{"127.0.0.18"}, nil)
				if id == 0 {
					t.Fatalf("fixture cluster: %v", job)
				}
				target = id
			}
			return fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,"job":{"job_spec":{"command":"remove_cluster"}}}`, target)
		}},
		{name: "createJobInstance success (open)", module: "jobs", allow: authenticated, body: static(
			`{"operation":"createJobInstance","job":{"job_spec":{"command":"success"}}}`)},
		{name: "getJobInstances", module: "jobs", body: static(`{"operation":"getJobInstances"}`), allow: authenticated},
		{name: "getJobInstances of the cluster", module: "jobs", body: static(`{"operation":"getJobInstances","cluster_name":"mx"}`), allow: readers},
		{name: "getJobInstance", module: "jobs", body: onJob("getJobInstance"), allow: readers, hidden: true},
		{name: "getJobLog", module: "jobs", body: onJob("getJobLog"), allow: readers, hidden: true},
		{name: "killJobInstance", module: "jobs", body: onJob("killJobInstance"), allow: executors, hidden: true},
		{name: "deleteJobInstance", module: "jobs", body: onJob("deleteJobInstance"), allow: executors, hidden: true},
		{name: "cloneJobInstance", module: "jobs", body: onJob("cloneJobInstance"), allow: executors, hidden: true},
		{name: "updateJobInstance", module: "jobs", allow: executors, hidden: true, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"updateJobInstance","job":{"job_id":%d,"status":"PAUSED"}}`, f.job(t))
		}},
		// Making a job run again asks its command's own declaration, as at
		// create: add_node needs w besides x. (The clones that are let in
		// fail at once: nothing listens on 127.0.0.99.)
		{name: "cloneJobInstance add_node", module: "jobs", allow: ownerOrSuper, hidden: true, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"cloneJobInstance","job_id":%d}`, f.jobOf(t, "add_node", `{"node":{"hostname":"127.0.0.99"}}`))
		}},
		{name: "updateJobInstance add_node", module: "jobs", allow: ownerOrSuper, hidden: true, body: func(t *testing.T, _ string) string {
			return fmt.Sprintf(`{"operation":"updateJobInstance","job":{"job_id":%d,"status":"PAUSED"}}`,
				f.jobOf(t, "add_node", `{"node":{"hostname":"127.0.0.99"}}`))
		}},

		{name: "getTree /", module: "tree", body: static(`{"operation":"getTree"}`), allow: authenticated},
		{name: "getTree /mx", module: "tree", body: static(`{"operation":"getTree","path":"/mx"}`), allow: readers},
		{name: "getAcl /", module: "tree", body: static(`{"operation":"getAcl","path":"/"}`), allow: superOnly},
		{name: "getAcl /mx", module: "tree", body: static(`{"operation":"getAcl","path":"/mx"}`), allow: readers},
		{name: "addAcl /mx", module: "tree", body: static(`{"operation":"addAcl","path":"/mx","acl":"group:spare:r--"}`), allow: ownerOrSuper},
		{name: "removeAcl /mx", module: "tree", body: static(`{"operation":"removeAcl","path":"/mx","acl":"group:spare"}`), allow: ownerOrSuper},
		{name: "chown /mx", module: "tree", body: static(`{"operation":"chown","path":"/mx","owner_user_name":"owner"}`), allow: superOnly},
		{name: "checkAccess r", module: "tree", body: static(`{"operation":"checkAccess","path":"/mx","privileges":"r"}`),
			allow: readers, denied: "InvalidRequest"},
		{name: "checkAccess x", module: "tree", body: static(`{"operation":"checkAccess","path":"/mx","privileges":"x"}`),
			allow: executors, denied: "InvalidRequest"},
	}
}

// TestAccessMatrix sends every operation of every module as each kind of
// caller to the real binary and checks who is let in.
func TestAccessMatrix(t *testing.T) {
	f := newAccessFixture(t)
	modules := map[string]bool{}
	for _, row := range f.rows() {
		modules[row.module] = true
		for _, role := range everyone {
			t.Run(row.module+"/"+row.name+"/"+role, func(t *testing.T) {
				var r curlResult
				switch {
				case row.send != nil:
					r = row.send(t, role)
				case row.fresh || role == anon:
					body := row.body(t, role)
					r = f.c.curl(t, row.module, body)
				default:
					r = f.sessions[role].call(t, row.module, row.body(t, role))
				}
				want := "Ok"
				switch {
				case slices.Contains(row.allow, role):
				case role == anon:
					want = "AuthRequired"
				case row.hidden && !slices.Contains(readers, role):
					want = "ObjectNotFound"
				case row.denied != "":
					want = row.denied
				default:
					want = "AccessDenied"
				}
				if r.Status() != want {
					t.Fatalf("%s as %s: %s, want %s: %s", row.name, role, r.Status(), want, r.Raw)
				}
				if want == "AccessDenied" && r.Reply["error_string"] == "" {
					t.Errorf("a refusal without a reason: %s", r.Raw)
				}
			})
		}
	}
	if len(modules) != 6 {
		t.Errorf("the matrix covers %d modules, want all 6", len(modules))
	}

	// What each caller sees: the cluster and its jobs for those with r, with
	// its privileges; nothing for the others.
	wantPrivileges := map[string]string{super: "rwx", owner: "rwx", reader: "r--", runner: "r-x", writer: "rw-"}
	for _, role := range authenticated {
		s := f.sessions[role]
		clusters := mustOk(t, s.call(t, "clusters", `{"operation":"getAllClusterInfo"}`))
		tree := mustOk(t, s.call(t, "tree", `{"operation":"getTree"}`))
		jobs := mustOk(t, s.call(t, "jobs", `{"operation":"getJobInstances","limit":1}`))
		want, sees := wantPrivileges[role]
		var got []string
		if list, ok := clusters.Reply["clusters"].([]any); ok {
			for _, c := range list {
				if c := c.(map[string]any); c["cluster_name"] == "mx" {
					got = append(got, c["effective_privileges"].(string))
				}
			}
		}
		var inTree []string
		for _, item := range tree.Reply["cdt"].(map[string]any)["sub_items"].([]any) {
			if item := item.(map[string]any); item["item_name"] == "mx" {
				inTree = append(inTree, item["effective_privileges"].(string))
			}
		}
		who := mustOk(t, s.call(t, "users", `{"operation":"whoAmI","with_extended_privileges":true}`))
		ext := who.Reply["user_extended_privileges"].(map[string]any)
		if ext["can_create_clusters"] != slices.Contains(ownerOrSuper, role) || ext["can_execute_jobs"] != slices.Contains(executors, role) {
			t.Errorf("%s's extended privileges: %v", role, ext)
		}
		switch {
		case sees && (len(got) != 1 || got[0] != want || len(inTree) != 1 || inTree[0] != want):
			t.Errorf("%s sees mx with %v in getAllClusterInfo and %v in getTree, want %s", role, got, inTree, want)
		case !sees && (len(got) != 0 || len(inTree) != 0 || jobs.Reply["total"] != float64(0)):
			t.Errorf("%s, with no access, sees mx: %s %s %s", role, clusters.Raw, tree.Raw, jobs.Raw)
		case sees && jobs.Reply["total"] == float64(0):
			t.Errorf("%s sees none of the cluster's jobs: %s", role, jobs.Raw)
		}
	}
}

// TestReaderUserSeedScenario replays the protocol document's read-only user
// with curl and a cookie jar, on a controller that shares its MariaDB with a second
// one, through which the ACL changes: each change applies to the next request.
func TestReaderUserSeedScenario(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.19")
	dsn := sharedDSN(t)
	first := startController(t, controllerOptions{backend: backend{name: "mariadb", dsn: dsn}})
	second := startController(t, controllerOptions{backend: backend{name: "mariadb", dsn: dsn}})
	admin := first.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "galera21", sshd, sshd.Addrs, map[string]any{
		"service_name": "mariadb", "service_command": "true"})
	if id == 0 {
		t.Fatalf("registration failed: %v", job)
	}
	first.createUser(t, "readeruser", "s3cr3tP455")
	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/galera21","acl":"user:readeruser:r--"}`))

	cookies := jar(t)
	login := mustOk(t, second.login(t, "readeruser", "s3cr3tP455", cookies))
	readerID := login.Reply["user"].(map[string]any)["user_id"]
	all := mustOk(t, second.curl(t, "clusters", `{"operation":"getallclusterinfo"}`, "-b", cookies))
	clusters, _ := all.Reply["clusters"].([]any)
	if all.Reply["total"] != float64(1) || len(clusters) != 1 || all.Reply["request_user_id"] != readerID ||
		clusters[0].(map[string]any)["effective_privileges"] != "r--" ||
		fmt.Sprint(all.Reply["debug_messages"]) != "[RPC V2 authenticated user is 'readeruser'.]" {
		t.Fatalf("the reader's getallclusterinfo: %s", all.Raw)
	}
	inline := mustOk(t, second.curl(t, "clusters", `{"operation": "getAllClusterInfo",
		"authenticate": {"password": "s3cr3tP455","username": "readeruser"}}`))
	if inline.Reply["total"] != float64(1) {
		t.Fatalf("inline authenticate: %s", inline.Raw)
	}

	stop := fmt.Sprintf(`{"cluster_id": %d, "job": {"class_name": "CmonJobInstance",
    "job_spec":
    {"command": "stop",
    "job_dat":{"clusterid": %d,
    "node":{"hostname": "127.0.0.19"}}}},
    "operation": "createJobInstance"}`, id, id)
	// The contract's wording, with the name of the cluster the reader may read.
	denied := fmt.Sprintf("Execute access to cluster %d ('galera21') for user readeruser is denied.", id)
	r := second.curl(t, "jobs", stop, "-b", cookies)
	if r.Status() != "AccessDenied" || r.Reply["error_string"] != denied || r.Reply["request_user_id"] != readerID {
		t.Fatalf("the reader's stop: %s", r.Raw)
	}

	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/galera21","acl":"user:readeruser:r-x"}`))
	r = mustOk(t, second.curl(t, "jobs", stop, "-b", cookies))
	reader := &session{c: second, jar: cookies}
	mustStatus(t, reader.waitJob(t, int64(r.Reply["job"].(map[string]any)["job_id"].(float64)), 30*time.Second), "FINISHED")

	removed := mustOk(t, admin.call(t, "tree", `{"operation":"removeAcl","path":"/galera21","acl":"user:readeruser:--x"}`))
	if removed.Reply["acl"] != "user::rwx,user:readeruser:r--,group::rwx,other::---" {
		t.Fatalf("removeAcl reply: %s", removed.Raw)
	}
	if r := second.curl(t, "jobs", stop, "-b", cookies); r.Status() != "AccessDenied" || r.Reply["error_string"] != denied {
		t.Fatalf("the reader's stop after removeAcl: %s", r.Raw)
	}
	mustOk(t, admin.call(t, "tree", `{"operation":"removeAcl","path":"/galera21","acl":"user:readeruser"}`))
	if r := second.curl(t, "clusters", `{"operation":"getClusterInfo","cluster_name":"galera21"}`, "-b", cookies); r.Status() != "AccessDenied" ||
		r.Reply["error_string"] != "Read access to cluster 'galera21' for user readeruser is denied." { // named as asked: no id revealed
		t.Fatalf("getClusterInfo without r: %s", r.Raw)
	}
}

// TestTreeBadInput: malformed ACLs, unknown users and groups, and paths that
// do not exist get clear errors and change nothing.
func TestTreeBadInput(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	before := mustOk(t, admin.call(t, "tree", `{"operation":"getAcl","path":"/"}`))
	tests := []struct {
		name, body, wantStatus, wantError string
	}{
		{name: "malformed acl", body: `{"operation":"addAcl","path":"/","acl":"user:bob"}`, wantStatus: "InvalidRequest",
			wantError: `Invalid ACL: ACL entry "user:bob" has no privileges, such as r-x.`},
		{name: "bad privileges", body: `{"operation":"addAcl","path":"/","acl":"user:admin:rwz"}`, wantStatus: "InvalidRequest",
			wantError: `Invalid ACL: ACL entry "user:admin:rwz": privileges "rwz" must look like rwx, r-x or ---.`},
		{name: "unknown user", body: `{"operation":"addAcl","path":"/","acl":"other::r--,user:ghost:r--"}`, wantStatus: "InvalidRequest",
			wantError: "The user 'ghost' does not exist."},
		{name: "unknown group", body: `{"operation":"addAcl","path":"/","acl":"group:ghosts:r--"}`, wantStatus: "InvalidRequest",
			wantError: "The group 'ghosts' does not exist."},
		{name: "missing acl", body: `{"operation":"addAcl","path":"/"}`, wantStatus: "InvalidRequest",
			wantError: `Field 'acl' is required, such as "user:bob:r-x".`},
		{name: "acl of wrong type", body: `{"operation":"addAcl","path":"/","acl":7}`, wantStatus: "InvalidRequest"},
		{name: "removing a base entry", body: `{"operation":"removeAcl","path":"/","acl":"other:"}`, wantStatus: "InvalidRequest",
			wantError: `Invalid ACL: ACL entry "other::": the entries of the owner, the owning group and other stay; name the privileges to take away, such as other::-w-.`},
		{name: "no such path", body: `{"operation":"addAcl","path":"/nope","acl":"other::r--"}`, wantStatus: "ObjectNotFound",
			wantError: "Object '/nope' was not found."},
		{name: "getAcl of no such path", body: `{"operation":"getAcl","path":"/nope"}`, wantStatus: "ObjectNotFound"},
		{name: "chown to an unknown user", body: `{"operation":"chown","path":"/","owner_user_name":"ghost"}`, wantStatus: "InvalidRequest",
			wantError: "The user 'ghost' does not exist."},
		{name: "chown without owner", body: `{"operation":"chown","path":"/"}`, wantStatus: "InvalidRequest"},
		{name: "checkAccess with bad privileges", body: `{"operation":"checkAccess","path":"/","privileges":"q"}`, wantStatus: "InvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := admin.call(t, "tree", tt.body)
			if r.Status() != tt.wantStatus || (tt.wantError != "" && r.Reply["error_string"] != tt.wantError) {
				t.Fatalf("want %s %q: %s", tt.wantStatus, tt.wantError, r.Raw)
			}
		})
	}
	after := mustOk(t, admin.call(t, "tree", `{"operation":"getAcl","path":"/"}`))
	if before.Reply["acl"] != after.Reply["acl"] || after.Reply["owner_user_name"] != "admin" {
		t.Fatalf("bad input changed the root: %s -> %s", before.Raw, after.Raw)
	}
}
