package rpc

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// The fakes below stand in for the database behind rpc's interfaces, so that
// the access rules are tested on their own.

// fakePolicy grants non-superusers the privileges listed per path. It is a
// pointer, as *rbac.Policy is: the cluster listing compares policies.
type fakePolicy struct{ on map[string]rbac.Privileges }

func (p *fakePolicy) Privileges(u *rbac.User, path string) rbac.Privileges {
	switch {
	case u == nil:
		return 0
	case u.IsSuperuser():
		return rbac.All
	}
	return p.on[path]
}
func (p *fakePolicy) Object(string) (*rbac.Object, bool) { return nil, false }
func (p *fakePolicy) Objects() []*rbac.Object            { return nil }
func (p *fakePolicy) UserName(int64) string              { return "" }
func (p *fakePolicy) GroupName(int64) string             { return "" }
func (p *fakePolicy) ACL(*rbac.Object) string            { return "" }

// fakeInventory holds clusters and counts the lookups of one.
type fakeInventory struct {
	clusters []*hosts.Cluster
	lookups  int
}

func (f *fakeInventory) Get(_ context.Context, id int64) (*hosts.Cluster, error) {
	f.lookups++
	for _, c := range f.clusters {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, hosts.ErrClusterNotFound
}

func (f *fakeInventory) GetByName(_ context.Context, name string) (*hosts.Cluster, error) {
	f.lookups++
	for _, c := range f.clusters {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, hosts.ErrClusterNotFound
}

func (f *fakeInventory) List(context.Context) ([]*hosts.Cluster, error) { return f.clusters, nil }

func (f *fakeInventory) Snapshot(context.Context) (*hosts.Snapshot, error) {
	return nil, errors.New("no snapshot in this test")
}

// fakeJobs records the listing filter and the created draft; the methods
// these tests do not reach are the nil interface's, and panic.
type fakeJobs struct {
	Jobs
	registry *jobs.Registry
	filter   jobs.Filter
	created  *jobs.Draft
}

func (f *fakeJobs) Registry() *jobs.Registry { return f.registry }

func (f *fakeJobs) List(_ context.Context, filter jobs.Filter) ([]*jobs.Job, int, error) {
	f.filter = filter
	return nil, 0, nil
}

func (f *fakeJobs) CreateDraft(_ context.Context, d *jobs.Draft, _ jobs.CreateRequest) (*jobs.Job, error) {
	f.created = d
	return &jobs.Job{ID: 9, ClusterID: d.ClusterID, Command: d.Command.Name}, nil
}

var (
	fakeAdmin  = &rbac.User{ID: 1, Name: "admin", Groups: []rbac.Group{{ID: 1, Name: rbac.AdminsGroup}}}
	fakeReader = &rbac.User{ID: 4, Name: "reader"}
	// fakeRunner writes "/", reads c1 and may run jobs on it, and reads c2.
	fakeRunner = &rbac.User{ID: 5, Name: "runner"}
)

// jobsServer serves /v2/jobs over the fakes to caller.
func jobsServer(t *testing.T, caller *rbac.User, inv *fakeInventory, engine *fakeJobs) *Server {
	t.Helper()
	never := jobs.HandlerFunc(func(context.Context, *jobs.Job, jobs.Logger) (any, error) {
		panic("no job runs in these tests")
	})
	reg, err := jobs.NewRegistry(
		jobs.Command{Name: "success", Access: jobs.Access{Need: rbac.Execute, ClusterOptional: true}, Handler: never},
		jobs.Command{Name: "remove_cluster", Access: jobs.Access{Need: rbac.Write, OnRoot: true}, Handler: never})
	if err != nil {
		t.Fatal(err)
	}
	engine.registry = reg
	policy := &fakePolicy{on: map[string]rbac.Privileges{"/": rbac.Write, "/c1": rbac.Read | rbac.Execute, "/c2": rbac.Read}}
	if caller == fakeReader {
		policy = &fakePolicy{on: map[string]rbac.Privileges{"/c1": rbac.Read}}
	}
	g := &guard{policy: func(context.Context) (Policy, error) { return policy, nil }, inventory: inv, jobs: engine}
	s := NewServer(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "1"})
	s.auth = fixedAuth{caller}
	s.Handle("jobs", (&jobsModule{guard: g}).operations()...)
	return s
}

func threeClusters() *fakeInventory {
	return &fakeInventory{clusters: []*hosts.Cluster{{ID: 1, Name: "c1"}, {ID: 2, Name: "c2"}, {ID: 3, Name: "c3"}}}
}

func TestJobListingShowsReadableClusters(t *testing.T) {
	tests := []struct {
		name   string
		caller *rbac.User
		body   string
		want   []int64 // the listing's cluster filter; -1 matches none
	}{
		{name: "superuser, every cluster", caller: fakeAdmin, body: `{"operation":"getJobInstances"}`, want: nil},
		{name: "superuser, the clusters asked for", caller: fakeAdmin, body: `{"operation":"getJobInstances","cluster_ids":[3]}`, want: []int64{3}},
		{name: "readable clusters only", caller: fakeRunner, body: `{"operation":"getJobInstances"}`, want: []int64{-1, 1, 2}},
		{name: "asked for readable and not", caller: fakeRunner, body: `{"operation":"getJobInstances","cluster_ids":[2,3]}`, want: []int64{-1, 2}},
		{name: "asked for an unreadable one only", caller: fakeReader, body: `{"operation":"getJobInstances","cluster_ids":[3]}`, want: []int64{-1}},
		{name: "one named cluster", caller: fakeReader, body: `{"operation":"getJobInstances","cluster_name":"c1"}`, want: []int64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := &fakeJobs{}
			_, _, out := call(t, jobsServer(t, tt.caller, threeClusters(), engine), http.MethodPost, "/v2/jobs", tt.body)
			if out["request_status"] != string(StatusOk) {
				t.Fatalf("reply %v", out)
			}
			if !slices.Equal(engine.filter.ClusterIDs, tt.want) {
				t.Errorf("listed clusters %v, want %v", engine.filter.ClusterIDs, tt.want)
			}
		})
	}
}

