//go:build soak

package integration

import (
	"fmt"
	"testing"
	"time"
)

// TestSoakOutputStorm: every shape of the output storm as a recurring job
// (the 4096-byte line once crashed the controller again after each restart),
// for rounds of firings and a restart between them; the controller stays up
// and its memory bounded.
func TestSoakOutputStorm(t *testing.T) {
	c, admin, id := withCluster(t, "127.0.0.61", "soakstorm")
	for _, s := range outputStorm {
		mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,"job":{"title":%q,
			"recurrence":"@every 2s","job_spec":{"command":"exec","job_data":{"command":%q}}}}`, id, s.name, s.command)))
	}
	const rounds = 3
	want := 0
	failed := func() (ended, notFinished int) {
		list := mustOk(t, admin.call(t, "jobs", `{"operation":"getJobInstances","limit":1000}`))
		for _, j := range list.Reply["jobs"].([]any) {
			j := j.(map[string]any)
			if j["parent_job_id"] == float64(0) || !endedStatuses[j["status"].(string)] {
				continue
			}
			ended++
			if j["status"] != "FINISHED" {
				notFinished++
			}
		}
		return ended, notFinished
	}
	before := rssMiB(t, c.cmd.Process.Pid)
	for round := range rounds {
		want += 2 * len(outputStorm)
		waitFor(t, 5*time.Minute, func() error {
			if n, _ := failed(); n < want {
				return fmt.Errorf("%d storm jobs ended, want %d", n, want)
			}
			return nil
		})
		if exited, err := c.exitStatus(); exited {
			t.Fatalf("round %d: the controller exited: %v", round, err)
		}
		if round < rounds-1 {
			c.Restart()
			admin = c.session(t, "admin", adminPassword)
		}
	}
	ended, notFinished := failed()
	hwm := peakRSS(t, c.cmd.Process.Pid)
	fmt.Printf("output-storm: %d shapes recurring every 2 s, %d runs over %d restarts, %d not FINISHED, RSS %.0f MiB at start, peak %d MiB\n",
		len(outputStorm), ended, rounds-1, notFinished, before, hwm>>20)
	if notFinished > 0 {
		t.Errorf("%d storm runs did not finish", notFinished)
	}
	if hwm > 400<<20 {
		t.Errorf("peak resident memory %d MiB", hwm>>20)
	}
}
