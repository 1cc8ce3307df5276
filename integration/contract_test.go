package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// Contract checks: the reference controller's own clients decode replies
// into typed values, and a field of another JSON type fails the whole reply
// for them. Each mirror below declares the fields one of those clients
// declares, with its names and Go types; decodeContract fails on a type
// mismatch and on a declared field the reply lacks (unless the mirror marks
// it omitempty: a field only some objects have).
//
// | operation | client | fields checked | test |
// | --- | --- | --- | --- |
// | /v2/alarm getAlarms | cmon-proxy api.GetAlarmsReply, api.Alarm | alarms[]: alarm_id, cluster_id, component_name, created, hostname, title, message, recommendation, severity_name, type_name, ignored (0/1) | TestAlarmsMaintenanceAndLog |
// | /v2/auth authenticateWithPassword, refused | cmon-proxy (README), s9s | request_status AccessDenied, error_string "Username or password is incorrect." | TestWrongPasswordAndThrottling, TestInlineAuthenticate |
// | /v2/info ping, no login | cmon-proxy api.InfoPingResponse | controller_id, pool_id, package_name, package_version, request_status | TestPingAsTheWebUIReadsIt |
// | /v2/clusters ping, no login | cmon-proxy api.PingResponse | controller_id, package_name, package_version, request_status | TestPingAsTheWebUIReadsIt |
// | /v2/audit getEntries | cmon-proxy api.GetAuditEntriesReply, api.AuditEntry | audit_entries[]: cluster_id, client_hostname, report_ts, entry_type, message_text, username | TestAuditAsTheWebUIReadsIt |
// | /v2/log getLogEntries | cmon-proxy api.GetLogsReply, api.Log | log_entries[]: log_id, log_class, created, severity, log_specifics{cluster_id, message_text}, log_origins{sender_*, tv_sec, tv_nsec} | TestAlarmsMaintenanceAndLog |
// | /v2/maintenance getMaintenance | s9s S9sRpcReply::printMaintenanceList* | maintenance_records[]: hostname or cluster_id + cluster.cluster_name; maintenance_periods[]: UUID, username, groupname, initiate, deadline, is_active, reason | TestAlarmsMaintenanceAndLog |
// | /v2/maintenance addMaintenance by hostname alone | s9s maintenance --create --nodes=HOST | the host's cluster found, w checked | TestHostMaintenanceAsS9sCreatesIt |
// | /v2/jobs createJobInstance, getJobInstances | s9s, the reference web UI | jobs[] as cmon-proxy's api.Job (owner_user_id, owner_user_name, user, group, has_progress, progress_percent, job_spec...); the created job DEFINED; job_data.timeout and job.timeout bound the job; exec nodes as objects; unknown nodes, unmatched tags and filtered commands refused at create; cluster_ids and status filters | TestJobsAsTheReferenceClientsSendThem |
// | /v2/users createUser, setUser, createGroup, deleteGroup, addToGroup, canCreateUser, canCreateGroup; /v2/controller heartBeat | clustercontrol-client-sdk (generated from the reference's OpenAPI description) | user.new_password, user.timezone object, user.public_key(s), group.group_name or group_name | TestUsersAsTheGeneratedClientSendsThem |
// | /v2/clusters getClusterInfo | s9s S9sCluster, cmon-proxy api.Cluster | owner{user_name}, group_owner{group_name}, alarm_statistics{critical, warning}, databases (a list) | TestAlarmsMaintenanceAndLog |
// | /v2/host getControllers | s9s controller --list | controllers[]: hostname, ip, port, version, role | TestControllersAsTheReferenceClientsListThem |
// | /v2/poolcontrollers listcontrollers | cmon-proxy api.GetControllersResponse, api.PoolController | pool_id, controllers[]: controller_id (a number), hostname, port, properties{role}, report_ts, status "active", clusters | TestControllersAsTheReferenceClientsListThem |
// | /v2/clusters getClusterInfo hosts[].hoststatus | s9s S9sNode | CmonHostOffLine for an offline host | TestAlarmsMaintenanceAndLog, TestMonitorDegradedAndBack |
// | /v2/auth authenticateWithPassword; /v2/users whoAmI | cmon-proxy api.AuthenticateResponse, api.User, api.Group (Client.AuthenticateWithPassword, AuthenticateWithCookie), its cmon auth provider's whoAmI reply | controller_id, user{class_name, user_id, user_name, first_name, last_name, email_address, origin, last_login (NullTime), groups[]{class_name, group_id, group_name}} | TestUsersAsTheReferenceClientsReadThem |
// | /v2/users whoAmI with_extended_privileges, getUsers | s9s S9sUser, S9sObject, S9sRpcReply::printUserList*, S9sFormatter::printUserStat | request_user_id the caller's user_id (s9s user --whoami keeps only that user); user/users[]: user_id, user_name, class_name, cdt_path, origin, disabled, suspended, created, groups[].group_name, acl, owner_user_name, owner_group_name | TestUsersAsTheReferenceClientsReadThem |
// | /v2/users getGroups | s9s S9sGroup, S9sRpcReply::printGroupListLong | total, groups[]: group_id, group_name, owner_user_name, owner_group_name | TestUsersAsTheReferenceClientsReadThem |
// | /v2/users addKey, getKeys | s9s user --add-key, --list-keys (S9sRpcReply::printKeys) | total, public_keys[]: name, key | TestUsersAsTheReferenceClientsReadThem |
// | /v2/clusters getAllClusterInfo, getClusterInfo with_hosts | cmon-proxy api.GetAllClusterInfoResponse, api.GetClusterInfoResponse, api.Cluster, api.Host, api.Distribution | clusters[]/cluster: class_name, cluster_id, cluster_name, cluster_type, state, vendor, version, maintenance_mode_active, cluster_auto_recovery, node_auto_recovery; hosts[]: class_name, acl, cdt_path, clusterid, connected, container, distribution{codename, name, release, type}, hostId, hostname, hoststatus, ip, lastseen, logfile, maintenance_mode, maintenance_mode_active, message, nodetype, port, role, unique_id (the rest where sent, with their types) | TestClusterHostsAsTheReferenceClientsReadThem |
// | /v2/clusters getAllClusterInfo, getClusterInfo with_hosts | s9s S9sNode, S9sRpcReply::printNodeListLong (s9s node --list --long) | hosts[]: class_name, hostname, ip, port, clusterid, hostId, hoststatus (one s9s knows), nodetype, role, message, version, maintenance_mode_active | TestClusterHostsAsTheReferenceClientsReadThem |
// | /v2/clusters getAllClusterInfo, getClusterInfo with_hosts | cmon-proxy multi/clusters.go (node counts are len(hosts)-1, the controller host skipped), the reference web UI | each cluster's hosts hold exactly one nodetype "controller" host, role "controller", of that cluster | TestClusterHostsAsTheReferenceClientsReadThem |
// | /v2/jobs cloneJobInstance, updateJobInstance, killJobInstance, deleteJobInstance | s9s job --clone, --disable, --enable, --kill, --delete (S9sRpcClient, S9sBusinessLogic::maybeJobRegistered) | job.job_id of the clone; job.status PAUSED/SCHEDULED by job.job_id; Ok for kill and delete, the deleted job ObjectNotFound | TestJobActionsAsS9sSendsThem |
// | /v2/tree getAcl, addAcl, checkAccess | s9s tree --get-acl, --add-acl, --access (S9sRpcReply::printAcl) | object_name, object_path, owner_user_name, owner_group_name, acl; a refused check InvalidRequest naming the user | TestTreeAsTheReferenceClientsReadIt |
// | /v2/tree getTree | s9s S9sTreeNode, S9sRpcReply::printObjectTree*, printObjectList* (s9s tree --tree, --list --long) | cdt{item_name, item_path, item_type, item_acl, owner_user_id, owner_user_name, owner_group_id, owner_group_name, sub_items[]}: the root "/" a Folder, a cluster a "Cluster" under "/", ACLs in user::/group::/other:: form | TestTreeAsTheReferenceClientsReadIt |
// | /v2/tree getTree | cmon-proxy's getTree fan-out (poolhelpers/pool_controller_helpers.go) | cdt.sub_items[]: item_type "Cluster" with a cluster_id that prints as one of listcontrollers' clusters | TestTreeAsTheReferenceClientsReadIt |
// | /v2/jobs getJobLog | s9s job --log, job --wait --log (S9sMessage, S9sRpcReply::printJobLog*, S9sBusinessLogic::waitForJobWithLog) | messages[]: class_name, message_id, job_id, created, message_status (JOB_*), message_text; ascending order; limit and offset page without loss or repeat; job.status ends the follow loop | TestJobLogAsS9sFollowsIt |
// | /v2/jobs getJobInstance | cmon-proxy api.GetJobInstanceResponse, api.Job (Client.CreateJobInstanceWait) | job as api.Job | TestJobLogAsS9sFollowsIt |
// | /v2/alarm getStatistics | s9s alarm --stat (S9sRpcReply::printAlarmStatistics) | alarm_statistics[]: cluster_id, critical, warning | TestAlarmStatisticsAndMaintenanceAsS9sReadsThem |
// | /v2/maintenance getCurrentMaintenance, getNextMaintenance | s9s maintenance --current, --next (S9sRpcReply::printCurrentMaintenance, printNextMaintenance) | found_maintenance, ui_string | TestAlarmStatisticsAndMaintenanceAsS9sReadsThem |

