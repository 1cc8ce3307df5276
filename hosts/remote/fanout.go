package remote

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
)

// FanOut says how a command runs over many nodes (RPort's multi-client options).
type FanOut struct {
	// Concurrent runs on up to Parallelism nodes at once; otherwise nodes run
	// one after another in the order given.
	Concurrent bool
	// Parallelism bounds concurrent runs (default DefaultParallelism).
	Parallelism int
	// AbortOnError starts no further node after the first failure (an error
	// or a non-zero exit status). Runs already started finish; the nodes not
	// started are Pending. In concurrent mode the nodes already running when
	// the failure is seen still finish.
	AbortOnError bool
	// OnNodeDone, when set, is called as each node finishes (serialized).
	OnNodeDone func(NodeResult)
}

// DefaultParallelism bounds a concurrent fan-out that names no bound.
const DefaultParallelism = 10

// Outcome is the bucket a node lands in after a fan-out.
type Outcome string

const (
	// Responded: the command ran (whatever its exit status, timeouts included).
	Responded Outcome = "responded"
	// Unreachable: no connection, login refused, host key refused, connection lost.
	Unreachable Outcome = "unreachable"
	// Unapproved: refused before reaching the node (command filter, invalid
	// request, a controller that cannot log in as configured).
	Unapproved Outcome = "unapproved"
	// Pending: never started, because of abort_on_error or cancellation.
	Pending Outcome = "pending"
)

// NodeResult is one node's part of a fan-out.
type NodeResult struct {
	Target  Target  `json:"target"`
	Outcome Outcome `json:"outcome"`
	Result  *Result `json:"result,omitempty"`
	Err     error   `json:"-"`
}

// Failed tells whether the node counts as a failure for AbortOnError.
func (n NodeResult) Failed() bool {
	return n.Err != nil || n.Result == nil || n.Result.ExitStatus != 0
}

// FanOutResult lists every node's result in the order of the targets, and
// the nodes ("host:port") by outcome.
type FanOutResult struct {
	Nodes       []NodeResult `json:"nodes"`
	Responded   []string     `json:"responded"`
	Unreachable []string     `json:"unreachable"`
	Unapproved  []string     `json:"unapproved"`
	Pending     []string     `json:"pending"`
}

// RunMany runs one request on many nodes.
func (c *Client) RunMany(ctx context.Context, targets []Target, req Request, opt FanOut) *FanOutResult {
	return fanOut(ctx, c.log, targets, opt, func(ctx context.Context, t Target) (*Result, error) {
		return c.Run(ctx, t, req)
	})
}

type runFunc func(ctx context.Context, t Target) (*Result, error)

// fanOut runs run on each target. A panic in run or in OnNodeDone fails
// that node (ErrFault), logged with its stack to log; the others go on.
func fanOut(ctx context.Context, log *slog.Logger, targets []Target, opt FanOut, run runFunc) *FanOutResult {
	parallel := 1
	if opt.Concurrent {
		parallel = opt.Parallelism
		if parallel <= 0 {
			parallel = DefaultParallelism
		}
	}
	nodes := make([]NodeResult, len(targets))
	for i, t := range targets {
		nodes[i] = NodeResult{Target: t, Outcome: Pending}
	}
	var (
		failed atomic.Bool
		wg     sync.WaitGroup
		mu     sync.Mutex // serializes OnNodeDone
		sem    = make(chan struct{}, parallel)
	)
start:
	for i, t := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break start
		}
		// Checked after the slot is taken: in sequential mode that is after
		// the previous node has finished.
		if (opt.AbortOnError && failed.Load()) || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var (
				res *Result
				err error
			)
			if fault := Contain(func() { res, err = run(ctx, t) }); fault != nil {
				err = faulted(ctx, log, t, fault)
			}
			n := NodeResult{Target: t, Result: res, Err: err, Outcome: outcomeOf(res, err)}
			if opt.OnNodeDone != nil {
				mu.Lock()
				fault := Contain(func() { opt.OnNodeDone(n) })
				mu.Unlock()
				if fault != nil && n.Err == nil {
					n.Err = faulted(ctx, log, t, fault)
					n.Outcome = outcomeOf(res, n.Err)
				}
			}
			if n.Failed() {
				failed.Store(true)
			}
			nodes[i] = n
		}()
	}
	wg.Wait()

	out := &FanOutResult{Nodes: nodes}
	addr := func(n NodeResult) string { return n.Target.Addr() }
	out.Responded, out.Unreachable = out.Names(Responded, addr), out.Names(Unreachable, addr)
	out.Unapproved, out.Pending = out.Names(Unapproved, addr), out.Names(Pending, addr)
	return out
}

// Names lists, in the order of the targets, the nodes with outcome o, each
// as name calls it; [] when none.
func (r *FanOutResult) Names(o Outcome, name func(NodeResult) string) []string {
	out := []string{}
	for _, n := range r.Nodes {
		if n.Outcome == o {
			out = append(out, name(n))
		}
	}
	return out
}

// outcomeOf sorts one node's result into its bucket.
func outcomeOf(res *Result, err error) Outcome {
	switch {
	case err == nil:
		return Responded
	case errors.Is(err, ErrRefused), errors.Is(err, ErrInvalid), errors.Is(err, ErrSetup):
		return Unapproved
	case errors.Is(err, ErrFault):
		if res != nil && !res.Started.IsZero() {
			return Responded
		}
		return Unapproved // the controller failed before the node was asked
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrKilled):
		if res != nil && !res.Started.IsZero() {
			return Responded
		}
		if errors.Is(err, ErrKilled) {
			return Pending // cancelled before the command started
		}
		return Unreachable // out of time while connecting
	default:
		return Unreachable
	}
}

// faulted logs a panic caught while running on t and makes it t's error.
func faulted(ctx context.Context, log *slog.Logger, t Target, fault error) error {
	log.ErrorContext(ctx, "a node's command failed in the controller: that node fails, the controller goes on",
		append([]any{"node", t.Addr()}, FaultAttrs(fault)...)...)
	return newError(ErrFault, t.Addr(), fault)
}
