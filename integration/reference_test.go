package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// serviceRecorder is a service command for test clusters: a script that
// appends "<action> begin|end <node address>" to a file for every call. A
// restart leaves the node "starting" until its next status check, which then
// fails once: a rolling restart has to wait for the node. A node with a
// file named fail-<address> beside the record fails every action.
type serviceRecorder struct {
	dir, script, record string
}

func newServiceRecorder(t *testing.T) *serviceRecorder {
	t.Helper()
	dir := t.TempDir()
	r := &serviceRecorder{dir: dir, script: filepath.Join(dir, "svc.sh"), record: filepath.Join(dir, "calls")}
	script := `#!/bin/sh
# The address the node was reached on: the third word of SSH_CONNECTION.
node=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
dir=` + dir + `
echo "$1 begin $node" >> "$dir/calls"
[ -e "$dir/fail-$node" ] && exit 5
case "$1" in
restart) touch "$dir/starting-$node" ;;
status) if [ -e "$dir/starting-$node" ]; then rm -f "$dir/starting-$node"; echo "$1 end $node" >> "$dir/calls"; exit 3; fi ;;
esac
echo "$1 end $node" >> "$dir/calls"
`
	if err := os.WriteFile(r.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// calls are the recorded calls, each "<action> begin|end <node>", and clears them.
func (r *serviceRecorder) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(r.record)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Remove(r.record); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// order is the nodes one action's calls visited, in order, and whether two
// of them overlapped.
func order(calls []string, action string) (nodes []string, overlap bool) {
	open := ""
	for _, call := range calls {
		f := strings.Fields(call)
		if len(f) != 3 || f[0] != action {
			continue
		}
		switch f[1] {
		case "begin":
			overlap = overlap || open != ""
			open = f[2]
			nodes = append(nodes, open)
		case "end":
			open = ""
		}
	}
	return nodes, overlap
}

// TestReferenceClientForms drives cmon as clients of the reference
// controller do: its command names, its job_data with numbers and booleans
// written as strings, and the cluster-wide commands, against real sshd.
func TestReferenceClientForms(t *testing.T) {
	sshd := services.NewSSHDPerNode(t, "127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64")
	members, extra := sshd.Addrs[:3], sshd.Addrs[3]
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	rec := newServiceRecorder(t)

	// Lists are present and empty when there is nothing to list.
	for _, q := range []struct{ module, body, list string }{
		{"clusters", `{"operation":"getAllClusterInfo","with_hosts":true}`, "clusters"},
		{"jobs", `{"operation":"getJobInstances"}`, "jobs"},
	} {
		r := mustOk(t, admin.call(t, q.module, q.body))
		if list, ok := r.Reply[q.list].([]any); !ok || len(list) != 0 {
			t.Fatalf("%s: %q is not an empty list: %s", q.body, q.list, r.Raw)
		}
	}

	// register_cluster as the reference's OpenAPI model types it: ports and
	// booleans as strings.
	var nodes []map[string]any
	for _, n := range members {
		nodes = append(nodes, map[string]any{"hostname": n, "port": "3306"})
	}
	reboots := filepath.Join(rec.dir, "reboots")
	id := func() int64 {
		j := admin.waitJob(t, admin.createJob(t, 0, "register_cluster", map[string]any{
			"cluster_name": "reference", "cluster_type": "galera", "vendor": "mariadb", "version": "10.11",
			"ssh_user": sshd.User, "ssh_keyfile": sshd.ClientKey, "ssh_port": fmt.Sprint(sshd.Port), "sudo": "false",
			"service_name": "mariadb", "service_command": rec.script + " {action}",
			"reboot_command": "echo reboot >> " + reboots, "nodes": nodes}), 60*time.Second)
		mustStatus(t, j, "FINISHED")
		info := mustOk(t, admin.call(t, "clusters", `{"operation":"getClusterInfo","cluster_name":"reference","with_hosts":true}`))
		cl := info.Reply["cluster"].(map[string]any)
		for _, h := range nodesOf(cl) {
			if h["port"] != float64(3306) {
				t.Fatalf("host port: %v", h)
			}
		}
		return int64(cl["cluster_id"].(float64))
	}()

	hostCount := func() int {
		r := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":"%d","with_hosts":"true"}`, id)))
		return len(nodesOf(r.Reply["cluster"]))
	}

	t.Run("addnode and removenode", func(t *testing.T) {
		node := map[string]any{"hostname": extra, "port": "3306"}
		add := admin.createJob(t, id, "addnode", map[string]any{"clusterid": fmt.Sprint(id), "node": node})
		j := admin.waitJob(t, add, 60*time.Second)
		mustStatus(t, j, "FINISHED")
		if got := j["job_spec"].(map[string]any)["command"]; got != "addnode" {
			t.Fatalf("the job's command is %v, want the name sent, addnode", got)
		}
		if n := hostCount(); n != 4 {
			t.Fatalf("after addnode: %d hosts, want 4", n)
		}
		j = admin.waitJob(t, admin.createJob(t, id, "removenode", map[string]any{"clusterid": id, "node": node}), 60*time.Second)
		mustStatus(t, j, "FINISHED")
		if n := hostCount(); n != 3 {
			t.Fatalf("after removenode: %d hosts, want 3", n)
		}
	})

	reversed := slices.Clone(members)
	slices.Reverse(reversed)

	t.Run("stop_cluster then start_cluster", func(t *testing.T) {
		rec.calls(t)
		j := admin.waitJob(t, admin.createJob(t, 0, "stop_cluster", map[string]any{"clusterid": fmt.Sprint(id)}), 60*time.Second)
		mustStatus(t, j, "FINISHED")
		if got, overlap := order(rec.calls(t), "stop"); !slices.Equal(got, reversed) || overlap {
			t.Fatalf("stop_cluster stopped %v (overlap %v), want %v one at a time", got, overlap, reversed)
		}
		j = admin.waitJob(t, admin.createJob(t, 0, "start_cluster", map[string]any{"clusterid": id}), 60*time.Second)
		mustStatus(t, j, "FINISHED")
		if got, overlap := order(rec.calls(t), "start"); !slices.Equal(got, members) || overlap {
			t.Fatalf("start_cluster started %v (overlap %v), want %v one at a time", got, overlap, members)
		}

		// A node that fails stops the job there, with every node's result.
		fail := filepath.Join(rec.dir, "fail-"+members[1])
		if err := os.WriteFile(fail, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(fail)
		j = admin.waitJob(t, admin.createJob(t, id, "start_cluster", map[string]any{}), 60*time.Second)
		mustStatus(t, j, "FAILED")
		results := j["result"].(map[string]any)["nodes"].([]any)
		want := []string{"", "exit status 5", "not run"}
		for i, n := range results {
			n := n.(map[string]any)
			if n["hostname"] != members[i] || !strings.HasPrefix(n["error"].(string), want[i]) {
				t.Fatalf("node %d: %v, want error %q", i, n, want[i])
			}
		}
		if !strings.Contains(j["status_text"].(string), members[1]) {
			t.Fatalf("status_text does not name the failed node: %v", j["status_text"])
		}
	})

	t.Run("rolling_restart", func(t *testing.T) {
		rec.calls(t)
		j := admin.waitJob(t, admin.createJob(t, id, "rolling_restart", map[string]any{"clusterid": id, "timeout_sec": "60"}), 120*time.Second)
		mustStatus(t, j, "FINISHED")
		calls := rec.calls(t)
		if got, overlap := order(calls, "restart"); !slices.Equal(got, members) || overlap {
			t.Fatalf("restarted %v (overlap %v), want %v one at a time: %v", got, overlap, members, calls)
		}
		// Between two restarts, the node restarted first answered its health
		// check: once refused (it was starting), then passed.
		text := strings.Join(calls, " ")
		for i, n := range members[:len(members)-1] {
			restarted := strings.Index(text, "restart end "+n)
			next := strings.Index(text, "restart begin "+members[i+1])
			between := text[restarted:next]
			if strings.Count(between, "status begin "+n) < 2 {
				t.Fatalf("node %s was not checked twice before %s was restarted: %v", n, members[i+1], calls)
			}
		}
		for _, n := range j["result"].(map[string]any)["nodes"].([]any) {
			if n := n.(map[string]any); n["healthy"] != true {
				t.Fatalf("node result: %v", n)
			}
		}

		// Told not to stop at a failure, it goes on to the other nodes.
		fail := filepath.Join(rec.dir, "fail-"+members[0])
		if err := os.WriteFile(fail, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(fail)
		j = admin.waitJob(t, admin.createJob(t, id, "rolling_restart", map[string]any{"abort_on_error": "false"}), 120*time.Second)
		mustStatus(t, j, "FAILED")
		if got, _ := order(rec.calls(t), "restart"); !slices.Equal(got, members) || !strings.Contains(j["status_text"].(string), members[0]) {
			t.Fatalf("restarted %v, status %v", got, j["status_text"])
		}
	})

	t.Run("reboot", func(t *testing.T) {
		node := members[1]
		reboot := admin.createJob(t, id, "reboot", map[string]any{"clusterid": id, "node": map[string]any{"hostname": node}, "timeout_sec": "120"})
		// The node "reboots" when cmon has run the reboot command: its sshd
		// stops, and comes back once cmon has seen it down.
		waitFor(t, 60*time.Second, func() error {
			if b, _ := os.ReadFile(reboots); !strings.Contains(string(b), "reboot") {
				return fmt.Errorf("the reboot command has not run")
			}
			return nil
		})
		sshd.PauseNode(1)
		waitFor(t, 60*time.Second, func() error {
			log := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":"%d","limit":"-1"}`, reboot)))
			if job := log.Reply["job"].(map[string]any); endedStatuses[job["status"].(string)] {
				t.Fatalf("the job ended before the node came back: %s", log.Raw)
			}
			if !strings.Contains(log.Raw, node+" is down") {
				return fmt.Errorf("the job has not seen %s down: %s", node, log.Raw)
			}
			return nil
		})
		if j := admin.waitJob(t, reboot, time.Second, "RUNNING"); j["status"] != "RUNNING" {
			t.Fatalf("the job ended while the node was down: %v", j)
		}
		if err := sshd.ResumeNode(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		j := admin.waitJob(t, reboot, 120*time.Second)
		mustStatus(t, j, "FINISHED")
		result := j["result"].(map[string]any)
		if result["down_after_sec"].(float64) <= 0 || result["took_sec"].(float64) <= result["down_after_sec"].(float64) {
			t.Fatalf("reboot result: %v", result)
		}
		log := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"limit":-1}`, reboot)))
		if !strings.Contains(log.Raw, node+" rebooted: reachable again after") {
			t.Fatalf("job log: %s", log.Raw)
		}

		// A node that never goes down was not rebooted.
		j = admin.waitJob(t, admin.createJob(t, id, "reboot", map[string]any{"node": map[string]any{"hostname": members[0]}, "timeout_sec": 2}), 60*time.Second)
		if mustStatus(t, j, "FAILED"); !strings.Contains(j["status_text"].(string), "did not go down within 2s") {
			t.Fatalf("status_text: %v", j["status_text"])
		}
	})
}
