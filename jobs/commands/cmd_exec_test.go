package commands

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/jobs"
)

// onNode is shell text that runs then only on the node reached at addr.
func onNode(addr, then string) string {
	return fmt.Sprintf(`set -- $SSH_CONNECTION; if [ "$3" = %s ]; then %s; fi`, addr, then)
}

func TestExec(t *testing.T) {
	sshd := services.SharedSSHD(t)
	e := newNodeEnv(t, services.OpenSQLite(t))
	addrs := sshd.Addrs[11:15]
	c := e.register(t, "exec", sshd, addrs, nil)
	a0, a1, a2, a3 := addrs[0], addrs[1], addrs[2], addrs[3]
	whoami := `set -- $SSH_CONNECTION; echo "$3"`

	tests := []struct {
		name string
		data map[string]any
		// needs, when set, tells why a service the case needs is unavailable.
		needs    func() error
		wantText string // "" FINISHED, else FAILED with this text
		// wantRefused is the refusal of a job that would fail on every run,
		// given at create.
		wantRefused string
		wantExit    int
		wantNodes   []string // hostnames of result.nodes, in order
		check       func(t *testing.T, j *jobs.Job, r testResult)
	}{
		{name: "all nodes", data: map[string]any{"command": whoami}, wantNodes: addrs,
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				for i, n := range r.Nodes {
					if n["stdout"] != addrs[i]+"\n" {
						t.Errorf("node %s stdout %q", addrs[i], n["stdout"])
					}
				}
			}},
		{name: "nodes subset in the order given", data: map[string]any{"command": whoami, "nodes": []string{a2, a0}},
			wantNodes: []string{a2, a0}},
		{name: "nodes as register_cluster names them", data: map[string]any{"command": whoami,
			"nodes": []map[string]any{{"hostname": a2, "port": 3306}, {"hostname": a0}}}, wantNodes: []string{a2, a0}},
		{name: "unknown node", data: map[string]any{"command": whoami, "nodes": []string{a0, "nosuch.example"}},
			wantRefused: `node nosuch.example is not in cluster "exec"`},
		{name: "host_tags AND", data: map[string]any{"command": whoami, "host_tags": map[string]any{"operator": "AND", "tags": []string{"db", a1}}},
			wantNodes: []string{a1}},
		{name: "host_tags OR", data: map[string]any{"command": whoami, "host_tags": map[string]any{"operator": "or", "tags": []string{a3, a1}}},
			wantNodes: []string{a1, a3}},
		{name: "host_tags matching nothing", data: map[string]any{"command": whoami, "host_tags": map[string]any{"operator": "AND", "tags": []string{"db", "nope"}}},
			wantRefused: `no node of cluster "exec" has the tags db, nope (AND)`},
		{name: "base64 command and output", data: map[string]any{"command_base64": base64.StdEncoding.EncodeToString([]byte(`printf '\000\001\377'`)),
			"output_encoding": "base64", "nodes": []string{a0}}, wantNodes: []string{a0},
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				if r.Nodes[0]["stdout"] != "AAH/" {
					t.Errorf("stdout %q, want AAH/", r.Nodes[0]["stdout"])
				}
				if !e.hasMessage(t, j.ID, jobs.MessageSuccess, a0+": exit status 0, 3 bytes of stdout, 0 bytes of stderr.") {
					t.Errorf("log: %v", e.messages(t, j.ID))
				}
			}},
		{name: "command as base64 content", data: map[string]any{"command": base64.StdEncoding.EncodeToString([]byte("echo from-base64")),
			"content_type": "base64", "nodes": []string{a0}}, wantNodes: []string{a0},
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				if r.Nodes[0]["stdout"] != "from-base64\n" {
					t.Errorf("stdout %q", r.Nodes[0]["stdout"])
				}
			}},
		{name: "invalid utf-8 as text", data: map[string]any{"command": `printf '\377ok\n'`, "nodes": []string{a0}}, wantNodes: []string{a0},
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				if r.Nodes[0]["stdout"] != "\uFFFDok\n" || !e.hasMessage(t, j.ID, jobs.MessageSuccess, a0+": \uFFFDok") {
					t.Errorf("stdout %q, log %v", r.Nodes[0]["stdout"], e.messages(t, j.ID))
				}
			}},
		{name: "env cwd stdin", data: map[string]any{"command": `cat; echo "$FOO"; pwd`, "nodes": []string{a1}, "cwd": "/tmp",
			"env": []map[string]any{{"key": "FOO", "value": "a b'c"}}, "stdin_base64": base64.StdEncoding.EncodeToString([]byte("hello\n"))},
			wantNodes: []string{a1},
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				if r.Nodes[0]["stdout"] != "hello\na b'c\n/tmp\n" {
					t.Errorf("stdout %q", r.Nodes[0]["stdout"])
				}
			}},
		{name: "sudo", data: map[string]any{"command": "id -u", "is_sudo": true, "nodes": []string{a2}}, wantNodes: []string{a2},
			// The nodes are this machine: sudo -n works there for the user the
			// test logs in as, or the case cannot run.
			needs: func() error { return exec.Command("sudo", "-n", "true").Run() },
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				if r.Nodes[0]["stdout"] != "0\n" {
					t.Errorf("stdout %q", r.Nodes[0]["stdout"])
				}
			}},
		{name: "sequential abort_on_error leaves later nodes pending", data: map[string]any{"command": onNode(a0, "exit 3")},
			wantText: fmt.Sprintf("1 of 4 nodes failed: %s exit status 3; not run: %s, %s, %s", a0, a1, a2, a3), wantExit: 3, wantNodes: addrs,
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				if !slices.Equal(r.Pending, []string{a1, a2, a3}) || !slices.Equal(r.Responded, []string{a0}) {
					t.Errorf("responded %v pending %v", r.Responded, r.Pending)
				}
				if r.Nodes[1]["error"] != "not run: an earlier node failed and abort_on_error is set" || r.Nodes[1]["exit_status"] != float64(-1) {
					t.Errorf("pending node: %v", r.Nodes[1])
				}
			}},
		{name: "sequential without abort_on_error runs all", data: map[string]any{"command": onNode(a0, "exit 3"), "abort_on_error": false},
			wantText: fmt.Sprintf("1 of 4 nodes failed: %s exit status 3", a0), wantExit: 3, wantNodes: addrs,
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				if len(r.Responded) != 4 || len(r.Pending) != 0 {
					t.Errorf("responded %v pending %v", r.Responded, r.Pending)
				}
			}},
		{name: "concurrent runs all at once", data: map[string]any{"command": "sleep 1", "execute_concurrently": true}, wantNodes: addrs,
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				// Every node started before any ended: they overlapped.
				var lastStart, firstEnd string
				for _, n := range r.Nodes {
					started, ended := n["started"].(string), n["ended"].(string)
					if lastStart == "" || started > lastStart {
						lastStart = started
					}
					if firstEnd == "" || ended < firstEnd {
						firstEnd = ended
					}
				}
				if lastStart >= firstEnd {
					t.Errorf("not concurrent: last start %s, first end %s", lastStart, firstEnd)
				}
			}},
		{name: "concurrent failure keeps the result", data: map[string]any{"command": onNode(a2, "echo broken >&2; exit 1") + "; echo ok",
			"execute_concurrently": true, "abort_on_error": true},
			wantText: fmt.Sprintf("1 of 4 nodes failed: %s exit status 1", a2), wantExit: 1, wantNodes: addrs,
			check: func(t *testing.T, j *jobs.Job, r testResult) {
				for i, n := range r.Nodes {
					want := 0.0
					if i == 2 {
						want = 1
					}
					if n["exit_status"] != want {
						t.Errorf("node %d: %v", i, n)
					}
				}
				if r.Nodes[2]["stderr"] != "broken\n" || r.Nodes[2]["error"] != "exit status 1" || r.Nodes[0]["error"] != "" || !e.hasMessage(t, j.ID, jobs.MessageFailed, a2+": exit status 1.") ||
					!e.hasMessage(t, j.ID, jobs.MessageFailed, j.StatusText) {
					t.Errorf("failed node: %v, log %v", r.Nodes[2], e.messages(t, j.ID))
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needs != nil {
				if err := tt.needs(); err != nil {
					services.Unavailable(t, "password-less sudo", err)
				}
			}
			t.Parallel()
			if tt.wantRefused != "" {
				// What would fail on every run is refused at create.
				raw, _ := json.Marshal(tt.data)
				_, err := e.svc.Create(context.Background(), jobs.CreateRequest{ClusterID: c.ID, Command: "exec", JobData: raw, Owner: testOwner})
				var invalid *jobs.InvalidError
				if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tt.wantRefused) {
					t.Fatalf("create: %v, want a refusal saying %q", err, tt.wantRefused)
				}
				return
			}
			j := e.run(t, c.ID, "exec", tt.data)
			wantStatus := jobs.StatusFinished
			if tt.wantText != "" {
				wantStatus = jobs.StatusFailed
			}
			if j.Status != wantStatus || (tt.wantText != "" && j.StatusText != tt.wantText) || j.ExitCode != tt.wantExit {
				t.Fatalf("got %s %q exit %d, want %s %q exit %d", j.Status, j.StatusText, j.ExitCode, wantStatus, tt.wantText, tt.wantExit)
			}
			if tt.wantNodes == nil {
				return
			}
			r := resultOf(t, j)
			var names []string
			for _, n := range r.Nodes {
				names = append(names, n["hostname"].(string))
			}
			if !slices.Equal(names, tt.wantNodes) {
				t.Fatalf("result nodes %v, want %v", names, tt.wantNodes)
			}
			if tt.check != nil {
				tt.check(t, j, r)
			}
		})
	}
}

