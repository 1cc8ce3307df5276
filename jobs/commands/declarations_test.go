package commands

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// grants is a Privileger over a fixed table of user name → path → privileges.
type grants map[string]map[string]rbac.Privileges

func (g grants) Privileges(u *rbac.User, path string) rbac.Privileges { return g[u.Name][path] }

func declaredRegistry(t testing.TB) *jobs.Registry {
	t.Helper()
	reg, err := jobs.NewRegistry(append(append(Builtin(), NodeCommands(NodeDeps{})...), CheckHostsCommand(nil, nil))...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestDraftSettlesTheCluster(t *testing.T) {
	reg := declaredRegistry(t)
	tests := []struct {
		name        string
		command     string
		data        string
		cluster     int64
		wantCluster int64
		wantErr     error
	}{
		{name: "exec on a cluster", command: "exec", data: `{"command":"true"}`, cluster: 3, wantCluster: 3},
		{name: "exec without one", command: "exec", data: `{"command":"true"}`, wantErr: jobs.ErrNeedsCluster},
		{name: "add_node without one", command: "add_node", data: `{"node":{"hostname":"a"}}`, wantErr: jobs.ErrNeedsCluster},
		{name: "addnode, the reference's name", command: "addnode", data: `{"node":{"hostname":"a"}}`, cluster: 4, wantCluster: 4},
		{name: "removenode, the reference's name", command: "removenode", data: `{"node":{"hostname":"a"}}`, cluster: 4, wantCluster: 4},
		{name: "check_hosts without one", command: "check_hosts", wantErr: jobs.ErrNeedsCluster},
		{name: "stop names it in job_data", command: "stop", data: `{"clusterid":5,"node":{"hostname":"a"}}`, wantCluster: 5},
		{name: "stop names it as a string", command: "stop", data: `{"clusterid":"5","node":{"hostname":"a"}}`, wantCluster: 5},
		{name: "stop with both, agreeing", command: "stop", data: `{"cluster_id":5,"node":{"hostname":"a"}}`, cluster: 5, wantCluster: 5},
		{name: "stop with both, disagreeing", command: "stop", data: `{"clusterid":6}`, cluster: 5, wantErr: jobs.ErrBadJobData},
		{name: "exec ignores clusterid in job_data", command: "exec", data: `{"command":"true","clusterid":6}`, cluster: 5, wantCluster: 5},
		{name: "remove_cluster named in job_data", command: "remove_cluster", data: `{"cluster_id":7}`, wantCluster: 7},
		{name: "register_cluster needs none", command: "register_cluster", data: `{}`},
		{name: "success needs none", command: "success"},
		{name: "unknown command", command: "frobnicate", wantErr: jobs.ErrUnknownCommand},
		{name: "job_data not an object", command: "success", data: `[]`, wantErr: jobs.ErrBadJobData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := reg.Draft(tt.command, json.RawMessage(tt.data), tt.cluster)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || d.ClusterID != tt.wantCluster {
				t.Fatalf("got cluster %v (%v), want %d", d, err, tt.wantCluster)
			}
		})
	}
}

func TestAuthorizeFollowsTheDeclaration(t *testing.T) {
	reg := declaredRegistry(t)
	c := &hosts.Cluster{ID: 4, Name: "c4"}
	admin := &rbac.User{Name: "admin", Groups: []rbac.Group{{Name: rbac.AdminsGroup}}}
	p := grants{
		"runner":  {rbac.ClusterPath("c4"): rbac.Read | rbac.Execute},
		"owner":   {rbac.ClusterPath("c4"): rbac.All, rbac.RootPath: rbac.Write},
		"admin":   {rbac.ClusterPath("c4"): rbac.All, rbac.RootPath: rbac.All},
		"readers": {rbac.ClusterPath("c4"): rbac.Read},
	}
	tests := []struct {
		name    string
		user    *rbac.User
		command string
		data    string
		cluster *hosts.Cluster
		denied  string // "" allowed, else part of the refusal
	}{
		{name: "exec needs x", user: &rbac.User{Name: "runner"}, command: "exec", data: `{"command":"true"}`, cluster: c},
		{name: "exec refused without x", user: &rbac.User{Name: "readers"}, command: "exec", data: `{"command":"true"}`, cluster: c,
			denied: "Execute access to cluster 4 ('c4') for user readers is denied."},
		{name: "add_node needs w too", user: &rbac.User{Name: "runner"}, command: "add_node", cluster: c,
			denied: "Write access to cluster 4 ('c4') for user runner is denied."},
		{name: "add_node by the owner", user: &rbac.User{Name: "owner"}, command: "add_node", cluster: c},
		{name: "remove_cluster needs w on /", user: &rbac.User{Name: "runner"}, command: "remove_cluster", cluster: c,
			denied: "Write access to object '/' for user runner is denied."},
		{name: "register_cluster with w on /", user: &rbac.User{Name: "owner"}, command: "register_cluster", data: `{"ssh_keyfile":""}`},
		{name: "ssh_keyfile only for superusers", user: &rbac.User{Name: "owner"}, command: "register_cluster", data: `{"ssh_keyfile":"/etc/shadow"}`,
			denied: "Superuser access to job_data field 'ssh_keyfile' for user owner is denied."},
		{name: "a superuser names a key file", user: admin, command: "register_cluster", data: `{"ssh_keyfile":"/root/.ssh/id"}`},
		{name: "success without a cluster is open", user: &rbac.User{Name: "nobody"}, command: "success"},
		{name: "success on a cluster needs x", user: &rbac.User{Name: "nobody"}, command: "success", cluster: c,
			denied: "Execute access to cluster 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id int64
			if tt.cluster != nil {
				id = tt.cluster.ID
			}
			d, err := reg.Draft(tt.command, json.RawMessage(tt.data), id)
			if err != nil {
				t.Fatal(err)
			}
			err = d.Authorize(p, tt.user, tt.cluster)
			var refusal *rbac.DeniedError
			switch {
			case tt.denied == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.denied != "" && (!errors.As(err, &refusal) || !strings.Contains(refusal.Message, tt.denied)):
				t.Fatalf("got %v, want a refusal saying %q", err, tt.denied)
			}
		})
	}
}
