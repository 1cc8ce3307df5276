package hosts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cmon-dev/cmon/hosts/remote"
)

// MonitorConfig configures the health monitor.
type MonitorConfig struct {
	// Interval between rounds over all clusters (default 30s); each round
	// starts up to a fifth earlier or later, so that controllers sharing a
	// database and many clusters do not check in lockstep.
	Interval time.Duration
	// Concurrency bounds the hosts checked at once in a cluster (default 10).
	Concurrency int
	// Timeout bounds one host's check (default 10s); a check that fails
	// for what may pass (a timeout, a lost connection) is tried once more.
	Timeout time.Duration
	// OfflineAfter is how many checks of a host must fail in a row before
	// it counts as offline (default DefaultOfflineAfter); a host already
	// offline stays so on its first failure.
	OfflineAfter int
	// Leads, when set, is asked before each round: among controllers sharing
	// a database only the one it answers true on checks the hosts, so each
	// host is checked once per round.
	Leads func(context.Context) (bool, error)
	// Alarms, when set, hears what each check found: alarms are raised and
	// cleared, and host status changes logged.
	Alarms *Alarms
	Log    *slog.Logger
}

// Monitor checks every host of every cluster over the pooled SSH connections
// and keeps host statuses and cluster states current.
type Monitor struct {
	inv *Inventory
	ssh Prober
	cfg MonitorConfig
	// led is when this controller last led a round, for the maintenance
	// periods that began or ended since (only the Run goroutine uses it).
	led time.Time
	// interval is cfg.Interval, changeable while running (SetInterval).
	interval atomic.Int64
	// beat is when the loop last went around or a round moved on to a
	// cluster (unix nanoseconds), 0 before Run: Healthy reads it.
	beat atomic.Int64
	// failed counts each host's checks failed in a row, by host id. It is
	// kept in memory: after a restart or a change of leader the count
	// starts over, which delays only a host's first going offline.
	mu     sync.Mutex
	failed map[int64]int
}

// DefaultOfflineAfter is OfflineAfter unless configured: with each check
// tried twice, one slow round never takes a host offline, and one that is
// down shows within one more interval.
const DefaultOfflineAfter = 2

// Prober runs a command on many nodes, as *remote.Client does.
type Prober interface {
	RunMany(ctx context.Context, targets []remote.Target, req remote.Request, opt remote.FanOut) *remote.FanOutResult
}

// NewMonitor makes a monitor; Run starts its rounds.
func NewMonitor(inv *Inventory, ssh Prober, cfg MonitorConfig) *Monitor {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = DefaultOfflineAfter
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Monitor{inv: inv, ssh: ssh, cfg: cfg, failed: map[int64]int{}}
	m.interval.Store(int64(cfg.Interval))
	return m
}

// SetInterval changes the interval between rounds from the next round on.
func (m *Monitor) SetInterval(d time.Duration) {
	if d > 0 {
		m.interval.Store(int64(d))
	}
}

// Run checks all clusters every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	for {
		m.beat.Store(time.Now().UnixNano())
		interval := time.Duration(m.interval.Load())
		jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(interval))
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval + jitter):
		}
		m.round(ctx)
	}
}

// round checks every cluster, the clusters one after another and each
// cluster's hosts concurrently, so a round's load stays bounded.
func (m *Monitor) round(ctx context.Context) {
	if m.cfg.Leads != nil {
		leads, err := m.cfg.Leads(ctx)
		if err != nil {
			m.cfg.Log.Warn("health monitor: find the leader", "err", err)
			return
		}
		if !leads {
			return // another controller checks the hosts this round
		}
	}
	if m.cfg.Alarms != nil {
		now := time.Now()
		if !m.led.IsZero() {
			if err := m.cfg.Alarms.LogTransitions(ctx, m.led, now); err != nil {
				m.cfg.Log.Warn("health monitor: maintenance periods", "err", err)
			}
		}
		m.led = now
	}
	clusters, err := m.inv.List(ctx)
	if err != nil {
		m.cfg.Log.Warn("health monitor: list clusters", "err", err)
		return
	}
	m.forget(clusters)
	for _, c := range clusters {
		if ctx.Err() != nil {
			return
		}
		m.beat.Store(time.Now().UnixNano()) // a long round is alive too
		// What the hosts answered (df output, exit statuses) is read under
		// Contain: a fault it triggers fails this cluster's check, not the
		// controller, and the next cluster is checked all the same.
		var err error
		if fault := remote.Contain(func() { _, err = m.CheckCluster(ctx, c) }); fault != nil {
			m.cfg.Log.Error("health monitor: checking a cluster failed in the controller",
				append([]any{"cluster_id", c.ID, "cluster", c.Name}, remote.FaultAttrs(fault)...)...)
			continue
		}
		if err != nil {
			m.cfg.Log.Warn("health monitor: check cluster", "cluster_id", c.ID, "cluster", c.Name, "err", err)
		}
	}
}

