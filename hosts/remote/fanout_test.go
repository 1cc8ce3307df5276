package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func targets(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{Host: fmt.Sprintf("node%d", i), User: "root"}
	}
	return ts
}

func addrs(ts ...Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Addr())
	}
	return out
}

// fake answers per host name: an error kind, or an exit status.
type fake struct {
	errs   map[string]error
	status map[string]int
	delay  time.Duration

	mu       sync.Mutex
	ran      []string
	inFlight atomic.Int32
	peak     atomic.Int32
}

func (f *fake) run(ctx context.Context, t Target) (*Result, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	f.mu.Lock()
	f.ran = append(f.ran, t.Host)
	f.mu.Unlock()
	res := &Result{Node: t.Addr(), ExitStatus: -1}
	if err := f.errs[t.Host]; err != nil {
		if errors.Is(err, ErrTimeout) {
			res.Started = time.Now()
		}
		return res, newError(err, t.Addr(), nil)
	}
	res.Started = time.Now()
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return res, newError(ErrKilled, t.Addr(), nil)
	}
	res.ExitStatus = f.status[t.Host]
	return res, nil
}

func TestFanOut(t *testing.T) {
	ts := targets(6)
	tests := []struct {
		name        string
		opt         FanOut
		errs        map[string]error
		status      map[string]int
		responded   []string
		unreachable []string
		unapproved  []string
		pending     []string
	}{
		{name: "all respond", opt: FanOut{}, responded: addrs(ts...)},
		{name: "failures without abort", opt: FanOut{},
			errs:      map[string]error{"node1": ErrConnect, "node2": ErrAuth, "node3": ErrRefused, "node4": ErrHostKey},
			responded: addrs(ts[0], ts[5]), unreachable: addrs(ts[1], ts[2], ts[4]), unapproved: addrs(ts[3])},
		{name: "abort after unreachable", opt: FanOut{AbortOnError: true},
			errs:      map[string]error{"node2": ErrConnect},
			responded: addrs(ts[0], ts[1]), unreachable: addrs(ts[2]), pending: addrs(ts[3:]...)},
		{name: "abort after non-zero exit", opt: FanOut{AbortOnError: true},
			status:    map[string]int{"node0": 1},
			responded: addrs(ts[0]), pending: addrs(ts[1:]...)},
		{name: "abort after refused", opt: FanOut{AbortOnError: true},
			errs:      map[string]error{"node1": ErrRefused},
			responded: addrs(ts[0]), unapproved: addrs(ts[1]), pending: addrs(ts[2:]...)},
		{name: "timeout counts as responded", opt: FanOut{},
			errs:      map[string]error{"node0": ErrTimeout, "node1": ErrInvalid},
			responded: addrs(ts[0], ts[2], ts[3], ts[4], ts[5]), unapproved: addrs(ts[1])},
		{name: "concurrent without abort runs all", opt: FanOut{Concurrent: true, Parallelism: 3},
			status:    map[string]int{"node0": 2},
			responded: addrs(ts...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{errs: tt.errs, status: tt.status}
			got := fanOut(context.Background(), discardLog, ts, tt.opt, f.run)
			check := func(bucket string, got, want []string) {
				if !slices.Equal(got, want) {
					t.Errorf("%s = %v, want %v", bucket, got, want)
				}
			}
			check("responded", got.Responded, tt.responded)
			check("unreachable", got.Unreachable, tt.unreachable)
			check("unapproved", got.Unapproved, tt.unapproved)
			check("pending", got.Pending, tt.pending)
			if len(got.Nodes) != len(ts) {
				t.Fatalf("%d node results for %d targets", len(got.Nodes), len(ts))
			}
			for i, n := range got.Nodes {
				if n.Target.Host != ts[i].Host {
					t.Errorf("node result %d is for %s", i, n.Target.Host)
				}
				if n.Outcome != Pending && n.Result == nil {
					t.Errorf("%s has no result", n.Target.Host)
				}
			}
		})
	}
}

