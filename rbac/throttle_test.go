package rbac

import (
	"errors"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	limits := ThrottleLimits{SlowAfter: 2, MaxFailures: 4, Window: time.Minute, Lockout: 5 * time.Minute,
		Step: time.Second, MaxDelay: 3 * time.Second}
	tests := []struct {
		name      string
		failures  int
		advance   time.Duration
		wantDelay time.Duration
		wantErr   error
	}{
		{name: "clean", failures: 0, wantDelay: 0},
		{name: "below slow threshold", failures: 1, wantDelay: 0},
		{name: "slowed", failures: 2, wantDelay: time.Second},
		{name: "slowed more", failures: 3, wantDelay: 2 * time.Second},
		{name: "locked out", failures: 4, wantErr: ErrThrottled},
		{name: "still locked within lockout", failures: 4, advance: 4 * time.Minute, wantErr: ErrThrottled},
		{name: "lockout over", failures: 4, advance: 6 * time.Minute, wantDelay: 0},
		{name: "failures forgotten after window", failures: 3, advance: 2 * time.Minute, wantDelay: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_000_000, 0)
			th := NewThrottle(limits, func() time.Time { return now })
			for range tt.failures {
				th.Fail("alice")
			}
			now = now.Add(tt.advance)
			delay, err := th.Check("alice")
			if !errors.Is(err, tt.wantErr) || delay != tt.wantDelay {
				t.Fatalf("Check = %v, %v; want %v, %v", delay, err, tt.wantDelay, tt.wantErr)
			}
			if d, err := th.Check("bob"); d != 0 || err != nil {
				t.Fatalf("another key is affected: %v %v", d, err)
			}
		})
	}
}

func TestThrottleSucceedClears(t *testing.T) {
	th := NewThrottle(ThrottleLimits{SlowAfter: 1, MaxFailures: 3, Window: time.Minute, Lockout: time.Minute, Step: time.Second, MaxDelay: time.Second}, nil)
	th.Fail("alice")
	th.Fail("alice")
	th.Succeed("alice")
	if d, err := th.Check("alice"); d != 0 || err != nil {
		t.Fatalf("after success: %v %v", d, err)
	}
}
