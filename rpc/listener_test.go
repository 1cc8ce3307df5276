package rpc

import (
	"net"
	"testing"
	"time"
)

func TestLimitConnections(t *testing.T) {
	tests := []struct {
		name        string
		limits      ConnLimits
		open        int // connections opened from 127.0.0.1
		wantServed  int // of those, how many the server accepts; it closes the rest
		otherServed bool
	}{
		{name: "per address", limits: ConnLimits{Total: 10, PerAddress: 2}, open: 4, wantServed: 2, otherServed: true},
		{name: "in all", limits: ConnLimits{Total: 3}, open: 5, wantServed: 3},
		{name: "no limits", open: 5, wantServed: 5, otherServed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := LimitConnections(raw, tt.limits)
			defer l.Close()
			accepted := make(chan net.Conn, 100)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			// closed gets a value for each client connection the server
			// closes; the server never writes, so a read ends only then.
			closed := make(chan string, 100)
			dial := func(from string) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				go func() {
					_, _ = c.Read(make([]byte, 1))
					closed <- from
				}()
			}
			deadline := time.After(20 * time.Second)
			await := func(ch <-chan net.Conn, n int) {
				for range n {
					select {
					case c := <-ch:
						t.Cleanup(func() { c.Close() })
					case <-deadline:
						t.Fatalf("the server accepted fewer than %d connections", n)
					}
				}
			}
			awaitClosed := func(n int) {
				for range n {
					select {
					case <-closed:
					case <-deadline:
						t.Fatalf("the server closed fewer than %d connections", n)
					}
				}
			}
			for range tt.open {
				dial("127.0.0.1")
			}
			// Every connection is either accepted or closed: both counts
			// reached means none more was accepted.
			await(accepted, tt.wantServed)
			awaitClosed(tt.open - tt.wantServed)

			dial("127.0.0.2")
			if tt.otherServed {
				await(accepted, 1)
			} else {
				awaitClosed(1)
			}
		})
	}
}