// proxyAlarm is cmon-proxy's api.Alarm.
type proxyAlarm struct {
	AlarmID        int64     `json:"alarm_id"`
	ClusterID      uint64    `json:"cluster_id"`
	ComponentName  string    `json:"component_name"`
	Created        time.Time `json:"created"`
	Hostname       string    `json:"hostname"`
	Title          string    `json:"title"`
	Message        string    `json:"message"`
	Recommendation string    `json:"recommendation"`
	SeverityName   string    `json:"severity_name"`
	TypeName       string    `json:"type_name"`
	Ignored        int       `json:"ignored"`
}

// proxyGetAlarmsReply is cmon-proxy's api.GetAlarmsReply, less the envelope.
type proxyGetAlarmsReply struct {
	Alarms []*proxyAlarm `json:"alarms"`
}

// proxyPing is cmon-proxy's api.PingResponse (/v2/clusters) and, with
// pool_id, its api.InfoPingResponse (/v2/info), with the envelope fields
// they read.
type proxyPing struct {
	ControllerID  string `json:"controller_id"`
	RequestStatus string `json:"request_status"`
	Name          string `json:"package_name"`
	Version       string `json:"package_version"`
}

type proxyInfoPing struct {
	proxyPing
	PoolID string `json:"pool_id"`
}