// ClusterHealth is what a check of one cluster found.
type ClusterHealth struct {
	Before, After string
	Hosts         []HostCheck
}

// CheckCluster checks each host of c, records the results and the derived
// cluster state, and logs a state change. A host that fails fewer checks in
// a row than OfflineAfter keeps its status and alarms; its check, returned,
// says what failed.
func (m *Monitor) CheckCluster(ctx context.Context, c *Cluster) (*ClusterHealth, error) {
	targets := make([]remote.Target, len(c.Hosts))
	for i, h := range c.Hosts {
		targets[i] = TargetOf(c, h)
	}
	checks := make([]HostCheck, len(c.Hosts))
	found := make([]finding, len(c.Hosts))
	settled := make([]HostCheck, 0, len(c.Hosts)) // the checks that set a status
	for i, n := range m.probe(ctx, targets) {
		h := c.Hosts[i]
		check := HostCheck{HostID: h.ID, At: time.Now().UTC()}
		found[i] = finding{failure: failureOf(n), disk: -1}
		failed := m.tally(h.ID, found[i].failure == "")
		switch {
		case failed == 0:
			check.Online, check.Message = true, "Up and running."
			if n.Result != nil {
				found[i].disk = diskUse(n.Result.Stdout)
			}
		case failed == 1:
			check.Message = "1 check failed: " + reasonOf(n)
		default:
			check.Message = fmt.Sprintf("%d checks in a row failed, the last: %s", failed, reasonOf(n))
		}
		checks[i] = check
		if failed > 0 && failed < m.cfg.OfflineAfter && h.Status != HostOffline {
			found[i].pending = true
			m.cfg.Log.Warn("host check failed", "cluster_id", c.ID, "host", h.Hostname, "failed_in_a_row", failed,
				"offline_after", m.cfg.OfflineAfter, "err", reasonOf(n))
			continue
		}
		settled = append(settled, check)
	}
	before, after, err := m.inv.RecordChecks(ctx, c.ID, settled)
	if err != nil {
		return nil, err
	}
	if before != after {
		m.cfg.Log.Warn("cluster state changed", "cluster_id", c.ID, "cluster", c.Name, "from", before, "to", after)
	}
	if m.cfg.Alarms != nil {
		if err := m.alarm(ctx, c, checks, found, before, after); err != nil {
			m.cfg.Log.Warn("health monitor: alarms", "cluster_id", c.ID, "err", err)
		}
	}
	return &ClusterHealth{Before: before, After: after, Hosts: checks}, nil
}

// finding is what a host's check implies beyond its status.
type finding struct {
	failure string // the alarm the host raises once offline, "" when it answered
	disk    int    // the root file system's use in percent, -1 unknown
	pending bool   // failed, too few times in a row to change anything yet
}

