package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/jobs"
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
			var exit *jobs.ExitError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantErr != "" && (!errors.As(err, &exit) || err.Error() != tt.wantErr || exit.Code != tt.wantCode):
				t.Errorf("err = %v (%+v), want %q with code %d", err, exit, tt.wantErr, tt.wantCode)
			}
		})
	}
}

// batchRecorder is a batch-writing Logger that counts its writes.
type batchRecorder struct {
	recordingLogger
	mu      sync.Mutex
	batches int
}

func (b *batchRecorder) Messages(ctx context.Context, lines []jobs.LogLine) {
	b.mu.Lock()
	b.batches++
	b.mu.Unlock()
	for _, l := range lines {
		b.Message(ctx, l.Status, l.Text)
	}
}

func (b *batchRecorder) counts() (batches, lines int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recordingLogger.mu.Lock()
	defer b.recordingLogger.mu.Unlock()
	return b.batches, len(b.msgs)
}

func TestOutputGoesOutInBatches(t *testing.T) {
	hs := []hosts.Host{{Hostname: "n1"}}
	l := &batchRecorder{}
	o := newOutputLog(context.Background(), l, 10_000, hs, map[string]int{"n1:22": 0})
	// 2500 lines in chunks of 50: a statement per batch, not per line.
	for range 50 {
		o.write(context.Background(), remote.Chunk{Node: "n1:22", Stream: remote.Stdout, Data: []byte(strings.Repeat("line\n", 50))})
	}
	o.flush(context.Background(), 0)
	if batches, lines := l.counts(); lines != 2500 || batches > 2500/batchLines+1 {
		t.Fatalf("%d lines in %d writes, want 2500 in at most %d", lines, batches, 2500/batchLines+1)
	}
	// A lone line is not held back: it goes out within the batch delay.
	o.write(context.Background(), remote.Chunk{Node: "n1:22", Stream: remote.Stdout, Data: []byte("late\n")})
	err := services.WaitFor(context.Background(), 10*time.Second, func() error {
		if _, lines := l.counts(); lines != 2501 {
			return fmt.Errorf("%d lines logged", lines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