// TestPingAsTheWebUIReadsIt: the reference web UI's backend pings
// /v2/info at start-up and to test a controller, and /v2/clusters for its
// status, without logging in.
func TestPingAsTheWebUIReadsIt(t *testing.T) {
	c := startController(t, controllerOptions{})
	infoReply := c.curl(t, "info", `{"operation":"ping"}`)
	info := decodeContract[proxyInfoPing](t, infoReply.Raw)
	// The web UI's backend reads the version from the Server header.
	if !strings.Contains(infoReply.Header, "Server: cmon/"+info.Version+"\n") {
		t.Errorf("the Server header does not carry package_version %q:\n%s", info.Version, infoReply.Header)
	}
	if os.Getenv("CMON_BIN") != "" && info.Version == "dev" {
		t.Errorf("the binary make built reports version dev: make stamps the repository's version")
	}
	clusters := decodeContract[proxyPing](t, c.curl(t, "clusters", `{"operation":"ping","cluster_id":0}`).Raw)
	for _, p := range []proxyPing{info.proxyPing, clusters} {
		if p.RequestStatus != "Ok" || p.ControllerID == "" || p.Name != "cmon" || p.Version == "" {
			t.Errorf("ping as cmon-proxy reads it: %+v", p)
		}
	}
	if info.PoolID != info.ControllerID {
		t.Errorf("pool_id %q, want the controller_id its pool shares, %q", info.PoolID, info.ControllerID)
	}
}

// proxyAuditEntry is cmon-proxy's api.AuditEntry.
type proxyAuditEntry struct {
	ClusterID      int64     `json:"cluster_id"`
	ClientHostname string    `json:"client_hostname"`
	ReportTs       time.Time `json:"report_ts"`
	EntryType      string    `json:"entry_type"`
	MessageText    string    `json:"message_text"`
	Username       string    `json:"username"`
}

type proxyGetAuditEntriesReply struct {
	AuditEntries []*proxyAuditEntry `json:"audit_entries"`
}

