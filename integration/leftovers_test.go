package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestSurvivorEndsLeftoverCommands: when a controller dies mid-job and does
// not come back, the survivor that fails its job ends the job's commands on
// the nodes as a kill would, and says so in the job's log.
func TestSurvivorEndsLeftoverCommands(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.62")
	shared := backend{name: "mariadb", dsn: sharedDSN(t)}
	args := []string{"--controller-timeout", "3s"}
	runner := startController(t, controllerOptions{backend: shared, args: args})
	// The survivor runs no jobs itself: what it does here, it does as the
	// controller that noticed the other one is gone.
	survivor := startController(t, controllerOptions{backend: shared, args: args, env: []string{"CMON_JOB_WORKERS=0"}})
	admin := runner.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "leftovers", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("registration: %v", job)
	}
	marker := fmt.Sprintf("sleep 300.7%d", time.Now().UnixNano()%1_000_000_000)
	jobID := admin.createJob(t, id, "exec", map[string]any{"command": marker + "; echo never"})
	admin.waitJob(t, jobID, 20*time.Second, "RUNNING")
	pgrepSeen(t, marker)
	runner.Kill()

	other := survivor.session(t, "admin", adminPassword)
	mustStatus(t, other.waitJob(t, jobID, time.Minute), "FAILED")
	waitFor(t, time.Minute, func() error {
		log := mustOk(t, other.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"limit":-1}`, jobID)))
		if !strings.Contains(log.Raw, "127.0.0.62: the command left running when the controller stopped (process group ") ||
			!strings.Contains(log.Raw, "was ended (TERM, then KILL after 5 s)") {
			return fmt.Errorf("the job's log does not say its command was ended: %.2000s", log.Raw)
		}
		return nil
	})
	pgrepGone(t, marker)
}
