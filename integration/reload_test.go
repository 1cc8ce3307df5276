package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestHangupReloadsLiveSettings: SIGHUP re-reads the configuration file with
// a job running: the log level changes at once, the job and the session go
// on, and a key that needs a restart is named as such.
func TestHangupReloadsLiveSettings(t *testing.T) {
	sshd := services.NewSSHD(t, "127.0.0.41")
	config := filepath.Join(t.TempDir(), "cmon.conf")
	write := func(level, idle string) {
		t.Helper()
		body := fmt.Sprintf("CMON_LOG_LEVEL=%q\nCMON_SESSION_IDLE_TIMEOUT=%q\n", level, idle)
		if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("info", "1h")
	c := startController(t, controllerOptions{logLevel: "config", args: []string{"--config", config}})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "reload", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("register: %v", job)
	}
	jobID := admin.createJob(t, id, "exec", map[string]any{"command": "sleep 3", "timeout_sec": 60})
	admin.waitJob(t, jobID, 30*time.Second, "RUNNING")
	if strings.Contains(c.Log(), "rpc request") {
		t.Fatal("debug lines at level info")
	}

	write("debug", "2h")
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if !strings.Contains(c.Log(), "configuration reloaded") {
			return fmt.Errorf("no reload logged")
		}
		return nil
	})
	log := c.Log()
	if !strings.Contains(log, "applied=[CMON_LOG_LEVEL]") || !strings.Contains(log, "need_restart=[CMON_SESSION_IDLE_TIMEOUT]") {
		t.Fatalf("the reload does not say what it applied and what needs a restart:\n%s", log)
	}
	mustOk(t, admin.call(t, "users", `{"operation":"whoAmI"}`)) // the session lives on
	waitFor(t, 10*time.Second, func() error {
		if !strings.Contains(c.Log(), "rpc request") {
			return fmt.Errorf("no debug line after the level changed")
		}
		return nil
	})
	if done := admin.waitJob(t, jobID, 60*time.Second); done["status"] != "FINISHED" {
		t.Fatalf("the job in flight: %v", done)
	}
}
