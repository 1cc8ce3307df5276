package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/fleet"
)

// TestControllersShareTheMonitor: three controllers on one MariaDB list one
// another, the health monitor checks each host once per round among them,
// and when the leader dies it drops off the list and another takes over.
func TestControllersShareTheMonitor(t *testing.T) {
	nodes, err := fleet.Start(context.Background(), t.TempDir(), fleet.Addrs(5), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer nodes.Stop()
	shared := backend{name: "mariadb", dsn: sharedDSN(t)}
	const interval = time.Second
	args := []string{"--monitor-interval", interval.String(), "--controller-timeout", "3s"}
	var ctrls []*controller
	for range 3 {
		ctrls = append(ctrls, startController(t, controllerOptions{backend: shared, args: args}))
	}
	admin := ctrls[0].session(t, "admin", adminPassword)
	var list []any
	for _, c := range ctrls {
		s := &session{c: c, jar: admin.jar}
		r := mustOk(t, s.call(t, "host", `{"operation":"getControllers"}`))
		list = r.Reply["controllers"].([]any)
	}
	leader, ids := "", map[string]bool{}
	for _, x := range list {
		c := x.(map[string]any)
		ids[c["controller_id"].(string)] = true
		if c["is_monitor_leader"] == true {
			leader = c["controller_id"].(string)
		}
		if c["version"] == "" || c["port"].(float64) == 0 || c["last_heartbeat"] == "" {
			t.Fatalf("controller without its details: %v", c)
		}
	}
	if len(ids) != 3 || leader == "" {
		t.Fatalf("getControllers: %v", list)
	}

	admin.registerFleet(t, "shared", nodes)

	// Each host is checked once per round: over a window, no more rounds
	// than the shortest interval (a fifth is jitter) allows, where three
	// controllers each checking would triple the count.
	checkedOncePerRound := func(what string) {
		t.Helper()
		base := map[string]int64{}
		for _, a := range nodes.Addrs {
			base[a] = nodes.CommandsOn(a)
		}
		start := time.Now()
		waitFor(t, 60*time.Second, func() error {
			for _, a := range nodes.Addrs {
				if n := nodes.CommandsOn(a) - base[a]; n < 4 {
					return fmt.Errorf("%s: host %s checked %d times", what, a, n)
				}
			}
			return nil
		})
		bound := int64(time.Since(start)/(interval*4/5)) + 2
		for _, a := range nodes.Addrs {
			if n := nodes.CommandsOn(a) - base[a]; n > bound {
				t.Fatalf("%s: host %s checked %d times in %s: more than once per round", what, a, n, time.Since(start))
			}
		}
	}
	checkedOncePerRound("three controllers")

	var leaderCtrl *controller
	var survivor *session
	for _, c := range ctrls {
		r := mustOk(t, (&session{c: c, jar: admin.jar}).call(t, "controller", `{"operation":"getSystemInfo"}`))
		if r.Reply["node_id"] == leader {
			leaderCtrl = c
		} else {
			survivor = &session{c: c, jar: admin.jar}
		}
	}
	if leaderCtrl == nil {
		t.Fatal("no controller says it is the leader")
	}
	leaderCtrl.Kill()
	waitFor(t, 30*time.Second, func() error {
		r := mustOk(t, survivor.call(t, "host", `{"operation":"getControllers"}`))
		left := r.Reply["controllers"].([]any)
		newLeader := false
		for _, x := range left {
			c := x.(map[string]any)
			if c["controller_id"] == leader {
				return fmt.Errorf("the killed leader is still listed")
			}
			newLeader = newLeader || c["is_monitor_leader"] == true
		}
		if len(left) != 2 || !newLeader {
			return fmt.Errorf("controllers: %v", left)
		}
		return nil
	})
	checkedOncePerRound("after the leader died")
	status := mustOk(t, survivor.call(t, "controller", `{"operation":"getStatus"}`))
	if status.Reply["status"] != "ok" {
		t.Fatalf("getStatus: %s", status.Raw)
	}
}

// registerFleet registers every node of a fleet as a cluster.
func (s *session) registerFleet(t *testing.T, name string, nodes *fleet.Fleet) {
	t.Helper()
	var hosts []map[string]any
	for _, a := range nodes.Addrs {
		hosts = append(hosts, map[string]any{"hostname": a, "port": 3306})
	}
	id := s.createJob(t, 0, "register_cluster", map[string]any{"cluster_name": name, "cluster_type": "galera",
		"ssh_user": nodes.User, "ssh_keyfile": nodes.ClientKey, "ssh_port": nodes.Port, "nodes": hosts})
	if job := s.waitJob(t, id, 60*time.Second); job["status"] != "FINISHED" {
		t.Fatalf("register %s: %v", name, job)
	}
}