// TestAuditAsTheWebUIReadsIt: the reference web UI's audit page calls
// getEntries and reads audit_entries.
func TestAuditAsTheWebUIReadsIt(t *testing.T) {
	c := startController(t, controllerOptions{})
	c.createUser(t, "auditee", "auditee-password")
	admin := c.session(t, "admin", adminPassword)
	reply := decodeContract[proxyGetAuditEntriesReply](t, mustOk(t, admin.call(t, "audit", `{"operation":"getEntries","limit":50}`)).Raw)
	for _, e := range reply.AuditEntries {
		if e.Username == "admin" && e.EntryType == "createUser" && strings.Contains(e.MessageText, "user:auditee") &&
			e.ClientHostname == "127.0.0.1" && !e.ReportTs.IsZero() {
			return
		}
	}
	t.Fatalf("no createUser entry as the web UI reads it among %d", len(reply.AuditEntries))
}

// proxyLog is cmon-proxy's api.Log.
type proxyLog struct {
	LogID        int64     `json:"log_id"`
	LogClass     string    `json:"log_class"`
	Created      time.Time `json:"created"`
	Severity     string    `json:"severity"`
	LogSpecifics struct {
		ClusterID   int64  `json:"cluster_id"`
		MessageText string `json:"message_text"`
	} `json:"log_specifics"`
	LogOrigins struct {
		SenderBinary string `json:"sender_binary"`
		SenderFile   string `json:"sender_file"`
		SenderLine   int64  `json:"sender_line"`
		SenderPid    int64  `json:"sender_pid"`
		TvNsec       int64  `json:"tv_nsec"`
		TvSec        int64  `json:"tv_sec"`
	} `json:"log_origins"`
}

type proxyGetLogsReply struct {
	Total int64       `json:"total"`
	Logs  []*proxyLog `json:"log_entries"`
}

// s9sMaintenanceList is what s9s reads of a maintenance listing.
type s9sMaintenanceList struct {
	Total   int `json:"total"`
	Records []struct {
		Hostname string `json:"hostname,omitempty"` // a host's record only
		Periods  []struct {
			UUID      string `json:"UUID"`
			Username  string `json:"username"`
			Groupname string `json:"groupname"`
			Initiate  string `json:"initiate"`
			Deadline  string `json:"deadline"`
			IsActive  bool   `json:"is_active"`
			Reason    string `json:"reason"`
		} `json:"maintenance_periods"`
	} `json:"maintenance_records"`
}

// s9sCluster is what s9s's S9sCluster reads of the owners and alarm counts,
// and cmon-proxy's api.Cluster of the databases.
type s9sCluster struct {
	ClusterID int64 `json:"cluster_id"`
	Owner     struct {
		UserID   int64  `json:"user_id"`
		UserName string `json:"user_name"`
	} `json:"owner"`
	GroupOwner struct {
		GroupID   int64  `json:"group_id"`
		GroupName string `json:"group_name"`
	} `json:"group_owner"`
	AlarmStatistics struct {
		Critical int `json:"critical"`
		Warning  int `json:"warning"`
	} `json:"alarm_statistics"`
	Databases []json.RawMessage `json:"databases"`
}

// proxyJob is cmon-proxy's api.Job (its omitempty fields are optional here
// too).
type proxyJob struct {
	ClassName       string      `json:"class_name"`
	OwnerUserID     uint64      `json:"owner_user_id"`
	OwnerUserName   string      `json:"owner_user_name"`
	Tags            []string    `json:"tags,omitempty"`
	ClusterID       uint64      `json:"cluster_id"`
	UserID          uint64      `json:"user_id"`
	UserName        string      `json:"user_name"`
	GroupID         uint64      `json:"group_id"`
	GroupName       string      `json:"group_name"`
	CanBeAborted    bool        `json:"can_be_aborted,omitempty"`
	CanBeDeleted    bool        `json:"can_be_deleted,omitempty"`
	Created         time.Time   `json:"created,omitempty"`
	ExitCode        int64       `json:"exit_code,omitempty"`
	IPAddress       string      `json:"ip_address,omitempty"`
	JobID           uint64      `json:"job_id,omitempty"`
	RPCVersion      string      `json:"rpc_version,omitempty"`
	Status          string      `json:"status,omitempty"`
	StatusText      string      `json:"status_text,omitempty"`
	Title           string      `json:"title,omitempty"`
	HasProgress     bool        `json:"has_progress"`
	ProgressPercent json.Number `json:"progress_percent"`
	JobSpec         *struct {
		Command string          `json:"command"`
		JobData json.RawMessage `json:"job_data"`
	} `json:"job_spec,omitempty"`
}

