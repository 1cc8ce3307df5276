package hosts

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/integration/services"
)

func TestDiskUse(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want int
	}{
		{name: "df -P line", out: "/dev/sda1 41152736 30000000 9039124 77% /\n", want: 77},
		{name: "full", out: "overlay 100 100 0 100% /", want: 100},
		{name: "no output", out: "", want: -1},
		{name: "not df", out: "hello world", want: -1},
		{name: "garbage percentage", out: "a b c d xx% /", want: -1},
		{name: "out of range", out: "a b c d 140% /", want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diskUse([]byte(tt.out)); got != tt.want {
				t.Errorf("diskUse(%q) = %d, want %d", tt.out, got, tt.want)
			}
		})
	}
}

// scripted answers each check with the next of its outcomes: "ok",
// "timeout" or "auth"; a check past them is an error of the test.
type scripted struct {
	t    *testing.T
	mu   sync.Mutex
	next []string
}

func (s *scripted) RunMany(_ context.Context, targets []remote.Target, _ remote.Request, _ remote.FanOut) *remote.FanOutResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &remote.FanOutResult{Nodes: make([]remote.NodeResult, len(targets))}
	for i, target := range targets {
		if len(s.next) == 0 {
			s.t.Errorf("a check of %s beyond the script", target.Addr())
			out.Nodes[i] = remote.NodeResult{Target: target, Outcome: remote.Pending}
			continue
		}
		outcome := s.next[0]
		s.next = s.next[1:]
		switch outcome {
		case "ok":
			out.Nodes[i] = remote.NodeResult{Target: target, Outcome: remote.Responded,
				Result: &remote.Result{Stdout: []byte("/dev/sda1 100 50 50 50% /\n")}}
		case "timeout":
			out.Nodes[i] = remote.NodeResult{Target: target, Outcome: remote.Unreachable,
				Err: fmt.Errorf("%s: %w", target.Addr(), remote.ErrTimeout)}
		case "auth":
			out.Nodes[i] = remote.NodeResult{Target: target, Outcome: remote.Unreachable,
				Err: fmt.Errorf("%s: %w", target.Addr(), remote.ErrAuth)}
		}
	}
	return out
}

