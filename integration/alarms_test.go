package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/fleet"
	"github.com/cmon-dev/cmon/integration/services"
)

// receiver is a webhook endpoint on loopback that keeps the events whose
// signature checks.
type receiver struct {
	mu     sync.Mutex
	events []map[string]any
	bad    int
}

func (r *receiver) count(event, hostname string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e["event"] == event && e["alarm"].(map[string]any)["hostname"] == hostname {
			n++
		}
	}
	return n
}

// TestAlarmsMaintenanceAndLog: a node whose sshd stops raises a critical
// alarm within a monitor round, counted and listed, posted to the webhook,
// cleared when it is back; a maintenance period holds the alarm back;
// ignoreAlarm hides one; the controller log tells the story; and each
// operation refuses a user without the privilege it needs.
func TestAlarmsMaintenanceAndLog(t *testing.T) {
	const secret = "webhook-s3cret"
	rec := &receiver{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		var e map[string]any
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if r.Header.Get("X-Cmon-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) || json.Unmarshal(body, &e) != nil {
			rec.bad++
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		rec.events = append(rec.events, e)
	}))
	defer hook.Close()

	sshd := services.NewSSHDPerNode(t, "127.0.0.51", "127.0.0.52")
	down := sshd.Addrs[1]
	c := startController(t, controllerOptions{args: []string{"--monitor-interval", "1s"},
		env: []string{"CMON_WEBHOOK_URL=" + hook.URL, "CMON_WEBHOOK_SECRET=" + secret}})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, "alarmed", sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("register: %v", job)
	}
	c.createUser(t, "quark", "pw-quark-12345")
	c.createUser(t, "rom", "pw-rom-123456")
	mustOk(t, admin.call(t, "tree", `{"operation":"addAcl","path":"/alarmed","acl":"user:rom:r--"}`))
	quark := c.session(t, "quark", "pw-quark-12345")
	rom := c.session(t, "rom", "pw-rom-123456")

	alarmOn := func(s *session, hostname, typ string) map[string]any {
		t.Helper()
		r := mustOk(t, s.call(t, "alarm", fmt.Sprintf(`{"operation":"getAlarms","cluster_id":%d}`, id)))
		for _, x := range r.Reply["alarms"].([]any) {
			a := x.(map[string]any)
			if a["hostname"] == hostname && a["type_name"] == typ {
				return a
			}
		}
		return nil
	}

	sshd.PauseNode(1)
	waitFor(t, 30*time.Second, func() error {
		if alarmOn(admin, down, "HostUnreachable") == nil {
			return fmt.Errorf("no alarm for %s", down)
		}
		return nil
	})
	alarm := alarmOn(rom, down, "HostUnreachable") // r on the cluster reads it
	if alarm["severity_name"] != "ALARM_CRITICAL" || alarm["title"] == "" || alarm["recommendation"] == "" {
		t.Fatalf("alarm: %v", alarm)
	}
	alarmID := int64(alarm["alarm_id"].(float64))
	stats := mustOk(t, admin.call(t, "alarm", fmt.Sprintf(`{"operation":"getStatistics","cluster_id":%d}`, id)))
	if s := stats.Reply["alarm_statistics"].([]any)[0].(map[string]any); s["critical"].(float64) < 1 {
		t.Fatalf("statistics: %s", stats.Raw)
	}
	mustOk(t, admin.call(t, "alarm", fmt.Sprintf(`{"operation":"getAlarm","alarm_id":%d}`, alarmID)))
	waitFor(t, 30*time.Second, func() error {
		if rec.count("alarm.raised", down) == 0 {
			return fmt.Errorf("the webhook heard no raise")
		}
		return nil
	})

	if err := sshd.ResumeNode(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if alarmOn(admin, down, "HostUnreachable") != nil || rec.count("alarm.cleared", down) == 0 {
			return fmt.Errorf("the alarm is not cleared yet")
		}
		return nil
	})

	// Maintenance holds the alarm back: recorded, not listed, not posted.
	deadline := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r := mustOk(t, admin.call(t, "maintenance", fmt.Sprintf(`{"operation":"addMaintenance","cluster_id":%d,"hostname":%q,
		"deadline":%q,"reason":"disk swap"}`, id, down, deadline)))
	uuid := r.Reply["UUID"].(string)
	current := mustOk(t, admin.call(t, "maintenance", fmt.Sprintf(`{"operation":"getCurrentMaintenance","cluster_id":%d}`, id)))
	if !strings.Contains(current.Raw, uuid) {
		t.Fatalf("getCurrentMaintenance: %s", current.Raw)
	}
	// As s9s maintenance --list reads it: a host's record names the host,
	// and each period its UUID and who set it.
	listing := decodeContract[s9sMaintenanceList](t, mustOk(t, admin.call(t, "maintenance",
		fmt.Sprintf(`{"operation":"getMaintenance","cluster_id":%d}`, id))).Raw)
	found := false
	for _, rec := range listing.Records {
		for _, m := range rec.Periods {
			found = found || (rec.Hostname == down && m.UUID == uuid && m.Username == "admin" && m.IsActive)
		}
	}
	if !found {
		t.Fatalf("s9s would list no active period of admin's on %s: %+v", down, listing)
	}
	raised := rec.count("alarm.raised", down)
	sshd.PauseNode(1)
	waitFor(t, 30*time.Second, func() error {
		info := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)))
		if !strings.Contains(info.Raw, "CmonHostOffLine") {
			return fmt.Errorf("the node is not offline yet")
		}
		return nil
	})
	if a := alarmOn(admin, down, "HostUnreachable"); a != nil {
		t.Fatalf("an alarm listed during maintenance: %v", a)
	}
	info := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)))
	for _, h := range nodesOf(info.Reply["cluster"]) {
		if (h["hostname"] == down) != (h["maintenance_mode_active"] == true) {
			t.Fatalf("host %v shows maintenance_mode_active %v", h["hostname"], h["maintenance_mode_active"])
		}
	}
	if rec.count("alarm.raised", down) != raised {
		t.Fatal("an alarm during maintenance reached the webhook")
	}

	// The cluster is degraded meanwhile: ignoring its alarm hides it.
	waitFor(t, 30*time.Second, func() error {
		if alarmOn(admin, "", "ClusterDegraded") == nil {
			return fmt.Errorf("no degraded alarm")
		}
		return nil
	})
	degraded := int64(alarmOn(admin, "", "ClusterDegraded")["alarm_id"].(float64))
	// As s9s cluster --list --long and --stat read the cluster.
	cl := decodeContract[struct {
		Cluster s9sCluster `json:"cluster"`
	}](t, mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id))).Raw).Cluster
	if cl.Owner.UserName != "admin" || cl.GroupOwner.GroupName != "admins" || cl.AlarmStatistics.Warning < 1 || cl.Databases == nil {
		t.Fatalf("the cluster as s9s reads it: %+v", cl)
	}
	if r := rom.call(t, "alarm", fmt.Sprintf(`{"operation":"ignoreAlarm","alarm_id":%d}`, degraded)); r.Status() != "AccessDenied" {
		t.Fatalf("rom (r only) ignored an alarm: %s", r.Raw)
	}
	mustOk(t, admin.call(t, "alarm", fmt.Sprintf(`{"operation":"ignoreAlarm","alarm_id":%d,"ignore":true}`, degraded)))
	if alarmOn(admin, "", "ClusterDegraded") != nil {
		t.Fatal("an ignored alarm is listed")
	}
	// As the reference web UI's backend reads the list: ignored is 0 or 1.
	listed := decodeContract[proxyGetAlarmsReply](t, mustOk(t, admin.call(t, "alarm",
		fmt.Sprintf(`{"operation":"getAlarms","cluster_id":%d,"with_ignored":true}`, id))).Raw)
	ignored := map[int64]int{}
	for _, a := range listed.Alarms {
		ignored[a.AlarmID] = a.Ignored
	}
	if v, ok := ignored[degraded]; !ok || v != 1 {
		t.Fatalf("getAlarms as cmon-proxy reads it: ignored %v, want the degraded alarm %d at 1", ignored, degraded)
	}
	if r := rom.call(t, "maintenance", fmt.Sprintf(`{"operation":"removeMaintenance","UUID":%q}`, uuid)); r.Status() != "AccessDenied" {
		t.Fatalf("rom (r only) removed a maintenance period: %s", r.Raw)
	}
	mustOk(t, admin.call(t, "maintenance", fmt.Sprintf(`{"operation":"removeMaintenance","UUID":%q}`, uuid)))

	// A node that comes back with another host key is refused, and said so.
	if err := sshd.RestartWithNewHostKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if alarmOn(admin, sshd.Addrs[0], "HostKeyChanged") == nil {
			return fmt.Errorf("no host key alarm for %s", sshd.Addrs[0])
		}
		return nil
	})

	// A short period: its start and end reach the log as they pass.
	soon := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	mustOk(t, admin.call(t, "maintenance", fmt.Sprintf(`{"operation":"addMaintenance","cluster_id":%d,
		"initiate":%q,"deadline":%q,"reason":"short"}`, id, time.Now().UTC().Format(time.RFC3339), soon)))
	waitFor(t, 30*time.Second, func() error {
		logs := mustOk(t, admin.call(t, "log", fmt.Sprintf(`{"operation":"getLogEntries","cluster_id":%d,"limit":500}`, id)))
		if !strings.Contains(logs.Raw, "Maintenance of the cluster ended.") {
			return fmt.Errorf("the short period's end is not logged")
		}
		return nil
	})
	logs := mustOk(t, admin.call(t, "log", fmt.Sprintf(`{"operation":"getLogEntries","cluster_id":%d,"limit":500}`, id)))
	for _, want := range []string{"registered", "is offline", "is online", "Alarm raised", "Maintenance of " + down} {
		if !strings.Contains(logs.Raw, want) {
			t.Errorf("the controller log lacks %q", want)
		}
	}
	// As the reference web UI's backend reads the log: the cluster and the
	// text in log_specifics.
	for _, e := range decodeContract[proxyGetLogsReply](t, logs.Raw).Logs {
		if e.LogSpecifics.ClusterID != id || e.LogSpecifics.MessageText == "" || e.LogClass == "" || e.LogOrigins.TvSec == 0 {
			t.Fatalf("a log entry as cmon-proxy reads it: %+v", e)
		}
	}

	refusals := []struct {
		name   string
		s      *session
		module string
		body   string
		want   string
	}{
		{name: "getAlarms", s: quark, module: "alarm", body: fmt.Sprintf(`{"operation":"getAlarms","cluster_id":%d}`, id), want: "AccessDenied"},
		{name: "getAlarm", s: quark, module: "alarm", body: fmt.Sprintf(`{"operation":"getAlarm","alarm_id":%d}`, alarmID), want: "ObjectNotFound"},
		{name: "getStatistics", s: quark, module: "alarm", body: fmt.Sprintf(`{"operation":"getStatistics","cluster_id":%d}`, id), want: "AccessDenied"},
		{name: "ignoreAlarm", s: rom, module: "alarm", body: fmt.Sprintf(`{"operation":"ignoreAlarm","alarm_id":%d}`, alarmID), want: "AccessDenied"},
		{name: "addMaintenance", s: rom, module: "maintenance", body: fmt.Sprintf(`{"operation":"addMaintenance","cluster_id":%d,"deadline":%q,"reason":"x"}`, id, deadline), want: "AccessDenied"},
		{name: "getMaintenance", s: quark, module: "maintenance", body: fmt.Sprintf(`{"operation":"getMaintenance","cluster_id":%d}`, id), want: "AccessDenied"},
		{name: "getCurrentMaintenance", s: quark, module: "maintenance", body: fmt.Sprintf(`{"operation":"getCurrentMaintenance","cluster_id":%d}`, id), want: "AccessDenied"},
		{name: "getNextMaintenance", s: quark, module: "maintenance", body: fmt.Sprintf(`{"operation":"getNextMaintenance","cluster_id":%d}`, id), want: "AccessDenied"},
		{name: "getLogEntries", s: quark, module: "log", body: fmt.Sprintf(`{"operation":"getLogEntries","cluster_id":%d}`, id), want: "AccessDenied"},
	}
	for _, tt := range refusals {
		t.Run("refused "+tt.name, func(t *testing.T) {
			if r := tt.s.call(t, tt.module, tt.body); r.Status() != tt.want {
				t.Fatalf("want %s: %s", tt.want, r.Raw)
			}
		})
	}
	// Without a cluster named, a user sees only what it may read.
	if r := mustOk(t, quark.call(t, "alarm", `{"operation":"getAlarms"}`)); r.Reply["total"].(float64) != 0 {
		t.Fatalf("quark sees alarms: %s", r.Raw)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.bad > 0 {
		t.Fatalf("%d webhook posts with a bad signature", rec.bad)
	}
}

