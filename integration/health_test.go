package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestHostOfflineAfterChecksInARow: with the default rule a node whose sshd
// stops fails one round's check (tried twice) without changing anything,
// and goes offline on the second; the controller log and the alarm say
// how many checks failed in a row; back, it is online and the alarm clears.
func TestHostOfflineAfterChecksInARow(t *testing.T) {
	sshd := services.NewSSHDPerNode(t, "127.0.0.137", "127.0.0.138")
	down := sshd.Addrs[1]
	c := startController(t, controllerOptions{args: []string{"--monitor-interval", "1s"}})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "slowly", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("register: %v", job)
	}
	unreachable := func() map[string]any {
		r := mustOk(t, admin.call(t, "alarm", fmt.Sprintf(`{"operation":"getAlarms","cluster_id":%d}`, id)))
		for _, x := range r.Reply["alarms"].([]any) {
			if a := x.(map[string]any); a["hostname"] == down && a["type_name"] == "HostUnreachable" {
				return a
			}
		}
		return nil
	}

	sshd.PauseNode(1)
	// Two rounds of a check and its retry: quick while the stopped node
	// refuses connections, up to 10s a try were it to hang.
	waitFor(t, 90*time.Second, func() error {
		if unreachable() == nil {
			return fmt.Errorf("no alarm for %s", down)
		}
		return nil
	})
	const inARow = "2 checks in a row failed, the last: "
	if a := unreachable(); !strings.HasPrefix(fmt.Sprint(a["message"]), inARow) {
		t.Fatalf("the alarm does not say how many checks failed: %v", a)
	}
	// The first failed round left the host as it was, and said so.
	if !strings.Contains(c.Log(), "host check failed") || !strings.Contains(c.Log(), "failed_in_a_row=1") {
		t.Fatalf("the first failed check is not logged:\n%s", c.Log())
	}
	logs := mustOk(t, admin.call(t, "log", fmt.Sprintf(`{"operation":"getLogEntries","cluster_id":%d,"limit":500}`, id)))
	if !strings.Contains(logs.Raw, "Host "+down+" is offline: "+inARow) {
		t.Fatalf("the controller log does not say how many checks failed: %s", logs.Raw)
	}
	info := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)))
	if state := info.Reply["cluster"].(map[string]any)["state"]; state != "DEGRADED" {
		t.Fatalf("cluster state with one of two nodes down: %v", state)
	}

	if err := sshd.ResumeNode(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() error {
		if unreachable() != nil {
			return fmt.Errorf("the alarm for %s is still open", down)
		}
		info := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)))
		if state := info.Reply["cluster"].(map[string]any)["state"]; state != "STARTED" {
			return fmt.Errorf("cluster state %v", state)
		}
		return nil
	})
}