// decodeContract decodes raw as the client's mirror T would, and fails when
// a field T declares is missing from an object of the reply.
func decodeContract[T any](t *testing.T, raw string) T {
	t.Helper()
	var out T
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("a client decoding %T fails on the reply: %v\n%.2000s", out, err, raw)
	}
	var generic any
	_ = json.Unmarshal([]byte(raw), &generic)
	requireDeclared(t, reflect.TypeFor[T](), generic, "")
	return out
}

// requireDeclared walks typ (a mirror) beside v (the reply as decoded
// without a type) and fails on each declared field v lacks.
func requireDeclared(t *testing.T, typ reflect.Type, v any, path string) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Slice:
		list, _ := v.([]any)
		for _, x := range list {
			requireDeclared(t, typ.Elem(), x, path+"[]")
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok || typ == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Anonymous {
				requireDeclared(t, f.Type, v, path) // its fields are the object's own
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			x, present := obj[name]
			if !present && opts == "omitempty" {
				continue // the client reads it where there is one
			}
			if !present {
				t.Errorf("reply lacks %s.%s, which the client declares", path, name)
				continue
			}
			requireDeclared(t, f.Type, x, path+"."+name)
		}
	}
}

// TestHostMaintenanceAsS9sCreatesIt: s9s maintenance --create --nodes=HOST
// sends addMaintenance to /v2/maintenance/ with a hostname and no cluster.
func TestHostMaintenanceAsS9sCreatesIt(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.63", "127.0.0.64")
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	ids := map[string]int64{}
	for _, cl := range []struct {
		name  string
		nodes []string
	}{{"m1", []string{"127.0.0.63"}}, {"m2", []string{"127.0.0.63", "127.0.0.64"}}} {
		name := cl.name
		id, job := admin.registerCluster(t, name, sshd, cl.nodes, nil)
		if id == 0 {
			t.Fatalf("register %s: %v", name, job)
		}
		ids[name] = id
	}
	c.createUser(t, "stranger", "stranger-password")
	c.createUser(t, "reader", "reader-password")
	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/m2","acl":"user:reader:r--"}`))
	stranger, reader := c.session(t, "stranger", "stranger-password"), c.session(t, "reader", "reader-password")
	deadline := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	add := func(s *session, host, extra string) curlResult {
		return s.c.curl(t, "maintenance/", `{"operation":"addMaintenance","hostname":"`+host+`","deadline":"`+deadline+
			`","reason":"disk swap"`+extra+`}`, "-b", s.jar)
	}
	tests := []struct {
		name, host, extra string
		s                 *session
		wantStatus, want  string
	}{
		{name: "a host in one cluster", s: admin, host: "127.0.0.64", wantStatus: "Ok"},
		{name: "a host in two clusters", s: admin, host: "127.0.0.63", wantStatus: "InvalidRequest",
			want: "Host '127.0.0.63' is in cluster " + fmt.Sprint(ids["m1"]) + " ('m1'), cluster " + fmt.Sprint(ids["m2"]) + " ('m2'): name one with 'cluster_id'."},
		{name: "a host in two clusters, one named", s: admin, host: "127.0.0.63", extra: fmt.Sprintf(`,"cluster_id":%d`, ids["m1"]), wantStatus: "Ok"},
		{name: "a host in no cluster", s: admin, host: "10.9.9.9", wantStatus: "ObjectNotFound", want: "Host '10.9.9.9' is in no cluster you may read."},
		{name: "a hidden host reads as missing", s: stranger, host: "127.0.0.64", wantStatus: "ObjectNotFound", want: "Host '127.0.0.64' is in no cluster you may read."},
		{name: "a reader may not", s: reader, host: "127.0.0.64", wantStatus: "AccessDenied",
			want: "Write access to cluster " + fmt.Sprint(ids["m2"]) + " ('m2') for user reader is denied."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := add(tt.s, tt.host, tt.extra)
			if r.Status() != tt.wantStatus || (tt.want != "" && r.Reply["error_string"] != tt.want) {
				t.Fatalf("got %s %v, want %s %q", r.Status(), r.Reply["error_string"], tt.wantStatus, tt.want)
			}
		})
	}
	listing := decodeContract[s9sMaintenanceList](t, mustOk(t, admin.call(t, "maintenance",
		fmt.Sprintf(`{"operation":"getMaintenance","cluster_id":%d}`, ids["m2"]))).Raw)
	if len(listing.Records) != 2 || listing.Records[1].Hostname != "127.0.0.64" || len(listing.Records[1].Periods) != 1 {
		t.Fatalf("m2's maintenance as s9s reads it: %+v", listing)
	}
}