// TestRecurringJobFailingRaisesAnAlarm: a recurring job whose last runs all
// failed raises a warning on its cluster, named after the recurring job.
func TestRecurringJobFailingRaisesAnAlarm(t *testing.T) {
	_, admin, id := withCluster(t, "127.0.0.53", "flaky")
	r := mustOk(t, admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
		"job":{"title":"nightly","recurrence":"@every 1s","job_spec":{"command":"fail","job_data":{"exit_code":2}}}}`, id)))
	template := int64(r.Reply["job"].(map[string]any)["job_id"].(float64))
	waitFor(t, 60*time.Second, func() error {
		r := mustOk(t, admin.call(t, "alarm", fmt.Sprintf(`{"operation":"getAlarms","cluster_id":%d}`, id)))
		for _, x := range r.Reply["alarms"].([]any) {
			a := x.(map[string]any)
			if a["type_name"] == "JobFailingRepeatedly" && a["subject"] == fmt.Sprintf("recurring job %d", template) {
				return nil
			}
		}
		return fmt.Errorf("no alarm for recurring job %d: %s", template, r.Raw)
	})
}

// TestDiskNearlyFullAlarm: a node whose root file system the monitor sees
// nearly full raises an alarm, critical past 95%, cleared once it is not.
func TestDiskNearlyFullAlarm(t *testing.T) {
	nodes, err := fleet.Start(t.Context(), t.TempDir(), fleet.Addrs(2), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer nodes.Stop()
	c := startController(t, controllerOptions{args: []string{"--monitor-interval", "1s"}})
	admin := c.session(t, "admin", adminPassword)
	admin.registerFleet(t, "disks", nodes)
	diskAlarm := func() map[string]any {
		r := mustOk(t, admin.call(t, "alarm", `{"operation":"getAlarms","cluster_name":"disks"}`))
		for _, x := range r.Reply["alarms"].([]any) {
			if a := x.(map[string]any); a["type_name"] == "DiskNearlyFull" {
				return a
			}
		}
		return nil
	}
	nodes.SetDiskUse(nodes.Addrs[0], 97)
	waitFor(t, 30*time.Second, func() error {
		if diskAlarm() == nil {
			return fmt.Errorf("no disk alarm")
		}
		return nil
	})
	if a := diskAlarm(); a["hostname"] != nodes.Addrs[0] || a["severity_name"] != "ALARM_CRITICAL" {
		t.Fatalf("disk alarm: %v", a)
	}
	nodes.SetDiskUse(nodes.Addrs[0], 50)
	waitFor(t, 30*time.Second, func() error {
		if a := diskAlarm(); a != nil {
			return fmt.Errorf("the disk alarm stays: %v", a)
		}
		return nil
	})
}

// TestClusterFailureAlarm: with every node down the cluster fails, which
// raises a critical alarm on the cluster itself; it clears when the nodes
// are back.
func TestClusterFailureAlarm(t *testing.T) {
	sshd, admin, id := monitoredCluster(t, "failing", "127.0.0.56", "127.0.0.57")
	failure := func() map[string]any {
		r := mustOk(t, admin.call(t, "alarm", fmt.Sprintf(`{"operation":"getAlarms","cluster_id":%d}`, id)))
		for _, x := range r.Reply["alarms"].([]any) {
			if a := x.(map[string]any); a["type_name"] == "ClusterFailure" {
				return a
			}
		}
		return nil
	}
	sshd.PauseNode(0)
	sshd.PauseNode(1)
	waitFor(t, 60*time.Second, func() error {
		if failure() == nil {
			return fmt.Errorf("no ClusterFailure alarm yet")
		}
		return nil
	})
	if a := failure(); a["severity_name"] != "ALARM_CRITICAL" || a["hostname"] != "" {
		t.Fatalf("cluster failure alarm: %v", a)
	}
	info := mustOk(t, admin.call(t, "clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_id":%d}`, id)))
	if state := info.Reply["cluster"].(map[string]any)["state"]; state != "FAILURE" {
		t.Fatalf("cluster state with every node down: %v", state)
	}
	for i := range 2 {
		if err := sshd.ResumeNode(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, func() error {
		if failure() != nil {
			return fmt.Errorf("the ClusterFailure alarm is still open")
		}
		return nil
	})
}

