package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/sql"
	"golang.org/x/crypto/ssh"
)

// TestRegisterClusterAndExec is the main flow on both backends: register
// three nodes, then run a command on all of them.
func TestRegisterClusterAndExec(t *testing.T) {
	sshd := services.SharedSSHD(t)
	addrs := sshd.Addrs[0:3]
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		e := newNodeEnv(t, db)
		before := time.Now().Add(-time.Second)
		j := e.run(t, 0, "register_cluster", registerJobData("galera1", sshd, addrs, map[string]any{
			"cluster_type": "galera", "vendor": "mariadb", "version": "10.11", "tags": []string{"prod"}}))
		if j.Status != jobs.StatusFinished {
			t.Fatalf("register: %s %q", j.Status, j.StatusText)
		}
		c, err := e.inv.GetByName(context.Background(), "galera1")
		if err != nil {
			t.Fatal(err)
		}
		if r := resultOf(t, j); r.ClusterID != c.ID {
			t.Errorf("result cluster_id %d, stored %d", r.ClusterID, c.ID)
		}
		if c.Type != "GALERA" || c.State != hosts.StateStarted || c.StatusText != "All 3 nodes are online." || len(c.Hosts) != 3 {
			t.Fatalf("cluster: %+v", c)
		}
		if o := e.treeObject(t, "/galera1"); o == nil || o.OwnerUserID != testOwner.UserID || o.OwnerGroupID != testOwner.GroupID {
			t.Fatalf("tree object of galera1: %+v, want owner %d group %d", o, testOwner.UserID, testOwner.GroupID)
		}
		for i, h := range c.Hosts {
			if h.Hostname != addrs[i] || h.IP != addrs[i] || h.Status != hosts.HostOnline || h.LastSeen.Before(before) ||
				h.OS == "" || h.Kernel == "" || h.CPUs < 1 || h.MemoryMB < 1 || h.Port != 3306 || !slices.Contains(h.Tags, "db") {
				t.Errorf("host %d: %+v", i, h)
			}
			keys, err := e.keys.Lookup(context.Background(), fmt.Sprintf("%s:%d", h.Hostname, sshd.Port))
			if err != nil || len(keys) != 1 || ssh.FingerprintSHA256(keys[0]) != ssh.FingerprintSHA256(sshd.HostKey()) {
				t.Errorf("host key of %s: %v %v", h.Hostname, keys, err)
			}
			if !slices.ContainsFunc(e.messages(t, j.ID), func(m jobs.Message) bool {
				return m.Status == jobs.MessageSuccess && strings.HasPrefix(m.Text, h.Hostname+": ") && strings.Contains(m.Text, "MB of memory")
			}) {
				t.Errorf("no facts message for %s: %v", h.Hostname, e.messages(t, j.ID))
			}
		}

		x := e.run(t, c.ID, "exec", map[string]any{"command": `set -- $SSH_CONNECTION; echo "out-$3"; echo "err-$3" >&2`})
		if x.Status != jobs.StatusFinished || x.Progress != 100 {
			t.Fatalf("exec: %s %q progress %d", x.Status, x.StatusText, x.Progress)
		}
		r := resultOf(t, x)
		if len(r.Nodes) != 3 || len(r.Responded) != 3 || len(r.Unreachable)+len(r.Unapproved)+len(r.Pending) != 0 {
			t.Fatalf("result: %s", x.Result)
		}
		for i, n := range r.Nodes {
			a := addrs[i]
			if n["hostname"] != a || n["exit_status"] != float64(0) || n["stdout"] != "out-"+a+"\n" || n["stderr"] != "err-"+a+"\n" ||
				n["error"] != "" || n["truncated"] != false || n["started"] == "" || n["ended"] == "" {
				t.Errorf("node %d: %v", i, n)
			}
			if _, err := time.Parse(jobs.TimeFormat, n["started"].(string)); err != nil {
				t.Errorf("node %d started: %v", i, err)
			}
			if !e.hasMessage(t, x.ID, jobs.MessageSuccess, a+": out-"+a) || !e.hasMessage(t, x.ID, jobs.MessageWarning, a+": err-"+a) {
				t.Errorf("output of %s is not in the job log: %v", a, e.messages(t, x.ID))
			}
		}
	})
}