func TestJobListingRefusesUnreadableNamedCluster(t *testing.T) {
	engine := &fakeJobs{}
	_, _, out := call(t, jobsServer(t, fakeReader, threeClusters(), engine), http.MethodPost, "/v2/jobs",
		`{"operation":"getJobInstances","cluster_name":"c3"}`)
	if out["request_status"] != string(StatusAccessDenied) {
		t.Fatalf("reply %v", out)
	}
	if engine.filter.Limit != 0 {
		t.Error("jobs were listed for a refused caller")
	}
}

// TestCreateJobResolvesClusterOnce checks that createJobInstance decides
// access on a named cluster with one lookup, and refuses alike a cluster the
// caller may not read and one that does not exist.
func TestCreateJobResolvesClusterOnce(t *testing.T) {
	tests := []struct {
		name        string
		caller      *rbac.User
		command     string // success unless set
		body        string // the fields naming the cluster
		wantStatus  Status
		wantError   string
		wantCluster int64
		wantLookups int
	}{
		{name: "by name", caller: fakeRunner, body: `,"cluster_name":"c1"`, wantStatus: StatusOk, wantCluster: 1, wantLookups: 1},
		{name: "by id", caller: fakeRunner, body: `,"cluster_id":1`, wantStatus: StatusOk, wantCluster: 1, wantLookups: 1},
		{name: "without a cluster", caller: fakeRunner, body: ``, wantStatus: StatusOk, wantLookups: 0},
		{name: "read but no execute", caller: fakeReader, body: `,"cluster_name":"c1"`, wantStatus: StatusAccessDenied,
			wantError: "Execute access to cluster 1 ('c1') for user reader is denied.", wantLookups: 1},
		{name: "unreadable", caller: fakeReader, body: `,"cluster_name":"c3"`, wantStatus: StatusAccessDenied,
			wantError: "Execute access to cluster 'c3' for user reader is denied.", wantLookups: 1},
		{name: "missing", caller: fakeReader, body: `,"cluster_name":"c9"`, wantStatus: StatusAccessDenied,
			wantError: "Execute access to cluster 'c9' for user reader is denied.", wantLookups: 1},
		{name: "missing, to a superuser", caller: fakeAdmin, body: `,"cluster_name":"c9"`, wantStatus: StatusObjectNotFound,
			wantError: "Cluster was not found.", wantLookups: 1},
		{name: "on the root", caller: fakeRunner, command: "remove_cluster", body: `,"cluster_name":"c3"`, wantStatus: StatusOk,
			wantCluster: 3, wantLookups: 1},
		{name: "on the root, missing", caller: fakeRunner, command: "remove_cluster", body: `,"cluster_name":"c9"`,
			wantStatus: StatusObjectNotFound, wantError: "Cluster was not found.", wantLookups: 1},
		{name: "on the root, refused", caller: fakeReader, command: "remove_cluster", body: `,"cluster_name":"c1"`,
			wantStatus: StatusAccessDenied, wantError: "Write access to object '/' for user reader is denied.", wantLookups: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, engine := threeClusters(), &fakeJobs{}
			command := cmp.Or(tt.command, "success")
			body := `{"operation":"createJobInstance","job":{"job_spec":{"command":"` + command + `"}}` + tt.body + `}`
			_, _, out := call(t, jobsServer(t, tt.caller, inv, engine), http.MethodPost, "/v2/jobs", body)
			if out["request_status"] != string(tt.wantStatus) {
				t.Fatalf("reply %v, want %s", out, tt.wantStatus)
			}
			if tt.wantError != "" && out["error_string"] != tt.wantError {
				t.Errorf("error_string %q, want %q", out["error_string"], tt.wantError)
			}
			if inv.lookups != tt.wantLookups {
				t.Errorf("%d cluster lookups, want %d", inv.lookups, tt.wantLookups)
			}
			switch {
			case tt.wantStatus != StatusOk && engine.created != nil:
				t.Error("a refused job was created")
			case tt.wantStatus == StatusOk && (engine.created == nil || engine.created.ClusterID != tt.wantCluster):
				t.Errorf("created %+v, want a job on cluster %d", engine.created, tt.wantCluster)
			}
		})
	}
}