// TestJobsAsTheReferenceClientsSendThem: the job fields and filters s9s and
// the reference web UI send.
func TestJobsAsTheReferenceClientsSendThem(t *testing.T) {
	_, admin, id := clusterOfOne(t, controllerOptions{args: []string{"--exec-deny", "^shutdown"}}, "127.0.0.65", "j1")
	create := func(data string) map[string]any {
		r := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
			"job":{"job_spec":{"command":"exec","job_data":%s}}}`, id, data)))
		return r.Reply["job"].(map[string]any)
	}
	// s9s --timeout=N sends job_data.timeout: the whole job's bound.
	timed := create(`{"command":"sleep 12","timeout":2}`)
	if timed["status"] != "DEFINED" {
		t.Fatalf("createJobInstance answers the job as created, DEFINED, not %v", timed["status"])
	}
	done := admin.waitJob(t, int64(timed["job_id"].(float64)), time.Minute)
	if done["status"] != "FAILED" || !strings.Contains(fmt.Sprint(done["status_text"]), "timed out after 2 s") {
		t.Fatalf("a job with timeout 2 running sleep 12: %v %v", done["status"], done["status_text"])
	}
	// A timeout on the job itself bounds it too.
	jobLevel := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
		"job":{"timeout":2,"job_spec":{"command":"exec","job_data":{"command":"sleep 12"}}}}`, id))).Reply["job"].(map[string]any)
	done = admin.waitJob(t, int64(jobLevel["job_id"].(float64)), time.Minute)
	if done["status"] != "FAILED" || !strings.Contains(fmt.Sprint(done["status_text"]), "timed out after 2 s") {
		t.Fatalf("a job with a job-level timeout of 2 running sleep 12: %v %v", done["status"], done["status_text"])
	}
	// The node list in register_cluster's shape.
	shaped := create(`{"command":"true","nodes":[{"hostname":"127.0.0.65","port":3306}]}`)
	mustStatus(t, admin.waitJob(t, int64(shaped["job_id"].(float64)), time.Minute), "FINISHED")

	// What would fail on every run is refused at create.
	for _, refused := range []struct{ data, want string }{
		{`{"command":"true","nodes":["10.9.9.9"]}`, `node 10.9.9.9 is not in cluster \"j1\"`},
		{`{"command":"true","host_tags":{"operator":"AND","tags":["nope"]}}`, `no node of cluster \"j1\" has the tags nope (AND)`},
		{`{"command":"shutdown -h now"}`, "the command filter refuses it"},
	} {
		r := admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
			"job":{"job_spec":{"command":"exec","job_data":%s}}}`, id, refused.data))
		if r.Status() != "InvalidRequest" || !strings.Contains(r.Raw, refused.want) {
			t.Errorf("exec %s: %s, want InvalidRequest saying %s", refused.data, r.Raw, refused.want)
		}
	}
	list := func(filter string) (total int, statuses, clusters map[any]int) {
		r := mustOk(t, admin.call(t, "jobs", `{"operation":"getJobInstances"`+filter+`}`))
		statuses, clusters = map[any]int{}, map[any]int{}
		for _, j := range r.Reply["jobs"].([]any) {
			j := j.(map[string]any)
			statuses[j["status"]]++
			clusters[j["cluster_id"]]++
		}
		return int(r.Reply["total"].(float64)), statuses, clusters
	}
	// As the reference web UI's backend reads a listing.
	jobsReply := decodeContract[struct {
		Total int64       `json:"total"`
		Jobs  []*proxyJob `json:"jobs"`
	}](t, mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobInstances","cluster_ids":[%d]}`, id))).Raw)
	for _, j := range jobsReply.Jobs {
		if j.OwnerUserName != "admin" || j.UserName != "admin" || j.ClusterID != uint64(id) || j.JobSpec == nil || j.JobSpec.Command != "exec" {
			t.Errorf("a job as cmon-proxy reads it: %+v", j)
		}
	}
	if n, _, clusters := list(fmt.Sprintf(`,"cluster_ids":[%d]`, id)); n != 3 || len(clusters) != 1 || clusters[float64(id)] != 3 {
		t.Errorf("cluster_ids [%d]: %d jobs of clusters %v, want the three exec jobs", id, n, clusters)
	}
	if n, _, _ := list(`,"cluster_ids":[9999]`); n != 0 {
		t.Errorf("cluster_ids naming no cluster listed %d jobs", n)
	}
	if n, statuses, _ := list(`,"status":"FAILED"`); n != 2 || statuses["FAILED"] != 2 {
		t.Errorf("status FAILED: %d jobs, %v", n, statuses)
	}
	if r := admin.call(t, "jobs", `{"operation":"getJobInstances","status":"NOPE"}`); r.Status() != "InvalidRequest" ||
		!strings.Contains(fmt.Sprint(r.Reply["error_string"]), "Field 'status' must be one of DEFINED,") {
		t.Errorf("status NOPE: %s", r.Raw)
	}
}

