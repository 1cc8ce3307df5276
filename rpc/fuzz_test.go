package rpc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/jobs/commands"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/sql"
)

// fuzzServer is a Server with every module over a fresh SQLite database, the
// caller fixed to the superuser, so that every operation's handler runs.
func fuzzServer(t testing.TB) *Server {
	s, db := fullServer(t)
	admin, err := rbac.NewStore(db).UserByName(context.Background(), rbac.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	s.auth = fixedAuth{admin}
	return s
}

// fullServer is a Server with every module over a fresh SQLite database
// holding the superuser admin, and its database.
func fullServer(t testing.TB) (*Server, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.OpenSQLite(ctx, t.TempDir()+"/cmon.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hasher, err := rbac.NewHasher(4) // the fuzzer tries many passwords
	if err != nil {
		t.Fatal(err)
	}
	store := rbac.NewStore(db)
	hash, _ := hasher.Hash("pw-admin-12345")
	if _, err := store.CreateAdmin(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureRoot(ctx); err != nil {
		t.Fatal(err)
	}
	authz, err := rbac.NewAuthorizer(db)
	if err != nil {
		t.Fatal(err)
	}
	authn := rbac.NewAuthn(store, rbac.NewSessions(store, rbac.DefaultSessionLimits), hasher, rbac.AuthnOptions{Throttle: rbac.DefaultThrottleLimits})
	reg, err := jobs.NewRegistry(append(commands.Builtin(), commands.NodeCommands(commands.NodeDeps{})...)...)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := jobs.New(db, reg, jobs.Config{ControllerID: "fuzz", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	inv := hosts.NewInventory(db)
	s := NewServer(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "fuzz", ControllerID: "fuzz",
		Authn: authn, Sessions: authn.Sessions(), Users: store, Passwords: hasher, Changes: db, Audit: rbac.NewAuditLog(db, time.Hour), Node: "fuzz-node", Metrics: NewMetrics(), Inventory: inv, Jobs: engine, Authz: authz,
		Alarms: hosts.NewAlarms(db, time.Hour, nil)})
	s.metrics.Watch(MetricsState{Sessions: authn.Sessions(), Jobs: engine, Inventory: inv, Database: db})
	return s, db
}

// FuzzDispatch sends arbitrary bodies to every module: whatever the input,
// the reply is one JSON envelope, no handler fails internally, and the reply
// stays within a small multiple of the request.
func FuzzDispatch(f *testing.F) {
	modules := []string{"controller", "auth", "users", "clusters", "jobs", "tree", "", "nope",
		"info", "poolcontrollers", "audit", "alarm", "maintenance", "log"}
	seeds := map[string][]string{
		"controller": {`{"operation":"ping","request_id":3,"request_created":"2021-02-09T09:24:47.208Z"}`},
		"auth": {`{"operation":"authenticateWithPassword","user_name":"admin","password":"x"}`,
			`{"operation":"authenticate","user_name":"admin"}`, `{"operation":"authenticateResponse","signature":"AAAA"}`, `{"operation":"logout"}`},
		"users": {`{"operation":"whoAmI","with_extended_privileges":true}`, `{"operation":"getUsers"}`,
			`{"create_group":true,"new_password":"pw-grumio-1","operation":"createUser","user":{"class_name":"CmonUser","email_address":"grumio@rome.com","first_name":"Grumio","user_name":"grumio","groups":[{"class_name":"CmonGroup","group_name":"plebs"}],"public_keys":[{"name":"No Name","key":""}]}}`,
			`{"operation":"setUser","user":{"class_name":"CmonUser","email_address":"nobody@example.com","user_name":"admin"}}`,
			`{"operation":"changePassword","user":{"user_name":"grumio"},"new_password":"pw-new-12345"}`,
			`{"operation":"getKeys","user":{"user_id":1}}`, `{"operation":"deleteKey","public_key":{"name":"x"}}`,
			`{"operation":"createGroup","group":{"group_name":"ops"}}`, `{"operation":"addToGroup","user":{"user_name":"grumio"},"group_name":"ops"}`,
			`{"operation":"removeFromGroup","user":{"user_name":"grumio"},"group_name":"ops"}`, `{"operation":"deleteGroup","group":{"group_name":"ops"}}`,
			`{"operation":"disable","user":{"user_name":"grumio"}}`, `{"operation":"enable","user":{"user_name":"grumio"}}`,
			`{"operation":"deleteUser","user":{"user_name":"grumio"}}`, `{"operation":"getGroups"}`,
			`{"operation":"createUser","user":{"user_name":"sdk","new_password":"pw-sdk-12345","timezone":{"class_name":"CmonTimeZone","name":"Europe/Berlin","offset":-3600},"public_key":[{"name":"k","key":""}]}}`,
			`{"operation":"canCreateUser"}`, `{"operation":"createGroup","group_name":"g2"}`},
		"clusters": {`{"operation":"getAllClusterInfo","with_hosts":true}`, `{"operation":"getClusterInfo","cluster_id":1}`, `{"operation":"ping"}`},
		"jobs": {`{"operation":"createJobInstance","job":{"class_name":"CmonJobInstance","title":"t","job_spec":{"command":"success","job_data":{"message":"hi"}}}}`,
			`{"operation":"createJobInstance","cluster_id":1,"job":{"job_spec":"{\"command\":\"exec\",\"job_data\":{\"command\":\"true\",\"timeout_sec\":5}}"}}`,
			`{"operation":"createJobInstance","job":{"recurrence":"*/5 * * * *","time_zone":"Europe/Berlin","job_spec":{"command":"fail","job_dat":{"exit_code":3}}}}`,
			`{"operation":"getJobInstances","limit":10,"offset":0,"show_running":true,"tags":["a"]}`, `{"operation":"getJobInstance","job_id":1}`,
			`{"ascending":true,"job_id":1,"limit":300,"operation":"getJobLog"}`, `{"operation":"killJobInstance","job_id":1}`,
			`{"operation":"cloneJobInstance","job_id":1}`, `{"operation":"updateJobInstance","job":{"job_id":2,"status":"PAUSED"}}`,
			`{"operation":"deleteJobInstance","job_id":1}`,
			`{"operation":"getJobInstances","cluster_ids":[1,2],"status":"FAILED"}`,
			`{"operation":"createJobInstance","cluster_id":1,"job":{"job_spec":{"command":"exec","job_data":{"command":"true","timeout":2,"nodes":[{"hostname":"a","port":3306},"b"]}}}}`,
			`{"operation":"createJobInstance","cluster_id":1,"job":{"timeout":0.5,"job_spec":{"command":"exec","job_data":{"command":"true"}}}}`},
		"tree": {`{"operation":"getTree"}`, `{"operation":"getAcl","path":"/"}`, `{"operation":"addAcl","path":"/","acl":"user:admin:r-x"}`,
			`{"operation":"removeAcl","path":"/","acl":"user:admin"}`, `{"operation":"chown","path":"/","owner_user_name":"admin","owner_group_name":"admins","recursive":false}`,
			`{"operation":"checkAccess","path":"/","privileges":"rwx"}`},
	}
	seeds["controller"] = append(seeds["controller"], `{"operation":"heartBeat"}`)
	seeds["info"] = []string{`{"operation":"ping"}`}
	seeds["poolcontrollers"] = []string{`{"operation":"listcontrollers"}`}
	seeds["audit"] = []string{`{"operation":"getEntries","limit":5}`, `{"operation":"getAuditEntries","cluster_ids":[0]}`}
	seeds["alarm"] = []string{`{"operation":"getAlarms","with_ignored":true}`, `{"operation":"getStatistics"}`, `{"operation":"ignoreAlarm","alarm_id":1}`}
	seeds["maintenance"] = []string{`{"operation":"addMaintenance","hostname":"a","deadline":"2030-01-01T00:00:00.000Z","reason":"r"}`,
		`{"operation":"getMaintenance"}`, `{"operation":"getNextMaintenance","cluster_id":1}`,
		`{"operation":"getCurrentMaintenance","cluster_id":1,"hostname":"a"}`}
	seeds["log"] = []string{`{"operation":"getLogEntries","limit":5,"severity":"log_info"}`}
	for i, module := range modules {
		for _, b := range seeds[module] {
			f.Add(uint8(i), b)
		}
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, m uint8, body string) {
		module := modules[int(m)%len(modules)]
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/"+module, strings.NewReader(body)))
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("reply is not a JSON object: %v: %.300s", err, rec.Body.Bytes())
		}
		if out["request_status"] == string(StatusUnknownError) {
			t.Fatalf("an internal error for %s %q: %v", module, body, out)
		}
		if limit := 64<<10 + 4*len(body); rec.Body.Len() > limit {
			t.Fatalf("a %d-byte request made a %d-byte reply", len(body), rec.Body.Len())
		}
	})
}
