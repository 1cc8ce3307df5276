package remote

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// A panic while handling a node's output fails that command only: the writer
// keeps taking the stream (the node is never blocked) and seal reports it.
func TestGuardedWriterContainsPanics(t *testing.T) {
	tests := []struct {
		name    string
		panicAt int // the chunk whose handling panics
	}{
		{name: "first chunk", panicAt: 0},
		{name: "later chunk", panicAt: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := 0
			o := newOutputs("n", 1<<20, func(c Chunk) {
				if seen == tt.panicAt {
					var b []byte
					_ = b[len(c.Data)] // the kind of bug node output once triggered
				}
				seen++
			})
			w := guardedWriter{o, streamWriter{o, Stdout}}
			for range 5 {
				if n, err := w.Write([]byte("line\n")); n != 5 || err != nil {
					t.Fatalf("Write = %d, %v: the stream must still be consumed", n, err)
				}
			}
			var r Result
			fault := o.seal(&r)
			var pe *PanicError
			if !errors.As(fault, &pe) || !strings.Contains(pe.Error(), "index out of range") || len(pe.Stack) == 0 {
				t.Fatalf("seal = %v, want the panic with its stack", fault)
			}
			if seen != tt.panicAt {
				t.Errorf("%d chunks handled after the fault, want none", seen-tt.panicAt)
			}
		})
	}
}

func TestFanOutContainsPanics(t *testing.T) {
	ts := targets(3)
	tests := []struct {
		name       string
		run        runFunc
		onNodeDone func(NodeResult)
	}{
		{
			name: "in the run",
			run: func(_ context.Context, t Target) (*Result, error) {
				if t.Host == "node1" {
					panic("bad data from node1")
				}
				return &Result{Node: t.Addr()}, nil
			},
		},
		{
			name: "in OnNodeDone",
			run: func(_ context.Context, t Target) (*Result, error) {
				return &Result{Node: t.Addr()}, nil
			},
			onNodeDone: func(n NodeResult) {
				if n.Target.Host == "node1" {
					panic("bad data from node1")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fanOut(context.Background(), discardLog, ts, FanOut{Concurrent: true, OnNodeDone: tt.onNodeDone}, tt.run)
			for i, n := range got.Nodes {
				faulty := i == 1
				if faulty != errors.Is(n.Err, ErrFault) {
					t.Errorf("node %d: err %v, fault expected: %v", i, n.Err, faulty)
				}
				if faulty && !n.Failed() {
					t.Errorf("node %d: a fault must count as failed", i)
				}
			}
		})
	}
}