// TestUsersAsTheGeneratedClientSendsThem: the request forms of the
// reference's generated client (clustercontrol-client-sdk, from its OpenAPI
// description): the password, time zone object and keys inside "user", the
// group named either way, and its canCreate* and heartBeat calls.
func TestUsersAsTheGeneratedClientSendsThem(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	dir := t.TempDir()
	key, pub := dir+"/key.pem", dir+"/pub.pem"
	run(t, "openssl", "genrsa", "-out", key, "2048")
	run(t, "openssl", "rsa", "-in", key, "-pubout", "-out", pub)
	pubPEM, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	mustOk(t, admin.call(t, "users", fmt.Sprintf(`{"operation":"createUser","create_group":true,"user":{"class_name":"CmonUser",
		"user_name":"sdkuser","new_password":"sdk-password-1","groups":[{"group_name":"sdkgroup"}],
		"timezone":{"class_name":"CmonTimeZone","name":"Europe/Berlin","abbreviation":"CET","offset":-3600,"use_dst":true},
		"public_key":[{"name":"laptop","key":%q}]}}`, pubPEM)))
	// The password given inside "user" is the user's: it logs in with it.
	sdk := c.session(t, "sdkuser", "sdk-password-1")
	me := mustOk(t, sdk.call(t, "users", `{"operation":"whoAmI"}`)).Reply["user"].(map[string]any)
	if tz, _ := me["timezone"].(map[string]any); tz["name"] != "Europe/Berlin" {
		t.Errorf("timezone as an object was not taken: %v", me["timezone"])
	}
	if keys := mustOk(t, sdk.call(t, "users", `{"operation":"getKeys"}`)); keys.Reply["total"] != float64(1) {
		t.Errorf("the key given as user.public_key was not taken: %s", keys.Raw)
	}
	tests := []struct {
		name, module, body, wantStatus, wantError string
		s                                         *session
	}{
		{name: "two different passwords", s: admin, module: "users", wantStatus: "InvalidRequest",
			body:      `{"operation":"createUser","new_password":"one-password","user":{"user_name":"twice","new_password":"other-password"}}`,
			wantError: "Fields 'new_password' and 'user.new_password' differ: give the password once."},
		{name: "setUser never drops a password", s: sdk, module: "users", wantStatus: "InvalidRequest",
			body:      `{"operation":"setUser","user":{"user_name":"sdkuser","new_password":"sdk-password-2"}}`,
			wantError: "setUser does not change passwords: use changePassword."},
		{name: "createGroup with group.group_name", s: admin, module: "users", wantStatus: "Ok",
			body: `{"operation":"createGroup","group":{"class_name":"CmonGroup","group_name":"g1"}}`},
		{name: "createGroup with group_name", s: admin, module: "users", wantStatus: "Ok",
			body: `{"operation":"createGroup","group_name":"g2"}`},
		{name: "addToGroup with group.group_name", s: admin, module: "users", wantStatus: "Ok",
			body: `{"operation":"addToGroup","user":{"user_name":"sdkuser"},"group":{"group_name":"g1"}}`},
		{name: "addToGroup with group_name", s: admin, module: "users", wantStatus: "Ok",
			body: `{"operation":"addToGroup","user":{"user_name":"sdkuser"},"group_name":"g2"}`},
		{name: "two group names", s: admin, module: "users", wantStatus: "InvalidRequest",
			body:      `{"operation":"deleteGroup","group_name":"g1","group":{"group_name":"g2"}}`,
			wantError: "Fields 'group_name' and 'group.group_name' name different groups."},
		{name: "removeFromGroup with group_name", s: admin, module: "users", wantStatus: "Ok",
			body: `{"operation":"removeFromGroup","user":{"user_name":"sdkuser"},"group_name":"g2"}`},
		{name: "deleteGroup with group_name", s: admin, module: "users", wantStatus: "Ok",
			body: `{"operation":"deleteGroup","group_name":"g2"}`},
		{name: "canCreateUser, superuser", s: admin, module: "users", body: `{"operation":"canCreateUser"}`, wantStatus: "Ok"},
		{name: "canCreateGroup, superuser", s: admin, module: "users", body: `{"operation":"canCreateGroup"}`, wantStatus: "Ok"},
		{name: "canCreateUser, another user", s: sdk, module: "users", body: `{"operation":"canCreateUser"}`, wantStatus: "AccessDenied",
			wantError: "Superuser access to operation canCreateUser for user sdkuser is denied."},
		{name: "heartBeat", s: sdk, module: "controller", body: `{"operation":"heartBeat"}`, wantStatus: "Ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.s.call(t, tt.module, tt.body)
			if r.Status() != tt.wantStatus || (tt.wantError != "" && r.Reply["error_string"] != tt.wantError) {
				t.Fatalf("got %s %v, want %s %q", r.Status(), r.Reply["error_string"], tt.wantStatus, tt.wantError)
			}
		})
	}
	groups := mustOk(t, sdk.call(t, "users", `{"operation":"whoAmI"}`)).Raw
	if !strings.Contains(groups, `"g1"`) || strings.Contains(groups, `"g2"`) {
		t.Errorf("sdkuser's groups after adding g1 and g2 and deleting g2: %s", groups)
	}
}