// TestExecStops: a per-node timeout and a kill end the remote processes, and
// the job keeps its result.
func TestExecStops(t *testing.T) {
	sshd := services.SharedSSHD(t)
	e := newNodeEnv(t, services.OpenSQLite(t))
	addrs := sshd.Addrs[15:17]
	c := e.register(t, "stops", sshd, addrs, nil)

	t.Run("per-node timeout", func(t *testing.T) {
		t.Parallel()
		marker := "sleep 300." + uniqueMarker(t)
		j := e.run(t, c.ID, "exec", map[string]any{"command": onNode(addrs[1], marker) + "; echo done",
			"execute_concurrently": true, "timeout_sec": 1})
		// The engine applies timeout_sec to the job as well: both run out together.
		if j.Status != jobs.StatusFailed {
			t.Fatalf("job %s %q", j.Status, j.StatusText)
		}
		r := resultOf(t, j)
		if len(r.Nodes) != 2 || r.Nodes[0]["stdout"] != "done\n" || r.Nodes[0]["exit_status"] != float64(0) ||
			!strings.Contains(fmt.Sprint(r.Nodes[1]["error"]), "timed out") {
			t.Fatalf("result: %s", j.Result)
		}
		if n := pgrepCount(t, marker); n != 0 {
			t.Fatalf("%d timed-out processes still run", n)
		}
	})
	t.Run("kill mid-run", func(t *testing.T) {
		t.Parallel()
		marker := "sleep 300." + uniqueMarker(t)
		j := e.start(t, c.ID, "exec", map[string]any{"command": marker, "execute_concurrently": true})
		waitProcesses(t, marker, func(n int) bool { return n == 2 }, "before the kill")
		killed := time.Now()
		if _, err := e.svc.Kill(context.Background(), j.ID, "tester"); err != nil {
			t.Fatal(err)
		}
		j = waitEnded(t, e.svc, j.ID)
		if j.Status != jobs.StatusAborted || j.StatusText != "Job was aborted by user tester." {
			t.Fatalf("job %s %q", j.Status, j.StatusText)
		}
		if d := time.Since(killed); d > 5*time.Second {
			t.Errorf("the kill took %s", d)
		}
		if n := pgrepCount(t, marker); n != 0 {
			t.Fatalf("%d killed processes still run", n)
		}
		r := resultOf(t, j)
		for _, n := range r.Nodes {
			if !strings.Contains(fmt.Sprint(n["error"]), "killed (job aborted)") || n["started"] == "" {
				t.Errorf("node: %v", n)
			}
		}
	})
}