func TestFanOutSequentialOrder(t *testing.T) {
	ts := targets(5)
	f := &fake{}
	fanOut(context.Background(), discardLog, ts, FanOut{}, f.run)
	if want := []string{"node0", "node1", "node2", "node3", "node4"}; !slices.Equal(f.ran, want) || f.peak.Load() != 1 {
		t.Errorf("ran %v with peak %d, want %v one at a time", f.ran, f.peak.Load(), want)
	}
}

func TestFanOutParallelismBound(t *testing.T) {
	tests := []struct {
		name  string
		opt   FanOut
		nodes int
		want  int32
	}{
		{name: "bound 4", opt: FanOut{Concurrent: true, Parallelism: 4}, nodes: 20, want: 4},
		{name: "default bound", opt: FanOut{Concurrent: true}, nodes: 25, want: DefaultParallelism},
		{name: "fewer nodes than bound", opt: FanOut{Concurrent: true, Parallelism: 8}, nodes: 3, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{delay: 30 * time.Millisecond}
			var done atomic.Int32
			opt := tt.opt
			opt.OnNodeDone = func(NodeResult) { done.Add(1) }
			got := fanOut(context.Background(), discardLog, targets(tt.nodes), opt, f.run)
			if len(got.Responded) != tt.nodes || int(done.Load()) != tt.nodes {
				t.Errorf("responded %d, callbacks %d, want %d", len(got.Responded), done.Load(), tt.nodes)
			}
			if p := f.peak.Load(); p != tt.want {
				t.Errorf("peak parallelism %d, want %d", p, tt.want)
			}
		})
	}
}

func TestFanOutConcurrentAbortStopsNewStarts(t *testing.T) {
	ts := targets(10)
	f := &fake{delay: 50 * time.Millisecond, errs: map[string]error{"node0": ErrConnect}}
	got := fanOut(context.Background(), discardLog, ts, FanOut{Concurrent: true, Parallelism: 2, AbortOnError: true}, f.run)
	if len(got.Pending) < 7 || len(got.Unreachable) != 1 {
		t.Errorf("pending %v unreachable %v: the first failure should stop new starts", got.Pending, got.Unreachable)
	}
}

func TestFanOutCancelled(t *testing.T) {
	ts := targets(5)
	ctx, cancel := context.WithCancel(context.Background())
	f := &fake{delay: time.Hour}
	run := func(ctx context.Context, t Target) (*Result, error) {
		if t.Host == "node0" {
			cancel() // the job is killed while its first node runs
		}
		return f.run(ctx, t)
	}
	got := fanOut(ctx, discardLog, ts, FanOut{}, run)
	// The running node is killed (it had started: responded); the rest never start.
	if !slices.Equal(got.Responded, addrs(ts[0])) || !slices.Equal(got.Pending, addrs(ts[1:]...)) {
		t.Errorf("responded %v pending %v", got.Responded, got.Pending)
	}
	if !errors.Is(got.Nodes[0].Err, ErrKilled) {
		t.Errorf("node0 error %v, want killed", got.Nodes[0].Err)
	}
}

func TestErrorKinds(t *testing.T) {
	err := error(newError(ErrHostKey, "10.0.0.1:22", errors.New("presented x")))
	wrapped := fmt.Errorf("job 7: %w", err)
	if !errors.Is(wrapped, ErrHostKey) || errors.Is(wrapped, ErrAuth) {
		t.Error("errors.Is does not see the kind")
	}
	var e *Error
	if !errors.As(wrapped, &e) || e.Node != "10.0.0.1:22" || KindOf(wrapped) != ErrHostKey {
		t.Errorf("errors.As: %+v", e)
	}
	if got := err.Error(); got != "10.0.0.1:22: host key mismatch: presented x" {
		t.Errorf("message %q", got)
	}
}