// s9sControllers is what s9s controller --list reads of getControllers.
type s9sControllers struct {
	Total       int `json:"total"`
	Controllers []struct {
		Hostname string `json:"hostname"`
		IP       string `json:"ip"`
		Port     int    `json:"port"`
		Version  string `json:"version"`
		Role     string `json:"role"`
	} `json:"controllers"`
}

// proxyPoolControllers is cmon-proxy's api.GetControllersResponse.
type proxyPoolControllers struct {
	PoolID      string `json:"pool_id"`
	Total       int    `json:"total"`
	Controllers []struct {
		ControllerID int             `json:"controller_id"`
		Hostname     string          `json:"hostname"`
		Port         int             `json:"port"`
		Properties   json.RawMessage `json:"properties"`
		ReportTs     string          `json:"report_ts"`
		Status       string          `json:"status"`
		Clusters     []string        `json:"clusters"`
	} `json:"controllers"`
}

// TestControllersAsTheReferenceClientsListThem: s9s controller --list and
// the reference web UI's pool view.
func TestControllersAsTheReferenceClientsListThem(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	mustOk(t, admin.call(t, "jobs", `{"operation":"createJobInstance","job":{"job_spec":{"command":"success","job_data":{}}}}`))
	s9s := decodeContract[s9sControllers](t, mustOk(t, admin.call(t, "host", `{"operation":"getControllers"}`)).Raw)
	if s9s.Total != 1 || s9s.Controllers[0].Hostname == "" || s9s.Controllers[0].IP != "127.0.0.1" ||
		s9s.Controllers[0].Port != c.Port || s9s.Controllers[0].Version == "" || s9s.Controllers[0].Role != "controller" {
		t.Errorf("getControllers as s9s reads it: %+v", s9s)
	}
	pool := decodeContract[proxyPoolControllers](t, mustOk(t, admin.call(t, "poolcontrollers", `{"operation":"listcontrollers"}`)).Raw)
	if pool.Total != 1 || pool.PoolID == "" {
		t.Fatalf("listcontrollers as cmon-proxy reads it: %+v", pool)
	}
	pc := pool.Controllers[0]
	var props struct {
		Role string `json:"role"`
	}
	_ = json.Unmarshal(pc.Properties, &props)
	// cmon-proxy routes only to active controllers with a host and port, and
	// sends requests that name no cluster to the main controller.
	if pc.Status != "active" || pc.Hostname != "127.0.0.1" || pc.Port != c.Port || props.Role != "main_controller" || pc.ControllerID != 1 {
		t.Errorf("the pool controller as cmon-proxy reads it: %+v, properties %s", pc, pc.Properties)
	}
}