func TestExecNeedsCluster(t *testing.T) {
	e := newNodeEnv(t, services.OpenSQLite(t))
	tests := []struct {
		name    string
		cluster int64
		want    string
	}{
		{name: "unknown cluster", cluster: 4242, want: "cluster 4242: cluster was not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := e.run(t, tt.cluster, "exec", map[string]any{"command": "true"})
			if j.Status != jobs.StatusFailed || j.StatusText != tt.want {
				t.Fatalf("got %s %q, want FAILED %q", j.Status, j.StatusText, tt.want)
			}
		})
	}
}

func TestExecNodeShapes(t *testing.T) {
	tests := []struct {
		name    string
		nodes   string
		want    []string
		wantErr string
	}{
		{name: "names", nodes: `["a","b"]`, want: []string{"a", "b"}},
		{name: "objects", nodes: `[{"hostname":"a","port":3306},{"hostname":"b"}]`, want: []string{"a", "b"}},
		{name: "mixed", nodes: `["a",{"hostname":"b"}]`, want: []string{"a", "b"}},
		{name: "object without hostname", nodes: `[{"port":3306}]`, wantErr: `job_data field "nodes" must be a string`},
		{name: "a number", nodes: `[7]`, wantErr: `job_data field "nodes" must be a string`},
		{name: "not an array", nodes: `"a"`, wantErr: `job_data field "nodes" must be an array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseExec(json.RawMessage(`{"command":"true","nodes":` + tt.nodes + `}`))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(p.nodes, tt.want) {
				t.Fatalf("nodes %v, %v; want %v", p.nodes, err, tt.want)
			}
		})
	}
}