func TestRegisterClusterFailures(t *testing.T) {
	sshd := services.SharedSSHD(t)
	e := newNodeEnv(t, services.OpenSQLite(t))
	t.Run("unreachable node stores nothing", func(t *testing.T) {
		// Nothing listens on 127.0.0.99.
		j := e.run(t, 0, "register_cluster", registerJobData("broken", sshd, []string{sshd.Addrs[3], sshd.Addrs[4], "127.0.0.99"}, nil))
		if j.Status != jobs.StatusFailed || !strings.Contains(j.StatusText, "1 of 3 nodes failed: 127.0.0.99 unreachable: cannot connect") {
			t.Fatalf("register: %s %q", j.Status, j.StatusText)
		}
		if list, err := e.inv.List(context.Background()); err != nil || len(list) != 0 {
			t.Fatalf("a failed registration stored clusters: %v %v", list, err)
		}
		if e.hostKeyKnown(t, sshd, sshd.Addrs[3]) || e.hostKeyKnown(t, sshd, sshd.Addrs[4]) {
			t.Error("a failed registration left host keys behind")
		}
		r := resultOf(t, j)
		if len(r.Nodes) != 3 || r.Nodes[0]["error"] != nil || !strings.Contains(fmt.Sprint(r.Nodes[2]["error"]), "unreachable") {
			t.Errorf("result: %s", j.Result)
		}
		if !e.hasMessage(t, j.ID, jobs.MessageFailed, j.StatusText) {
			t.Errorf("the reason is not in the log: %v", e.messages(t, j.ID))
		}
	})
	t.Run("name taken", func(t *testing.T) {
		e.register(t, "taken", sshd, sshd.Addrs[5:6], nil)
		j := e.run(t, 0, "add_cluster", registerJobData("taken", sshd, sshd.Addrs[6:7], nil))
		if j.Status != jobs.StatusFailed || !strings.Contains(j.StatusText, `a cluster named "taken" exists`) {
			t.Fatalf("second registration: %s %q", j.Status, j.StatusText)
		}
	})
	t.Run("login refused", func(t *testing.T) {
		j := e.run(t, 0, "register_cluster", registerJobData("nologin", sshd, sshd.Addrs[7:8], map[string]any{"ssh_user": "nosuchuser"}))
		if j.Status != jobs.StatusFailed || !strings.Contains(j.StatusText, "authentication refused") {
			t.Fatalf("register: %s %q", j.Status, j.StatusText)
		}
	})
}

func TestAddAndRemoveNodesAndClusters(t *testing.T) {
	sshd := services.SharedSSHD(t)
	e := newNodeEnv(t, services.OpenSQLite(t))
	a, b, extra := sshd.Addrs[8], sshd.Addrs[9], sshd.Addrs[10]
	c1 := e.register(t, "c1", sshd, []string{a, b}, nil)
	c2 := e.register(t, "c2", sshd, []string{b}, nil)

	added := e.run(t, c1.ID, "add_node", map[string]any{"node": map[string]any{"hostname": extra, "role": "arbiter", "tags": []string{"new"}}})
	if added.Status != jobs.StatusFinished {
		t.Fatalf("add_node: %s %q", added.Status, added.StatusText)
	}
	got, err := e.inv.Get(context.Background(), c1.ID)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := findHost(got, extra)
	if !ok || h.Status != hosts.HostOnline || h.Role != "arbiter" || h.CPUs < 1 || h.IP != extra || !slices.Equal(h.Tags, []string{"new"}) ||
		got.StatusText != "All 3 nodes are online." {
		t.Fatalf("added node: %+v in %+v", h, got)
	}
	if !e.hostKeyKnown(t, sshd, extra) {
		t.Fatal("add_node did not learn the host key")
	}

	failures := []struct {
		name    string
		cluster int64
		command string
		data    map[string]any
		want    string
	}{
		{name: "add a node twice", cluster: c1.ID, command: "add_node", data: map[string]any{"node": map[string]any{"hostname": extra}},
			want: fmt.Sprintf(`node %s is already in cluster "c1"`, extra)},
		{name: "add an unreachable node", cluster: c1.ID, command: "add_node", data: map[string]any{"node": map[string]any{"hostname": "127.0.0.98"}},
			want: "node 127.0.0.98 was not added: 1 of 1 nodes failed: 127.0.0.98 unreachable"},
		{name: "remove an unknown node", cluster: c1.ID, command: "remove_node", data: map[string]any{"node": map[string]any{"hostname": "127.0.0.98"}},
			want: `node 127.0.0.98 is not in cluster "c1"`},
		{name: "remove an unknown cluster", command: "remove_cluster", data: map[string]any{"cluster_id": 4242}, want: "cluster 4242: cluster was not found"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			j := e.run(t, tt.cluster, tt.command, tt.data)
			if j.Status != jobs.StatusFailed || !strings.Contains(j.StatusText, tt.want) {
				t.Fatalf("%s: %s %q, want FAILED with %q", tt.command, j.Status, j.StatusText, tt.want)
			}
		})
	}
	if got, _ := e.inv.Get(context.Background(), c1.ID); len(got.Hosts) != 3 {
		t.Fatalf("failed jobs changed the cluster: %+v", got.Hosts)
	}

	removed := e.run(t, c1.ID, "remove_node", map[string]any{"node": map[string]any{"hostname": extra}})
	if removed.Status != jobs.StatusFinished {
		t.Fatalf("remove_node: %s %q", removed.Status, removed.StatusText)
	}
	if got, _ := e.inv.Get(context.Background(), c1.ID); len(got.Hosts) != 2 || got.State != hosts.StateStarted {
		t.Fatalf("after remove_node: %+v", got)
	}
	if e.hostKeyKnown(t, sshd, extra) {
		t.Error("the key of a node no cluster uses is kept")
	}

	// Named in job_data only, as the reference's clients name clusters.
	gone := e.run(t, 0, "remove_cluster", map[string]any{"cluster_id": c1.ID})
	if gone.Status != jobs.StatusFinished {
		t.Fatalf("remove_cluster: %s %q", gone.Status, gone.StatusText)
	}
	if _, err := e.inv.Get(context.Background(), c1.ID); err == nil {
		t.Fatal("the cluster is still there")
	}
	if o := e.treeObject(t, "/"+c1.Name); o != nil {
		t.Errorf("the removed cluster's tree object stays: %+v", o)
	}
	if e.hostKeyKnown(t, sshd, a) || !e.hostKeyKnown(t, sshd, b) {
		t.Errorf("keys after remove_cluster: %s known %v (want false), %s known %v (c2 uses it)",
			a, e.hostKeyKnown(t, sshd, a), b, e.hostKeyKnown(t, sshd, b))
	}
	if j, err := e.svc.Get(context.Background(), added.ID); err != nil || j.ClusterID != c1.ID {
		t.Errorf("the removed cluster's job history: %v %v", j, err)
	}
	if j := e.run(t, c2.ID, "remove_cluster", map[string]any{}); j.Status != jobs.StatusFinished || e.hostKeyKnown(t, sshd, b) {
		t.Errorf("remove_cluster c2: %s %q; key of %s kept: %v", j.Status, j.StatusText, b, e.hostKeyKnown(t, sshd, b))
	}
}

