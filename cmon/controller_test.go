package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// TestRunReleasesAfterEveryLoop: however the loops are stopped (the signal,
// or one of them failing), run releases the parts only once every loop has
// returned, the last acquired first, and returns the failure.
func TestRunReleasesAfterEveryLoop(t *testing.T) {
	errListen := errors.New("serve 127.0.0.1:9501: accept: too many open files")
	tests := []struct {
		name    string
		signal  bool  // the context run gets is cancelled, as SIGTERM does
		failure error // else the server loop fails with this
	}{
		{name: "stopped by the signal", signal: true},
		{name: "a loop fails", failure: errListen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu     sync.Mutex
					events []string
				)
				record := func(e string) {
					mu.Lock()
					defer mu.Unlock()
					events = append(events, e)
				}
				recorded := func() []string {
					mu.Lock()
					defer mu.Unlock()
					return slices.Clone(events)
				}
				// The loops are mid-round when stopped, and finish it only
				// when the test lets them.
				finish := make(chan struct{})
				busy := func(name string) func(context.Context) error {
					return func(ctx context.Context) error {
						<-ctx.Done()
						<-finish
						record("return " + name)
						return nil
					}
				}
				c := &controller{log: slog.New(slog.DiscardHandler)}
				loops := []string{"webhook", "purge", "monitor", "reload", "metrics"}
				for _, name := range loops {
					c.loops = append(c.loops, busy(name))
				}
				c.loops = append(c.loops, func(ctx context.Context) error {
					if tt.failure != nil {
						return tt.failure
					}
					return busy("server")(ctx)
				})
				for _, name := range []string{"database", "strict ssh pool", "learning ssh pool", "job engine"} {
					c.onClose(func() { record("close " + name) })
				}

				ctx, stop := context.WithCancel(t.Context())
				defer stop()
				done := make(chan error, 1)
				go func() { done <- c.run(ctx) }()
				if tt.signal {
					stop()
				}
				synctest.Wait() // every loop is stopped and mid-round
				if got := recorded(); len(got) > 0 {
					t.Errorf("released while loops still ran: %v", got) // the loops must still finish: the bubble ends with them
				}
				close(finish)
				if err := <-done; !errors.Is(err, tt.failure) {
					t.Fatalf("run returned %v, want %v", err, tt.failure)
				}

				got := recorded()
				closes := []string{"close job engine", "close learning ssh pool", "close strict ssh pool", "close database"}
				if len(got) < len(closes) || !slices.Equal(got[len(got)-len(closes):], closes) {
					t.Fatalf("events %v do not end with %v", got, closes)
				}
				returned := got[:len(got)-len(closes)]
				if tt.signal {
					loops = append(loops, "server")
				}
				for _, name := range loops {
					if !slices.Contains(returned, "return "+name) {
						t.Fatalf("the %s loop had not returned when the parts were released: %v", name, got)
					}
				}
			})
		})
	}
}
