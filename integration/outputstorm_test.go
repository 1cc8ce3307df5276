package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// outputStorm is node output of every awkward shape, for the test and the
// soak drill.
var outputStorm = []struct {
	name    string
	command string
	// wantPiece, when set, is a message the job log must hold whole.
	wantPiece string
}{
	{name: "a line of exactly 4096 bytes", command: `printf "%4096s" | tr " " A`, wantPiece: strings.Repeat("A", 4096)},
	{name: "a line of 8192 bytes", command: `printf "%8192s" | tr " " B`, wantPiece: strings.Repeat("B", 4096)},
	{name: "a line of 12288 bytes and a newline", command: `printf "%12288s\n" | tr " " C`, wantPiece: strings.Repeat("C", 4096)},
	{name: "4096 bytes then a carriage return", command: `printf "%4096s\r" | tr " " D`},
	{name: "a 50 MB line", command: `head -c 50000000 /dev/zero | tr "\0" E`},
	{name: "random bytes folded at 1000", command: `head -c 2000000 /dev/urandom | fold -w 1000`},
	{name: "NUL bytes and escapes", command: `printf "\0\033[31mred\033[0m\r\0\n%4095s\xff" | tr " " F`},
}

// TestOutputStormLeavesControllerUp: node output of every awkward shape (a
// line of exactly 4096 bytes once panicked the controller) ends each job with its output cut and bounded, and
// the controller stays up with its memory bounded.
func TestOutputStormLeavesControllerUp(t *testing.T) {
	c, admin, id := withCluster(t, "127.0.0.60", "storm")
	const node = "127.0.0.60"
	tests := outputStorm
	jobs := make([]int64, len(tests))
	for i, tt := range tests {
		jobs[i] = admin.createJob(t, id, "exec", map[string]any{"command": tt.command})
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := admin.waitJob(t, jobs[i], 2*time.Minute)
			mustStatus(t, job, "FINISHED")
			log := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"limit":-1}`, jobs[i])))
			msgs, _ := log.Reply["messages"].([]any)
			if len(msgs) == 0 || len(msgs) > 1100 {
				t.Fatalf("%d log messages, want some and at most the cap (1000) and a few more", len(msgs))
			}
			found := tt.wantPiece == ""
			for _, m := range msgs {
				text, _ := m.(map[string]any)["message_text"].(string)
				if len(text) > 3*4096+len(node)+2 {
					t.Fatalf("a log message of %d bytes", len(text))
				}
				found = found || text == node+": "+tt.wantPiece
			}
			if !found {
				t.Fatalf("no message holds the %d-byte piece whole: %.500s", len(tt.wantPiece), log.Raw)
			}
			if len(log.Raw) > 16<<20 {
				t.Fatalf("the job log reply is %d bytes", len(log.Raw))
			}
		})
	}
	if exited, err := c.exitStatus(); exited {
		t.Fatalf("the controller exited: %v\n%s", err, c.Log())
	}
	mustOk(t, admin.call(t, "controller", `{"operation":"ping"}`))
	if strings.Contains(c.Log(), "panic") {
		t.Errorf("the controller logged a panic:\n%s", c.Log())
	}
	// The 50 MB line is read and dropped past the output limit, never held.
	if hwm := peakRSS(t, c.cmd.Process.Pid); hwm > 400<<20 {
		t.Errorf("the controller's peak resident memory was %d MiB", hwm>>20)
	}
}

// procStatus is a field of a process's /proc status in bytes, such as
// VmRSS (resident memory) or VmHWM (its peak).
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

// peakRSS is a process's peak resident set size in bytes.
func peakRSS(t testing.TB, pid int) int64 { return procStatus(t, pid, "VmHWM") }
