package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// fakeConn is a connection from addr that has one byte to read.
type fakeConn struct {
	net.Conn
	addr   string
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr       { return &net.TCPAddr{IP: net.ParseIP(c.addr), Port: 1} }
func (c *fakeConn) Read(b []byte) (int, error) { b[0] = 'x'; return 1, nil }
func (c *fakeConn) Close() error               { c.closed = true; return nil }

// connEvent is one step of a connection's life: its opening from an address,
// or its change to a state ("heard" is a first byte read).
type connEvent struct {
	open string
	conn int
	to   string
}

func TestConnTrackerSheds(t *testing.T) {
	open := func(addr string) connEvent { return connEvent{open: addr} }
	to := func(conn int, state string) connEvent { return connEvent{conn: conn, to: state} }
	tests := []struct {
		name     string
		limits   ConnLimits
		events   []connEvent
		newcomer string
		// wantVictim is the connection shed for the newcomer, -1 for none;
		// wantRefused says the newcomer is closed instead.
		wantVictim  int
		wantRefused bool
	}{
		{name: "under the limits", limits: ConnLimits{Total: 3, PerAddress: 2},
			events: []connEvent{open("10.0.0.1"), open("10.0.0.2")}, newcomer: "10.0.0.3", wantVictim: -1},
		{name: "idle longest first", limits: ConnLimits{Total: 3},
			events: []connEvent{open("10.0.0.1"), open("10.0.0.1"), open("10.0.0.2"),
				to(1, "active"), to(1, "idle"), to(0, "active"), to(0, "idle")},
			newcomer: "10.0.0.3", wantVictim: 1},
		{name: "idle before silent", limits: ConnLimits{Total: 2},
			events:   []connEvent{open("10.0.0.1"), open("10.0.0.2"), to(1, "heard"), to(1, "active"), to(1, "idle")},
			newcomer: "10.0.0.3", wantVictim: 1},
		{name: "silent longest next", limits: ConnLimits{Total: 3},
			events:   []connEvent{open("10.0.0.1"), open("10.0.0.2"), open("10.0.0.3"), to(0, "heard"), to(0, "active")},
			newcomer: "10.0.0.4", wantVictim: 1},
		{name: "never active", limits: ConnLimits{Total: 2},
			events:   []connEvent{open("10.0.0.1"), open("10.0.0.2"), to(0, "active"), to(1, "active")},
			newcomer: "10.0.0.3", wantVictim: -1, wantRefused: true},
		{name: "never one mid-handshake", limits: ConnLimits{Total: 2},
			events:   []connEvent{open("10.0.0.1"), open("10.0.0.2"), to(0, "heard"), to(1, "heard")},
			newcomer: "10.0.0.3", wantVictim: -1, wantRefused: true},
		{name: "idle, then active again", limits: ConnLimits{Total: 1},
			events:   []connEvent{open("10.0.0.1"), to(0, "idle"), to(0, "heard"), to(0, "active")},
			newcomer: "10.0.0.2", wantVictim: -1, wantRefused: true},
		{name: "per address: its own oldest", limits: ConnLimits{Total: 10, PerAddress: 2},
			events: []connEvent{open("10.0.0.2"), open("10.0.0.1"), open("10.0.0.1"),
				to(0, "idle"), to(1, "active"), to(2, "heard"), to(1, "idle")},
			newcomer: "10.0.0.1", wantVictim: 1},
		{name: "per address: never another's", limits: ConnLimits{Total: 10, PerAddress: 2},
			events:   []connEvent{open("10.0.0.2"), open("10.0.0.1"), open("10.0.0.1"), to(1, "active"), to(2, "active")},
			newcomer: "10.0.0.1", wantVictim: -1, wantRefused: true},
		{name: "per address limit of one", limits: ConnLimits{PerAddress: 1},
			events: []connEvent{open("10.0.0.1")}, newcomer: "10.0.0.1", wantVictim: 0},
	}
	states := map[string]http.ConnState{"active": http.StateActive, "idle": http.StateIdle}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracker := newConnTracker(slog.New(slog.DiscardHandler), tt.limits)
			var conns []*trackedConn
			for _, e := range tt.events {
				switch {
				case e.open != "":
					c, victim := tracker.admit(&fakeConn{addr: e.open})
					if c == nil || victim != nil {
						t.Fatalf("opening from %s: admitted %v, shed %v", e.open, c != nil, victim != nil)
					}
					conns = append(conns, c)
				case e.to == "heard":
					_, _ = conns[e.conn].Read(make([]byte, 1))
				default:
					tracker.setState(conns[e.conn], states[e.to])
				}
			}
			admitted, victim := tracker.admit(&fakeConn{addr: tt.newcomer})
			if (admitted == nil) != tt.wantRefused {
				t.Fatalf("newcomer admitted: %v, want %v", admitted != nil, !tt.wantRefused)
			}
			wantVictim := (*trackedConn)(nil)
			if tt.wantVictim >= 0 {
				wantVictim = conns[tt.wantVictim]
			}
			if victim != wantVictim {
				t.Fatalf("shed %v, want connection %d", victim, tt.wantVictim)
			}
			// The books hold what is open: the victim's and the refused
			// newcomer's places are given back, and only once.
			open := len(conns)
			if victim != nil {
				victim.Close()
				open--
			}
			if admitted != nil {
				open++
			}
			if tracker.total != open {
				t.Errorf("tracker counts %d connections, want %d", tracker.total, open)
			}
			for _, c := range conns {
				c.Close()
			}
			if admitted != nil {
				admitted.Close()
			}
			if tracker.total != 0 || len(tracker.byAddr) != 0 || tracker.idle.Len() != 0 || tracker.silent.Len() != 0 {
				t.Errorf("after every close: %d connections, %d addresses, %d idle, %d silent",
					tracker.total, len(tracker.byAddr), tracker.idle.Len(), tracker.silent.Len())
			}
		})
	}
}

