package commands

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/sql"
)

// nodeEnv is a started job Service with the node commands, over real SSH.
type nodeEnv struct {
	svc  *jobs.Service
	db   *sql.DB
	inv  *hosts.Inventory
	keys *hosts.DBKnownHosts
}

// testOwner owns the jobs of node tests, and so the clusters they register.
var testOwner = jobs.Owner{UserID: 7, UserName: "tester", GroupID: 3, GroupName: "testers"}

func newNodeEnv(t *testing.T, db *sql.DB) *nodeEnv {
	t.Helper()
	keys := hosts.NewDBKnownHosts(db)
	client := func(learn bool) *remote.Client {
		c, err := remote.New(remote.Config{KnownHosts: keys, LearnHostKeys: learn, KillGrace: 500 * time.Millisecond,
			Logger: services.TestLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	inv := hosts.NewInventory(db)
	strict := client(false)
	deps := NodeDeps{Inventory: inv, Tree: rbac.NewStore(db), SSH: strict, Learn: client(true), HostKeys: keys, Log: services.TestLogger()}
	cfg := testConfig("nodes")
	cfg.Workers = 8
	cfg.KillGrace = strict.StopBound() + time.Second // above the transport's bound, as cmon sets it
	return &nodeEnv{svc: newService(t, db, cfg, true, NodeCommands(deps)...), db: db, inv: inv, keys: keys}
}

// treeObject is the access-control object at path, nil if there is none.
func (e *nodeEnv) treeObject(t *testing.T, path string) *rbac.Object {
	t.Helper()
	authz, err := rbac.NewAuthorizer(e.db)
	if err != nil {
		t.Fatal(err)
	}
	p, err := authz.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	o, _ := p.Object(path)
	return o
}

// run creates a job on cluster (0: none) and waits for its end.
func (e *nodeEnv) run(t *testing.T, cluster int64, command string, data any) *jobs.Job {
	t.Helper()
	return waitEnded(t, e.svc, e.start(t, cluster, command, data).ID)
}

func (e *nodeEnv) start(t *testing.T, cluster int64, command string, data any) *jobs.Job {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return create(t, e.svc, jobs.CreateRequest{ClusterID: cluster, Command: command, JobData: raw, Owner: testOwner})
}

// register registers addrs of sshd as cluster name, with tags "db" and the
// node's own address on each node, and returns the stored cluster.
func (e *nodeEnv) register(t *testing.T, name string, sshd *services.SSHD, addrs []string, extra map[string]any) *hosts.Cluster {
	t.Helper()
	j := e.run(t, 0, "register_cluster", registerJobData(name, sshd, addrs, extra))
	if j.Status != jobs.StatusFinished {
		t.Fatalf("register %s: %s %q", name, j.Status, j.StatusText)
	}
	c, err := e.inv.GetByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func registerJobData(name string, sshd *services.SSHD, addrs []string, extra map[string]any) map[string]any {
	nodes := make([]map[string]any, len(addrs))
	for i, a := range addrs {
		nodes[i] = map[string]any{"hostname": a, "port": 3306, "role": "node", "tags": []string{"db", a}}
	}
	data := map[string]any{"cluster_name": name, "cluster_type": "generic", "ssh_user": sshd.User,
		"ssh_keyfile": sshd.ClientKey, "ssh_port": sshd.Port, "nodes": nodes}
	for k, v := range extra {
		data[k] = v
	}
	return data
}

func (e *nodeEnv) messages(t *testing.T, id int64) []jobs.Message {
	t.Helper()
	l, err := e.svc.Log(context.Background(), id, jobs.MessageQuery{Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	return l.Messages
}

// hasMessage tells whether the job logged text with status.
func (e *nodeEnv) hasMessage(t *testing.T, id int64, status jobs.MessageStatus, text string) bool {
	t.Helper()
	return slices.ContainsFunc(e.messages(t, id), func(m jobs.Message) bool { return m.Status == status && m.Text == text })
}

// hostKeyKnown tells whether a host key of addr is on record.
func (e *nodeEnv) hostKeyKnown(t *testing.T, sshd *services.SSHD, addr string) bool {
	t.Helper()
	keys, err := e.keys.Lookup(context.Background(), fmt.Sprintf("%s:%d", addr, sshd.Port))
	if err != nil {
		t.Fatal(err)
	}
	return len(keys) > 0
}

// testResult is a job result as clients read it.
type testResult struct {
	Nodes       []map[string]any `json:"nodes"`
	Responded   []string         `json:"responded"`
	Unreachable []string         `json:"unreachable"`
	Unapproved  []string         `json:"unapproved"`
	Pending     []string         `json:"pending"`
	ClusterID   int64            `json:"cluster_id"`
}

func resultOf(t *testing.T, j *jobs.Job) testResult {
	t.Helper()
	var r testResult
	if err := json.Unmarshal(j.Result, &r); err != nil {
		t.Fatalf("result of job %d: %v: %s", j.ID, err, j.Result)
	}
	return r
}

// uniqueMarker makes an argument no other process on this machine has.
func uniqueMarker(t *testing.T) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%09d", n.Int64())
}

// pgrepCount counts local processes with pattern in their arguments: the
// test nodes are this machine.
func pgrepCount(t *testing.T, pattern string) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", pattern).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return 0
	}
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	return len(strings.Fields(string(out)))
}

func waitProcesses(t *testing.T, pattern string, want func(int) bool, what string) {
	t.Helper()
	err := services.WaitFor(context.Background(), 15*time.Second, func() error {
		if n := pgrepCount(t, pattern); !want(n) {
			return fmt.Errorf("%s: %d processes match %q", what, n, pattern)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNodeCommandsRejectBadJobData(t *testing.T) {
	s := newService(t, services.OpenSQLite(t), testConfig("validate"), false, NodeCommands(NodeDeps{})...)
	tests := []struct {
		name    string
		command string
		data    string
		want    string
	}{
		{name: "exec without command", command: "exec", data: `{"nodes": ["a"]}`, want: `needs "command"`},
		{name: "run_command without command", command: "run_command", data: `{}`, want: `needs "command"`},
		{name: "exec with both commands", command: "exec", data: `{"command": "true", "command_base64": "dHJ1ZQ=="}`, want: "give one"},
		{name: "exec command of wrong type", command: "exec", data: `{"command": 7}`, want: `"command" must be a string`},
		{name: "exec empty command", command: "exec", data: `{"command": "  "}`, want: "empty"},
		{name: "exec bad base64", command: "exec", data: `{"command_base64": "!!!"}`, want: "not valid base64"},
		{name: "exec base64 content type", command: "exec", data: `{"command": "not base64!", "content_type": "base64"}`, want: "not valid base64"},
		{name: "exec unknown content type", command: "exec", data: `{"command": "true", "content_type": "gzip"}`, want: "content_type"},
		{name: "exec nodes and tags", command: "exec", data: `{"command": "true", "nodes": ["a"], "host_tags": {"tags": ["x"]}}`, want: `both "nodes" and "host_tags"`},
		{name: "exec empty node name", command: "exec", data: `{"command": "true", "nodes": [""]}`, want: "empty host name"},
		{name: "exec nodes not a list", command: "exec", data: `{"command": "true", "nodes": "a"}`, want: `"nodes" must be an array`},
		{name: "exec bad tag operator", command: "exec", data: `{"command": "true", "host_tags": {"operator": "XOR", "tags": ["x"]}}`, want: "operator"},
		{name: "exec no tags", command: "exec", data: `{"command": "true", "host_tags": {"operator": "AND", "tags": []}}`, want: "at least one tag"},
		{name: "exec bad env name", command: "exec", data: `{"command": "true", "env": [{"key": "1X", "value": "v"}]}`, want: "not a valid variable name"},
		{name: "exec bad stdin", command: "exec", data: `{"command": "true", "stdin_base64": "%%%"}`, want: "stdin_base64"},
		{name: "exec bad output encoding", command: "exec", data: `{"command": "true", "output_encoding": "hex"}`, want: "output_encoding"},
		{name: "exec negative timeout", command: "exec", data: `{"command": "true", "timeout_sec": -1}`, want: "positive"},
		{name: "exec sudo of wrong type", command: "exec", data: `{"command": "true", "is_sudo": "yes"}`, want: `"is_sudo" must be a boolean`},
		{name: "stop without node", command: "stop", data: `{"clusterid": 1}`, want: `needs "node"`},
		{name: "start without hostname", command: "start", data: `{"node": {}}`, want: `needs "node"`},
		{name: "stop cluster id not a number", command: "stop", data: `{"clusterid": "one", "node": {"hostname": "a"}}`, want: `"clusterid" must be an integer`},
		{name: "restart clusters disagree", command: "restart", data: `{"clusterid": 1, "cluster_id": 2, "node": {"hostname": "a"}}`, want: "names cluster 2"},
		{name: "register without name", command: "register_cluster", data: `{"cluster_type": "galera", "ssh_user": "u", "nodes": [{"hostname": "a"}]}`, want: "cluster_name"},
		{name: "register bad type", command: "add_cluster", data: `{"cluster_name": "c", "cluster_type": "oracle", "ssh_user": "u", "nodes": [{"hostname": "a"}]}`, want: "cluster_type"},
		{name: "register without user", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "nodes": [{"hostname": "a"}]}`, want: "ssh_user"},
		{name: "register without nodes", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "ssh_user": "u"}`, want: "at least one node"},
		{name: "register bad hostname", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "ssh_user": "u", "nodes": [{"hostname": "a b"}]}`, want: "not a valid host name"},
		{name: "register node twice", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "ssh_user": "u", "nodes": [{"hostname": "a"}, {"hostname": "a"}]}`, want: "listed twice"},
		{name: "register node twice in other case", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "ssh_user": "u", "nodes": [{"hostname": "db1.example"}, {"hostname": "DB1.example"}]}`, want: "listed twice"},
		{name: "register bad ssh port", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "ssh_user": "u", "ssh_port": 70000, "nodes": [{"hostname": "a"}]}`, want: "ssh_port"},
		{name: "register nodes of wrong type", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "ssh_user": "u", "nodes": {"hostname": "a"}}`, want: `"nodes" must be an array`},
		{name: "register long vendor", command: "register_cluster", data: `{"cluster_name": "c", "cluster_type": "galera", "ssh_user": "u", "vendor": "` + strings.Repeat("v", 65) + `", "nodes": [{"hostname": "a"}]}`, want: "vendor"},
		{name: "add_node without node", command: "add_node", data: `{}`, want: `needs "node"`},
		{name: "add_node bad hostname", command: "add_node", data: `{"node": {"hostname": "-bad-"}}`, want: "not a valid host name"},
		{name: "add_node bad port", command: "add_node", data: `{"node": {"hostname": "a", "port": -1}}`, want: "out of range"},
		{name: "remove_node without node", command: "remove_node", data: `{"node": {"hostname": ""}}`, want: `needs "node"`},
		{name: "remove_cluster bad id", command: "remove_cluster", data: `{"cluster_id": "x"}`, want: `"cluster_id" must be an integer`},
		{name: "remove_cluster negative id", command: "remove_cluster", data: `{"cluster_id": -3}`, want: "not valid"},
		{name: "remove_cluster naming another cluster", command: "remove_cluster", data: `{"cluster_id": 2}`, want: "names cluster 2 but the job is for cluster 1"},
		{name: "stop naming another cluster", command: "stop", data: `{"clusterid": 2, "node": {"hostname": "a"}}`, want: "names cluster 2 but the job is for cluster 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Create(context.Background(), jobs.CreateRequest{ClusterID: 1, Command: tt.command, JobData: json.RawMessage(tt.data)})
			if !isInvalid(err) || !errors.Is(err, jobs.ErrBadJobData) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("create %s %s: %v, want a bad job_data error mentioning %q", tt.command, tt.data, err, tt.want)
			}
		})
	}
	if jobs, total, err := s.List(context.Background(), jobs.Filter{}); err != nil || total != 0 {
		t.Fatalf("bad input stored jobs: %d %v %v", total, jobs, err)
	}
}

// recordingLogger is a Logger that keeps messages in memory.
type recordingLogger struct {
	mu   sync.Mutex
	msgs []string
}

func (l *recordingLogger) Message(_ context.Context, st jobs.MessageStatus, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, string(st)+" "+text)
}
func (l *recordingLogger) Progress(context.Context, int)      {}
func (l *recordingLogger) StatusText(context.Context, string) {}

func TestOutputLogLines(t *testing.T) {
	hs := []hosts.Host{{Hostname: "n1"}, {Hostname: "n2"}}
	index := map[string]int{"n1:22": 0, "n2:22": 1}
	// Two-byte runes after one byte: a cut at maxMessageLine would split one.
	long := "x" + strings.Repeat("é", maxMessageLine)
	tests := []struct {
		name   string
		max    int
		chunks []remote.Chunk
		want   []string
	}{
		{name: "lines across chunks", max: 100, chunks: []remote.Chunk{
			{Node: "n1:22", Stream: remote.Stdout, Data: []byte("hel")},
			{Node: "n2:22", Stream: remote.Stderr, Data: []byte("oops\r\n")},
			{Node: "n1:22", Stream: remote.Stdout, Data: []byte("lo\nwor")},
			{Node: "n1:22", Stream: remote.Stdout, Data: []byte("ld\n\xfftail")},
		}, want: []string{"JOB_WARNING n2: oops", "JOB_SUCCESS n1: hello", "JOB_SUCCESS n1: world", "JOB_SUCCESS n1: \uFFFDtail"}},
		{name: "cap", max: 2, chunks: []remote.Chunk{
			{Node: "n1:22", Stream: remote.Stdout, Data: []byte("a\nb\nc\nd\n")},
		}, want: []string{"JOB_SUCCESS n1: a", "JOB_SUCCESS n1: b", "JOB_WARNING More output than 2 lines: the rest is in the job result only."}},
		{name: "long line in pieces", max: 100, chunks: []remote.Chunk{
			{Node: "n1:22", Stream: remote.Stdout, Data: []byte(long)},
		}, want: []string{"JOB_SUCCESS n1: " + long[:maxMessageLine-1], "JOB_SUCCESS n1: " + long[maxMessageLine-1:2*maxMessageLine-1],
			"JOB_SUCCESS n1: " + long[2*maxMessageLine-1:]}},
		{name: "unknown node ignored", max: 100, chunks: []remote.Chunk{
			{Node: "n9:22", Stream: remote.Stdout, Data: []byte("x\n")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &recordingLogger{}
			o := newOutputLog(context.Background(), l, tt.max, hs, index)
			for _, c := range tt.chunks {
				o.write(context.Background(), c)
			}
			o.flush(context.Background(), 0)
			o.flush(context.Background(), 1)
			if !slices.Equal(l.msgs, tt.want) {
				t.Fatalf("messages:\n%q\nwant:\n%q", l.msgs, tt.want)
			}
		})
	}
}

func TestRunReportErr(t *testing.T) {
	tests := []struct {
		name     string
		nodes    []nodeReport
		want     string
		wantCode int
	}{
		{name: "all fine", nodes: []nodeReport{{Hostname: "a"}, {Hostname: "b"}}},
		{name: "failures and pending", nodes: []nodeReport{
			{Hostname: "a", ExitStatus: 3, problem: "exit status 3"},
			{Hostname: "b", ExitStatus: -1, problem: "unreachable: cannot connect: refused"},
			{Hostname: "c", ExitStatus: -1, problem: "not run", pending: true},
		}, want: "2 of 3 nodes failed: a exit status 3; b unreachable: cannot connect: refused; not run: c", wantCode: 3},
		{name: "only pending", nodes: []nodeReport{{Hostname: "a", ExitStatus: -1, problem: "not run", pending: true}},
			want: "1 of 1 nodes did not run: a", wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&runReport{Nodes: tt.nodes}).err()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err %v, want none", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want || exitCode(err) != tt.wantCode {
				t.Fatalf("err %v (exit %d), want %q (exit %d)", err, exitCode(err), tt.want, tt.wantCode)
			}
		})
	}
}