// TestStrictHostKeyAfterRegistration: a node whose host key changes is
// refused by every command and by a new registration, until its cluster is
// removed (which forgets the key) and it is registered again.
func TestStrictHostKeyAfterRegistration(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.2", "127.0.0.3")
	e := newNodeEnv(t, services.OpenSQLite(t))
	c := e.register(t, "rekey", sshd, sshd.Addrs, nil)
	if j := e.run(t, c.ID, "exec", map[string]any{"command": "true"}); j.Status != jobs.StatusFinished {
		t.Fatalf("exec before: %s %q", j.Status, j.StatusText)
	}
	if err := sshd.RestartWithNewHostKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	j := e.run(t, c.ID, "exec", map[string]any{"command": "true", "execute_concurrently": true})
	if j.Status != jobs.StatusFailed || !strings.Contains(j.StatusText, "2 of 2 nodes failed: 127.0.0.2 unreachable: host key mismatch") {
		t.Fatalf("exec after the key changed: %s %q", j.Status, j.StatusText)
	}
	if r := resultOf(t, j); len(r.Unreachable) != 2 || !strings.Contains(fmt.Sprint(r.Nodes[1]["error"]), "host key mismatch") {
		t.Fatalf("result: %s", j.Result)
	}
	again := e.run(t, 0, "register_cluster", registerJobData("rekey2", sshd, sshd.Addrs, nil))
	if again.Status != jobs.StatusFailed || !strings.Contains(again.StatusText, "host key mismatch") {
		t.Fatalf("registration with a changed key: %s %q", again.Status, again.StatusText)
	}
	if j := e.run(t, c.ID, "remove_cluster", nil); j.Status != jobs.StatusFinished {
		t.Fatalf("remove_cluster: %s %q", j.Status, j.StatusText)
	}
	e.register(t, "rekey2", sshd, sshd.Addrs, nil)
	keys, err := e.keys.Lookup(context.Background(), sshd.Addr(0))
	if err != nil || len(keys) != 1 || ssh.FingerprintSHA256(keys[0]) != ssh.FingerprintSHA256(sshd.HostKey()) {
		t.Fatalf("key after registering again: %v %v", keys, err)
	}
}
