package jobs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// unreachable is an error sql.IsUnavailable recognises: a refused connection.
var unreachable = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

func TestRetryWrite(t *testing.T) {
	failing := errors.New("constraint failed")
	tests := []struct {
		name      string
		errs      []error // what the write returns, try by try; then nil
		timeout   time.Duration
		wantTries int
		wantErr   error
	}{
		{name: "success at once", wantTries: 1},
		{name: "unreachable twice, then written", errs: []error{unreachable, unreachable}, timeout: time.Minute, wantTries: 3},
		{name: "another error is not tried again", errs: []error{failing}, timeout: time.Minute, wantTries: 1, wantErr: failing},
		{name: "no time left for another try", errs: []error{unreachable, unreachable}, timeout: 50 * time.Millisecond,
			wantTries: 1, wantErr: unreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			tries, retried := 0, 0
			err := retryWrite(ctx, func(err error) bool { return errors.Is(err, unreachable) }, func(error) { retried++ },
				func() error {
					tries++
					if tries <= len(tt.errs) {
						return tt.errs[tries-1]
					}
					return nil
				})
			if !errors.Is(err, tt.wantErr) || tries != tt.wantTries || retried != tries-1 {
				t.Fatalf("err %v after %d tries (%d retried), want %v after %d", err, tries, retried, tt.wantErr, tt.wantTries)
			}
		})
	}
}

// TestOutageLoggedOnceEachWay: however many loops fail on an unreachable
// database, the log says once that it is unreachable and once that it is back.
func TestOutageLoggedOnceEachWay(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var o dbOutage
	if o.failed(log, errors.New("syntax error")) {
		t.Fatal("a statement's error counted as an outage")
	}
	for range 5 {
		if !o.failed(log, unreachable) {
			t.Fatal("a refused connection not counted as an outage")
		}
	}
	for range 3 {
		o.answered(log)
	}
	o.failed(log, unreachable)
	got := buf.String()
	if n := strings.Count(got, "database unreachable"); n != 2 {
		t.Errorf("%d lines of an outage's start, want 2 (two outages):\n%s", n, got)
	}
	if n := strings.Count(got, "database reachable again"); n != 1 {
		t.Errorf("%d lines of an outage's end, want 1:\n%s", n, got)
	}
}
