package integration

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestStopDuringMonitorRound: SIGTERM while the health monitor is in the
// middle of a round (one node takes the connection and never answers)
// stops the controller cleanly: it exits 0, nothing used the database or
// an SSH pool after it was closed, and it says it stopped only once the job
// engine, which needs both, has.
func TestStopDuringMonitorRound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		addrs := make([]string, 10)
		for i := range addrs {
			addrs[i] = "127.0.6." + strconv.Itoa(i+1)
		}
		sshd := services.NewSSHDPerNode(t, addrs...)
		c := startController(t, controllerOptions{backend: b, args: []string{"--monitor-interval", "1s"}})
		admin := c.session(t, "admin", adminPassword)
		if id, job := admin.registerCluster(t, "stopping", sshd, sshd.Addrs, nil); id == 0 {
			t.Fatalf("register: %v", job)
		}

		// The last node hangs: its sshd is gone and the test holds the
		// monitor's next connection there unanswered, so the round is
		// still running when the signal comes.
		hung := len(addrs) - 1
		sshd.PauseNode(hung)
		accepted := holdConnections(t, net.JoinHostPort(sshd.Addrs[hung], strconv.Itoa(sshd.Port)))
		waitFor(t, 60*time.Second, func() error {
			select {
			case <-accepted:
				return nil
			default:
				return errors.New("the monitor has not connected to the hung node")
			}
		})

		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, func() error {
			if exited, _ := c.exitStatus(); !exited {
				return errors.New("cmon still running after SIGTERM")
			}
			return nil
		})
		log := c.Log()
		if _, err := c.exitStatus(); err != nil {
			t.Fatalf("cmon exited with %v after SIGTERM:\n%s", err, log)
		}
		for _, bad := range []string{"database is closed", "use of closed", "ssh client closed", "panic", "goroutine "} {
			if strings.Contains(log, bad) {
				t.Fatalf("the log has %q after a stop during a round:\n%s", bad, log)
			}
		}
		engine, stopped := strings.Index(log, "job engine stopped"), strings.LastIndex(log, "cmon stopped")
		if engine < 0 || stopped < engine {
			t.Fatalf("cmon said it stopped before its job engine did:\n%s", log)
		}
	})
}

// holdConnections listens on addr as a node whose sshd hangs: it takes
// connections and never answers them. The channel closes at the first one.
func holdConnections(t *testing.T, addr string) <-chan struct{} {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan struct{})
	go func() {
		var held []net.Conn
		defer func() {
			for _, conn := range held {
				conn.Close()
			}
		}()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			if len(held) == 0 {
				close(accepted)
			}
			held = append(held, conn)
		}
	}()
	return accepted
}