type fakeControllers struct {
	list []jobs.Controller
	err  error
}

func (f fakeControllers) Controllers(context.Context) ([]jobs.Controller, error) {
	return f.list, f.err
}

func TestGetControllers(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		lister     fakeControllers
		wantStatus Status
		wantHosts  []any
	}{
		{name: "pool", lister: fakeControllers{list: []jobs.Controller{
			{ID: "a", Addresses: "10.0.0.1,10.0.0.2", Port: 9501, Hostname: "ctl-a", Started: started, Leader: true},
			{ID: "b", Addresses: "10.0.0.3", Port: 9501, Started: started, Self: true},
		}}, wantStatus: StatusOk, wantHosts: []any{"ctl-a", "10.0.0.3"}},
		{name: "none", lister: fakeControllers{}, wantStatus: StatusOk, wantHosts: []any{}},
		{name: "database down", lister: fakeControllers{err: errors.New("connection refused")}, wantStatus: StatusUnknownError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "1"})
			s.auth = fixedAuth{fakeReader}
			s.Handle("host", s.hostOperations(tt.lister)...)
			_, _, out := call(t, s, http.MethodPost, "/v2/host", `{"operation":"getControllers"}`)
			if out["request_status"] != string(tt.wantStatus) {
				t.Fatalf("reply %v, want %s", out, tt.wantStatus)
			}
			if tt.wantStatus != StatusOk {
				return
			}
			var names []any
			for _, c := range out["controllers"].([]any) {
				names = append(names, c.(map[string]any)["hostname"])
			}
			if !slices.Equal(names, tt.wantHosts) || out["total"] != float64(len(tt.wantHosts)) {
				t.Errorf("controllers %v (total %v), want %v", names, out["total"], tt.wantHosts)
			}
		})
	}
}
