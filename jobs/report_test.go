package jobs

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
)

// cannedRunner answers RunMany with one canned outcome per node, as the
// transport would, calling OnNodeDone for each node that ran.
type cannedRunner struct {
	outcomes map[string]remote.NodeResult // by target host
}

func (r cannedRunner) RunMany(_ context.Context, targets []remote.Target, _ remote.Request, opt remote.FanOut) *remote.FanOutResult {
	res := &remote.FanOutResult{}
	for _, t := range targets {
		nr := r.outcomes[t.Host]
		nr.Target = t
		if nr.Outcome != remote.Pending && opt.OnNodeDone != nil {
			opt.OnNodeDone(nr)
		}
		res.Nodes = append(res.Nodes, nr)
	}
	return res
}

func TestRunReport(t *testing.T) {
	ok := remote.NodeResult{Outcome: remote.Responded, Result: &remote.Result{ExitStatus: 0, Stdout: []byte("up\n")}}
	exit3 := remote.NodeResult{Outcome: remote.Responded, Result: &remote.Result{ExitStatus: 3}}
	down := remote.NodeResult{Outcome: remote.Unreachable, Err: &remote.Error{Kind: remote.ErrConnect, Err: errors.New("connection refused")}}
	refused := remote.NodeResult{Outcome: remote.Unapproved, Err: &remote.Error{Kind: remote.ErrRefused}}
	pending := remote.NodeResult{Outcome: remote.Pending}
	tests := []struct {
		name        string
		outcomes    []remote.NodeResult // for n1, n2, n3
		abort       bool
		wantBuckets [4][]string // responded, unreachable, unapproved, pending
		wantErr     string
		wantCode    int
		wantErrors  []string // per node
	}{
		{name: "all exit 0", outcomes: []remote.NodeResult{ok, ok, ok},
			wantBuckets: [4][]string{{"n1", "n2", "n3"}, {}, {}, {}}, wantErrors: []string{"", "", ""}},
		{name: "a failure and the rest not run", outcomes: []remote.NodeResult{ok, exit3, pending}, abort: true,
			wantBuckets: [4][]string{{"n1", "n2"}, {}, {}, {"n3"}},
			wantErr:     "1 of 3 nodes failed: n2 exit status 3; not run: n3", wantCode: 3,
			wantErrors: []string{"", "exit status 3", "not run: an earlier node failed and abort_on_error is set"}},
		{name: "unreachable and refused", outcomes: []remote.NodeResult{down, refused, ok},
			wantBuckets: [4][]string{{"n3"}, {"n1"}, {"n2"}, {}},
			wantErr:     "2 of 3 nodes failed: n1 unreachable: cannot connect: connection refused; n2 refused: command refused by filter", wantCode: 1,
			wantErrors: []string{"unreachable: cannot connect: connection refused", "refused: command refused by filter", ""}},
	}
	c := &hosts.Cluster{Name: "c", SSHPort: 22, SSHUser: "u", Hosts: []hosts.Host{{Hostname: "n1"}, {Hostname: "n2"}, {Hostname: "n3"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runner := cannedRunner{outcomes: map[string]remote.NodeResult{"n1": tt.outcomes[0], "n2": tt.outcomes[1], "n3": tt.outcomes[2]}}
			n := &nodes{NodeDeps{SSH: runner}.withDefaults()}
			log := &recordingLogger{}
			rep := n.run(context.Background(), log, nodeRun{client: runner, cluster: c, hosts: c.Hosts,
				req: remote.Request{Command: "uptime"}, opt: remote.FanOut{AbortOnError: tt.abort}})
			got := [4][]string{rep.Responded, rep.Unreachable, rep.Unapproved, rep.Pending}
			for i := range got {
				if !slices.Equal(got[i], tt.wantBuckets[i]) {
					t.Errorf("buckets %v, want %v", got, tt.wantBuckets)
				}
			}
			for i, nr := range rep.Nodes {
				if nr.Error != tt.wantErrors[i] {
					t.Errorf("node %s error %q, want %q", nr.Hostname, nr.Error, tt.wantErrors[i])
				}
			}
			err := rep.err()
			var exit *ExitError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantErr != "" && (!errors.As(err, &exit) || err.Error() != tt.wantErr || exit.Code != tt.wantCode):
				t.Errorf("err = %v (%+v), want %q with code %d", err, exit, tt.wantErr, tt.wantCode)
			}
		})
	}
}