func (s *scripted) left() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// TestMonitorOfflineRule: a host goes offline only after OfflineAfter
// checks failed in a row, each tried once more within its round unless the
// node refused the login; an answer starts the count over; the log and the
// alarm say how many checks failed.
func TestMonitorOfflineRule(t *testing.T) {
	tests := []struct {
		name         string
		offlineAfter int // 0: the default
		// rounds are the outcomes of each round's checks, its retry included.
		rounds      [][]string
		wantStatus  string
		wantState   string
		wantMessage string // of the last round's check
		wantAlarm   string // the open alarm on the host, "" none
	}{
		{name: "one failed round does not flip", rounds: [][]string{{"ok"}, {"timeout", "timeout"}},
			wantStatus: HostOnline, wantState: StateStarted, wantMessage: "1 check failed: 127.0.0.4:22: timed out"},
		{name: "failed rounds in a row flip", rounds: [][]string{{"ok"}, {"timeout", "timeout"}, {"timeout", "timeout"}},
			wantStatus: HostOffline, wantState: StateFailure, wantMessage: "2 checks in a row failed, the last: 127.0.0.4:22: timed out",
			wantAlarm: AlarmHostUnreachable},
		{name: "an answer starts the count over", rounds: [][]string{{"ok"}, {"timeout", "timeout"}, {"ok"}, {"timeout", "timeout"}},
			wantStatus: HostOnline, wantState: StateStarted, wantMessage: "1 check failed: 127.0.0.4:22: timed out"},
		{name: "an answered retry does not count", rounds: [][]string{{"ok"}, {"timeout", "ok"}, {"timeout", "timeout"}},
			wantStatus: HostOnline, wantState: StateStarted, wantMessage: "1 check failed: 127.0.0.4:22: timed out"},
		{name: "offline after one flips at once", offlineAfter: 1, rounds: [][]string{{"ok"}, {"timeout", "timeout"}},
			wantStatus: HostOffline, wantState: StateFailure, wantMessage: "1 check failed: 127.0.0.4:22: timed out",
			wantAlarm: AlarmHostUnreachable},
		{name: "a refused login is not retried", rounds: [][]string{{"ok"}, {"auth"}, {"auth"}},
			wantStatus: HostOffline, wantState: StateFailure, wantMessage: "2 checks in a row failed, the last: 127.0.0.4:22: authentication refused",
			wantAlarm: AlarmSSHAuthFailed},
		{name: "a host never seen waits too", rounds: [][]string{{"timeout", "timeout"}},
			wantStatus: HostUnknown, wantMessage: "1 check failed: 127.0.0.4:22: timed out"},
		{name: "three rounds say three", rounds: [][]string{{"ok"}, {"timeout", "timeout"}, {"timeout", "timeout"}, {"timeout", "timeout"}},
			wantStatus: HostOffline, wantState: StateFailure, wantMessage: "3 checks in a row failed, the last: 127.0.0.4:22: timed out",
			wantAlarm: AlarmHostUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := services.OpenSQLite(t)
			inv, alarms := NewInventory(db), NewAlarms(db, time.Hour, nil)
			c := &Cluster{Name: "c1", Type: ClusterGeneric, SSHUser: "cmon", SSHPort: 22, Hosts: []Host{{Hostname: "127.0.0.4"}}}
			if err := inv.Create(ctx, c); err != nil {
				t.Fatal(err)
			}
			probe := &scripted{t: t}
			m := NewMonitor(inv, probe, MonitorConfig{OfflineAfter: tt.offlineAfter, Alarms: alarms,
				Log: slog.New(slog.DiscardHandler)})
			var health *ClusterHealth
			for i, round := range tt.rounds {
				probe.next = round
				c, err := inv.Get(ctx, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				if health, err = m.CheckCluster(ctx, c); err != nil {
					t.Fatal(err)
				}
				if left := probe.left(); len(left) > 0 {
					t.Fatalf("round %d left checks %v untried", i+1, left)
				}
			}
			got, err := inv.Get(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if h := got.Hosts[0]; h.Status != tt.wantStatus || (tt.wantState != "" && got.State != tt.wantState) {
				t.Errorf("host %s, cluster %s; want %s, %s", h.Status, got.State, tt.wantStatus, tt.wantState)
			}
			if msg := health.Hosts[0].Message; msg != tt.wantMessage {
				t.Errorf("check message %q, want %q", msg, tt.wantMessage)
			}
			list, err := alarms.List(ctx, AlarmFilter{ClusterIDs: []int64{c.ID}})
			if err != nil {
				t.Fatal(err)
			}
			var hostAlarms []Alarm
			for _, a := range list {
				if a.HostID != 0 {
					hostAlarms = append(hostAlarms, a)
				}
			}
			entries, _, err := alarms.Entries(ctx, LogFilter{ClusterIDs: []int64{c.ID}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			offline := 0
			for _, e := range entries {
				if strings.Contains(e.Message, "is offline") {
					offline++
					if !strings.HasPrefix(e.Message, "Host 127.0.0.4 is offline: ") || !strings.Contains(e.Message, " failed") {
						t.Errorf("log entry %q does not say how many checks failed", e.Message)
					}
				}
			}
			if tt.wantAlarm == "" {
				if len(hostAlarms) > 0 || offline > 0 {
					t.Fatalf("a host that is not offline raised %v and logged %d offline entries", hostAlarms, offline)
				}
				return
			}
			if len(hostAlarms) != 1 || hostAlarms[0].Type != tt.wantAlarm || hostAlarms[0].Message != tt.wantMessage {
				t.Fatalf("host alarms %+v, want one %s saying %q", hostAlarms, tt.wantAlarm, tt.wantMessage)
			}
			if offline != 1 {
				t.Fatalf("%d log entries say the host is offline, want 1", offline)
			}
		})
	}
}

// answersTooMuch answers every check, with one node too many for cluster
// "bad": the kind of answer that makes reading it fail.
type answersTooMuch struct{}

func (answersTooMuch) RunMany(_ context.Context, targets []remote.Target, _ remote.Request, _ remote.FanOut) *remote.FanOutResult {
	out := &remote.FanOutResult{}
	for _, target := range targets {
		out.Nodes = append(out.Nodes, remote.NodeResult{Target: target, Outcome: remote.Responded,
			Result: &remote.Result{Stdout: []byte("/dev/sda1 100 50 50 50% /\n")}})
	}
	if len(targets) > 0 && targets[0].Cluster == "bad" {
		out.Nodes = append(out.Nodes, out.Nodes[0])
	}
	return out
}

// TestRoundContainsFaults: a fault while reading one cluster's answers
// fails that cluster's check only; the round goes on to the next cluster.
func TestRoundContainsFaults(t *testing.T) {
	ctx := context.Background()
	inv := NewInventory(services.OpenSQLite(t))
	var good *Cluster
	for _, name := range []string{"bad", "good"} {
		c := &Cluster{Name: name, Type: ClusterGeneric, SSHUser: "cmon", SSHPort: 22, Hosts: []Host{{Hostname: "127.0.0.4"}}}
		if err := inv.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		good = c
	}
	var log strings.Builder
	m := NewMonitor(inv, answersTooMuch{}, MonitorConfig{Log: slog.New(slog.NewTextHandler(&log, nil))})
	m.round(ctx)
	got, err := inv.Get(ctx, good.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hosts[0].Status != HostOnline {
		t.Errorf("the cluster after the faulty one was not checked: host %s", got.Hosts[0].Status)
	}
	if !strings.Contains(log.String(), "checking a cluster failed in the controller") || !strings.Contains(log.String(), "cluster=bad") {
		t.Errorf("the fault was not logged:\n%s", log.String())
	}
}