// TestSSHAuthenticationAlarm: a node that refuses cmon's key raises
// SshAuthenticationFailed, not a plain unreachable alarm; it clears once the
// key is accepted again.
func TestSSHAuthenticationAlarm(t *testing.T) {
	sshd, admin, id := monitoredCluster(t, "refusing", "127.0.0.58", "127.0.0.59")
	refused := sshd.Addrs[1]
	alarmTypes := func() map[string]bool {
		r := mustOk(t, admin.call(t, "alarm", fmt.Sprintf(`{"operation":"getAlarms","cluster_id":%d}`, id)))
		types := map[string]bool{}
		for _, x := range r.Reply["alarms"].([]any) {
			if a := x.(map[string]any); a["hostname"] == refused {
				types[fmt.Sprint(a["type_name"])] = true
			}
		}
		return types
	}
	keys, err := os.ReadFile(sshd.AuthorizedKeys())
	if err != nil {
		t.Fatal(err)
	}
	// The node restarts with no key authorized: its pooled connections end,
	// and every new login is refused.
	sshd.PauseNode(1)
	if err := os.WriteFile(sshd.AuthorizedKeys(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sshd.ResumeNode(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() error {
		if types := alarmTypes(); !types["SshAuthenticationFailed"] || types["HostUnreachable"] {
			return fmt.Errorf("alarms on %s: %v", refused, types)
		}
		return nil
	})
	if err := os.WriteFile(sshd.AuthorizedKeys(), keys, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() error {
		if types := alarmTypes(); len(types) > 0 {
			return fmt.Errorf("alarms on %s still open: %v", refused, types)
		}
		return nil
	})
}

// monitoredCluster registers sshd nodes on addrs, one process each, as a
// cluster on a controller whose monitor checks every second.
func monitoredCluster(t *testing.T, name string, addrs ...string) (*services.SSHD, *session, int64) {
	t.Helper()
	sshd := services.NewSSHDPerNode(t, addrs...)
	c := startController(t, controllerOptions{args: []string{"--monitor-interval", "1s"}})
	admin := c.session(t, "admin", adminPassword)
	id, job := admin.registerCluster(t, name, sshd, sshd.Addrs, nil)
	if id == 0 {
		t.Fatalf("register: %v", job)
	}
	return sshd, admin, id
}