func TestConnTrackerLogsShedding(t *testing.T) {
	var out services.SyncBuffer
	tracker := newConnTracker(slog.New(slog.NewTextHandler(&out, nil)), ConnLimits{Total: 1})
	tracker.quiet = 10 * time.Millisecond
	for range 5 {
		if c, _ := tracker.admit(&fakeConn{addr: "10.0.0.1"}); c == nil {
			t.Fatal("a silent connection was not shed for a newcomer")
		}
	}
	err := services.WaitFor(context.Background(), 20*time.Second, func() error {
		if !strings.Contains(out.String(), "connection shedding stopped") {
			return fmt.Errorf("no end of shedding logged:\n%s", out.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	log := out.String()
	if n := strings.Count(log, "connection limits reached"); n != 1 {
		t.Errorf("the start of shedding logged %d times, want once:\n%s", n, log)
	}
	if !strings.Contains(log, "shed=4 refused=0") {
		t.Errorf("the end of shedding does not count 4 shed connections:\n%s", log)
	}
}

// TestLimitConnections runs the limits on real sockets: a connection that
// sent a byte is busy and keeps its place; one that sent nothing is shed for
// a newcomer.
func TestLimitConnections(t *testing.T) {
	tests := []struct {
		name       string
		limits     ConnLimits
		busy       bool // each client sends a byte, read by the server
		open       int  // connections opened from 127.0.0.1
		wantClosed int  // of those, how many the server closes: the first ones when shed
		// otherServed says a connection from 127.0.0.2 is then accepted.
		otherServed bool
	}{
		{name: "busy, per address", limits: ConnLimits{Total: 10, PerAddress: 2}, busy: true, open: 4, wantClosed: 2, otherServed: true},
		{name: "busy, in all", limits: ConnLimits{Total: 3}, busy: true, open: 5, wantClosed: 2},
		{name: "silent, per address", limits: ConnLimits{Total: 10, PerAddress: 2}, open: 4, wantClosed: 2, otherServed: true},
		{name: "silent, in all", limits: ConnLimits{Total: 3}, open: 5, wantClosed: 2, otherServed: true},
		{name: "no limits", busy: true, open: 5, otherServed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := LimitConnections(slog.New(slog.DiscardHandler), tt.limits, raw)[0]
			defer l.Close()
			accepted := make(chan net.Conn, 100)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					if tt.busy { // echoes the client's byte, so the client knows it was read
						go func() {
							b := make([]byte, 1)
							if _, err := c.Read(b); err == nil {
								_, _ = c.Write(b)
							}
						}()
					}
					accepted <- c
				}
			}()
			// closed gets the index of each client connection the server
			// closes; after its echo the server never writes, so a read ends
			// only then.
			closed := make(chan int, 100)
			dial := func(from string, i int) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if tt.busy {
					// Past a limit the server closes instead of echoing.
					_, _ = c.Write([]byte{'x'})
					if _, err := c.Read(make([]byte, 1)); err != nil {
						closed <- i
						return
					}
				}
				go func() {
					_, _ = c.Read(make([]byte, 1))
					closed <- i
				}()
			}
			deadline := time.After(20 * time.Second)
			await := func(n int) {
				for range n {
					select {
					case c := <-accepted:
						t.Cleanup(func() { c.Close() })
					case <-deadline:
						t.Fatalf("the server accepted fewer than %d connections", n)
					}
				}
			}
			awaitClosed := func(n int) map[int]bool {
				got := map[int]bool{}
				for range n {
					select {
					case i := <-closed:
						got[i] = true
					case <-deadline:
						t.Fatalf("the server closed fewer than %d connections", n)
					}
				}
				return got
			}
			for i := range tt.open {
				dial("127.0.0.1", i)
			}
			// Every connection is either accepted or refused, and each shed
			// one was accepted first: both counts reached means no other.
			wantAccepted := tt.open - tt.wantClosed
			if !tt.busy {
				wantAccepted = tt.open
			}
			await(wantAccepted)
			got := awaitClosed(tt.wantClosed)
			if !tt.busy {
				for i := range tt.wantClosed {
					if !got[i] {
						t.Errorf("closed %v, want the %d oldest", got, tt.wantClosed)
					}
				}
			}

			dial("127.0.0.2", tt.open)
			if tt.otherServed {
				await(1)
			} else if got := awaitClosed(1); !got[tt.open] {
				t.Errorf("closed %v, want the newcomer %d", got, tt.open)
			}
		})
	}
}
