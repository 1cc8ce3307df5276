package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/jobs"
)

func TestServiceCommands(t *testing.T) {
	sshd := services.SharedSSHD(t)
	e := newNodeEnv(t, services.OpenSQLite(t))
	marker := filepath.Join(t.TempDir(), "service-action")
	addrs := sshd.Addrs[17:19]
	c := e.register(t, "svc", sshd, addrs, map[string]any{
		"service_name": "maria db's", "service_command": "echo {action} {service} > " + marker})
	broken := e.register(t, "svc-broken", sshd, sshd.Addrs[19:20], map[string]any{
		"service_command": "echo cannot {action} >&2; exit 4"})

	tests := []struct {
		name     string
		cluster  int64
		spec     string // a job_spec as a client sends it
		wantText string // "" FINISHED, else FAILED with this text
		wantExit int
		wantFile string
	}{
		{name: "the reference's stop job, job_dat spelling", cluster: c.ID,
			spec:     fmt.Sprintf(`{"command": "stop", "job_dat": {"clusterid": %d, "node": {"hostname": %q}}}`, c.ID, addrs[1]),
			wantFile: "stop maria db's\n"},
		{name: "cluster named in job_data only", spec: fmt.Sprintf(`{"command": "start", "job_data": {"clusterid": %d, "node": {"hostname": %q}}}`, c.ID, addrs[0]),
			wantFile: "start maria db's\n"},
		{name: "restart", cluster: c.ID, spec: fmt.Sprintf(`{"command": "restart", "job_data": {"node": {"hostname": %q}}}`, addrs[0]),
			wantFile: "restart maria db's\n"},
		{name: "node not in the cluster", cluster: c.ID, spec: `{"command": "restart", "job_data": {"node": {"hostname": "127.0.0.99"}}}`,
			wantText: `node 127.0.0.99 is not in cluster "svc"`, wantExit: 1},
		{name: "failing service command", cluster: broken.ID,
			spec:     fmt.Sprintf(`{"command": "stop", "job_data": {"node": {"hostname": %q}}}`, sshd.Addrs[19]),
			wantText: fmt.Sprintf("stop on %s failed: exit status 4", sshd.Addrs[19]), wantExit: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec jobs.Spec
			if err := json.Unmarshal([]byte(tt.spec), &spec); err != nil {
				t.Fatal(err)
			}
			j := create(t, e.svc, jobs.CreateRequest{ClusterID: tt.cluster, Command: spec.Command, JobData: spec.JobData, Owner: testOwner})
			if !j.Exclusive {
				t.Errorf("%s is not exclusive", spec.Command)
			}
			j = waitEnded(t, e.svc, j.ID)
			wantStatus := jobs.StatusFinished
			if tt.wantText != "" {
				wantStatus = jobs.StatusFailed
			}
			if j.Status != wantStatus || (tt.wantText != "" && j.StatusText != tt.wantText) || j.ExitCode != tt.wantExit {
				t.Fatalf("got %s %q exit %d, want %s %q exit %d", j.Status, j.StatusText, j.ExitCode, wantStatus, tt.wantText, tt.wantExit)
			}
			if tt.wantFile == "" {
				return
			}
			if b, err := os.ReadFile(marker); err != nil || string(b) != tt.wantFile {
				t.Fatalf("the service command wrote %q (%v), want %q", b, err, tt.wantFile)
			}
			var r struct {
				Command string           `json:"command"`
				Nodes   []map[string]any `json:"nodes"`
			}
			if err := json.Unmarshal(j.Result, &r); err != nil || len(r.Nodes) != 1 || !strings.Contains(r.Command, `'maria db'\''s'`) {
				t.Fatalf("result %s: %v", j.Result, err)
			}
		})
	}
	// The failing command's stderr is in its log.
	list, _, err := e.svc.List(t.Context(), jobs.Filter{ClusterIDs: []int64{broken.ID}})
	if err != nil || len(list) == 0 {
		t.Fatalf("jobs of svc-broken: %v", err)
	}
	if !e.hasMessage(t, list[0].ID, jobs.MessageWarning, sshd.Addrs[19]+": cannot stop") {
		t.Errorf("log: %v", e.messages(t, list[0].ID))
	}
}

func TestServiceCommandLine(t *testing.T) {
	tests := []struct {
		name    string
		cluster hosts.Cluster
		action  string
		want    string
		wantErr string
	}{
		{name: "default template", cluster: hosts.Cluster{ServiceName: "mariadb"}, action: "stop", want: "systemctl stop 'mariadb'"},
		{name: "quoted service", cluster: hosts.Cluster{ServiceName: "x; rm -rf /", ServiceCommand: "service {service} {action}"},
			action: "start", want: "service 'x; rm -rf /' start"},
		{name: "template without service", cluster: hosts.Cluster{ServiceCommand: "/opt/ctl {action}"}, action: "restart", want: "/opt/ctl restart"},
		{name: "no service name", cluster: hosts.Cluster{Name: "c"}, action: "stop",
			wantErr: `cluster "c" has no service_name for its service command "systemctl {action} {service}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := serviceCommandLine(&tt.cluster, tt.action)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("got %q, %v; want %q, %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