// probe checks every target, and once more each whose check failed for what
// may pass (a timeout, a lost connection), so that a slow answer under load
// is not yet a failure. Refused credentials and keys are not tried again:
// that would only add a failed login on the node.
func (m *Monitor) probe(ctx context.Context, targets []remote.Target) []remote.NodeResult {
	run := func(targets []remote.Target) []remote.NodeResult {
		return m.ssh.RunMany(ctx, targets, remote.Request{Command: checkCommand, Timeout: m.cfg.Timeout},
			remote.FanOut{Concurrent: true, Parallelism: m.cfg.Concurrency}).Nodes
	}
	nodes := run(targets)
	var again []int
	for i, n := range nodes {
		if failureOf(n) == AlarmHostUnreachable {
			again = append(again, i)
		}
	}
	if len(again) == 0 || ctx.Err() != nil {
		return nodes
	}
	retry := make([]remote.Target, len(again))
	for j, i := range again {
		retry[j] = targets[i]
	}
	for j, n := range run(retry) {
		nodes[again[j]] = n
	}
	return nodes
}

// failureOf is the alarm a failed check raises, "" for an answer.
func failureOf(n remote.NodeResult) string {
	switch {
	case n.Outcome == remote.Responded && n.Err == nil:
		return ""
	case errors.Is(n.Err, remote.ErrAuth):
		return AlarmSSHAuthFailed
	case errors.Is(n.Err, remote.ErrHostKey):
		return AlarmHostKeyChanged
	case errors.Is(n.Err, remote.ErrSetup):
		return AlarmSSHKeyUnusable
	}
	return AlarmHostUnreachable
}

// reasonOf says why a check failed.
func reasonOf(n remote.NodeResult) string {
	if n.Err != nil {
		return n.Err.Error()
	}
	return string(n.Outcome)
}

// tally counts a host's check: an answer ends its failures in a row, a
// failure adds one; it returns the failures in a row.
func (m *Monitor) tally(hostID int64, answered bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if answered {
		delete(m.failed, hostID)
		return 0
	}
	m.failed[hostID]++
	return m.failed[hostID]
}

// forget drops the counts of hosts no longer in any cluster.
func (m *Monitor) forget(clusters []*Cluster) {
	kept := map[int64]bool{}
	for _, c := range clusters {
		for _, h := range c.Hosts {
			kept[h.ID] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.failed {
		if !kept[id] {
			delete(m.failed, id)
		}
	}
}

// hostAlarms are the alarms a host check raises, each with what it says.
var hostAlarms = map[string]struct{ component, title, recommendation string }{
	AlarmHostUnreachable: {"Network", "Host %s is unreachable", "Check that the host runs and that its SSH server answers from the controller."},
	AlarmSSHAuthFailed:   {"SshConnection", "SSH authentication to %s fails", "Check the cluster's SSH user and key, and the host's authorized_keys."},
	AlarmSSHKeyUnusable: {"SshConnection", "cmon cannot use its SSH key for %s", "Check that the cluster's ssh_keyfile exists on " +
		"the controller and that the user cmon runs as can read it."},
	AlarmHostKeyChanged: {"SshConnection", "The SSH host key of %s changed", "If the host was reinstalled, remove it and add it again to trust " +
		"its new key; otherwise the host may be impersonated: investigate before anything runs on it."},
}

// alarm raises and clears the alarms a check implies and logs the host
// status and cluster state changes; a pending failure changes nothing.
func (m *Monitor) alarm(ctx context.Context, c *Cluster, checks []HostCheck, found []finding, before, after string) error {
	a := m.cfg.Alarms
	open, err := a.Open(ctx, c.ID)
	if err != nil {
		return err
	}
	for i, check := range checks {
		h := c.Hosts[i]
		if found[i].pending {
			continue
		}
		if was := h.Status == HostOnline; was != check.Online {
			severity, text := LogInfo, fmt.Sprintf("Host %s is online.", h.Hostname)
			if !check.Online {
				severity, text = LogWarning, fmt.Sprintf("Host %s is offline: %s", h.Hostname, check.Message)
			}
			a.Log(ctx, c.ID, h.Hostname, severity, "Node", text)
		}
		for typ, say := range hostAlarms {
			if typ != found[i].failure {
				if open[h.ID][typ] {
					if err := a.Clear(ctx, c.ID, h.ID, typ, ""); err != nil {
						return err
					}
				}
				continue
			}
			if err := a.Raise(ctx, Alarm{ClusterID: c.ID, HostID: h.ID, Hostname: h.Hostname, Type: typ, Component: say.component,
				Severity: SeverityCritical, Title: fmt.Sprintf(say.title, h.Hostname), Message: check.Message,
				Recommendation: say.recommendation}); err != nil {
				return err
			}
		}
	}
	for i, f := range found {
		if err := m.diskAlarm(ctx, c, c.Hosts[i], f.disk, open[c.Hosts[i].ID][AlarmDiskFull]); err != nil {
			return err
		}
	}
	if before != after {
		a.Log(ctx, c.ID, "", LogWarning, "Cluster", fmt.Sprintf("Cluster %s is %s (was %s).", c.Name, after, before))
	}
	raise, clear := "", []string{AlarmClusterDegraded, AlarmClusterFailure}
	switch after {
	case StateDegraded:
		raise, clear = AlarmClusterDegraded, []string{AlarmClusterFailure}
	case StateFailure:
		raise, clear = AlarmClusterFailure, []string{AlarmClusterDegraded}
	}
	for _, typ := range clear {
		if !open[0][typ] {
			continue
		}
		if err := a.Clear(ctx, c.ID, 0, typ, ""); err != nil {
			return err
		}
	}
	if raise == "" {
		return nil
	}
	alarm := Alarm{ClusterID: c.ID, Type: raise, Component: "Cluster", Severity: SeverityWarning,
		Title: "Cluster " + c.Name + " is degraded", Message: fmt.Sprintf("Cluster %s is %s.", c.Name, after),
		Recommendation: "Bring the offline hosts back, or remove them from the cluster."}
	if raise == AlarmClusterFailure {
		alarm.Severity, alarm.Title = SeverityCritical, "Cluster "+c.Name+" has failed"
	}
	return a.Raise(ctx, alarm)
}

// Healthy tells whether the monitor runs: its loop went around, or it
// started checking a cluster, within three intervals plus the time bound of
// a host's check and its retry (whether or not this controller leads the
// rounds).
func (m *Monitor) Healthy(context.Context) error {
	beat := m.beat.Load()
	if beat == 0 {
		return errors.New("the health monitor has not started")
	}
	if since := time.Since(time.Unix(0, beat)); since > 3*time.Duration(m.interval.Load())+2*m.cfg.Timeout {
		return fmt.Errorf("the health monitor's last round began %s ago", since.Round(time.Second))
	}
	return nil
}

// checkCommand is each round's check: an answer proves the host up, and
// tells how full its root file system is.
const checkCommand = "df -P / 2>/dev/null | tail -n 1"

// Disk use from which an alarm is raised: a warning, and critical past the
// second.
const (
	diskWarning  = 90
	diskCritical = 95
)

// diskUse reads the use percentage off df -P's line, -1 when it is not one.
func diskUse(out []byte) int {
	fields := strings.Fields(string(out))
	if len(fields) < 5 {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSuffix(fields[4], "%"))
	if err != nil || n < 0 || n > 100 {
		return -1
	}
	return n
}

// diskAlarm raises the disk alarm of a host whose root file system is
// nearly full, and clears it (open) once it is not.
func (m *Monitor) diskAlarm(ctx context.Context, c *Cluster, h Host, use int, open bool) error {
	switch {
	case use < 0:
		return nil // not known this round: the alarm stays as it is
	case use < diskWarning:
		if open {
			return m.cfg.Alarms.Clear(ctx, c.ID, h.ID, AlarmDiskFull, "")
		}
		return nil
	}
	severity := SeverityWarning
	if use >= diskCritical {
		severity = SeverityCritical
	}
	return m.cfg.Alarms.Raise(ctx, Alarm{ClusterID: c.ID, HostID: h.ID, Hostname: h.Hostname, Type: AlarmDiskFull, Component: "Host",
		Severity: severity, Title: fmt.Sprintf("The root file system of %s is %d%% full", h.Hostname, use),
		Message: fmt.Sprintf("df reports %d%% of / in use on %s.", use, h.Hostname), Recommendation: "Free space on the host or grow its file system."})
}
