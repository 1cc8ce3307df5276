package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pingBody is the one request the floods and their probes send.
const pingBody = `{"operation":"ping"}`

// keepAliveFlood opens perAddr TLS connections from each of addrs, sends one
// ping on each over an HTTP/1.1 keep-alive connection, reads its answer and
// holds the connection open: what a crowd of well-behaved clients that
// never hang up looks like. It returns the connections it holds (to close)
// and how many were answered.
func keepAliveFlood(t testing.TB, hostport string, addrs []string, perAddr int) (conns []net.Conn, answered int) {
	t.Helper()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(a)}}
			for range perAddr {
				conn, err := tls.DialWithDialer(d, "tcp", hostport, &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					continue
				}
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := fmt.Fprintf(conn, "POST /v2/controller HTTP/1.1\r\nHost: cmon\r\nContent-Type: application/json\r\n"+
					"Content-Length: %d\r\n\r\n%s", len(pingBody), pingBody); err != nil {
					continue
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && strings.Contains(string(body), `"Ok"`) {
					mu.Lock()
					answered++
					mu.Unlock()
				}
				_ = conn.SetDeadline(time.Time{})
			}
		}()
	}
	wg.Wait()
	return conns, answered
}

// silentFlood opens n plain TCP connections from addr and sends nothing on
// them, not even a TLS handshake.
func silentFlood(t testing.TB, hostport, addr string, n int) []net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
	var conns []net.Conn
	for range n {
		conn, err := d.Dial("tcp", hostport)
		if err != nil {
			t.Fatalf("silent connection %d from %s: %v", len(conns)+1, addr, err)
		}
		conns = append(conns, conn)
	}
	return conns
}

// pings sends n pings from addr with curl, each on a new connection, and
// returns how many were answered and how long each took, sorted.
func pings(c *controller, addr string, n int) (answered int, took []time.Duration) {
	for range n {
		start := time.Now()
		out, err := runCurl("-sk", "--max-time", "20", "--interface", addr, "-d", pingBody, c.URL+"/v2/controller")
		took = append(took, time.Since(start))
		if err == nil && strings.Contains(out, `"Ok"`) {
			answered++
		}
	}
	slices.Sort(took)
	return answered, took
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// TestConnectionFloodsShed: with its connection limits full of idle
// keep-alive connections, or of connections that never sent a byte, the
// controller sheds those, so that a client that sends a request is served,
// from a fresh address and from the flooding one. The limits are small here;
// make soak drills the full size.
func TestConnectionFloodsShed(t *testing.T) {
	c := startController(t, controllerOptions{args: []string{"--max-connections", "40", "--max-connections-per-address", "20"}})
	hostport := strings.TrimPrefix(c.URL, "https://")
	tests := []struct {
		name  string
		flood func(t *testing.T) []net.Conn
		// flooder is an address the flood came from; fresh one it did not.
		flooder, fresh string
	}{
		{name: "idle keep-alive connections fill the limits", flooder: "127.0.3.1", fresh: "127.0.3.99",
			flood: func(t *testing.T) []net.Conn {
				// Three addresses of 20: more than the total and each at its own limit.
				conns, answered := keepAliveFlood(t, hostport, []string{"127.0.3.1", "127.0.3.2", "127.0.3.3"}, 20)
				if answered < 40 {
					t.Errorf("only %d of the flood's 60 pings answered: a newcomer should shed an idle connection", answered)
				}
				return conns
			}},
		{name: "connections without a handshake fill an address's limit", flooder: "127.0.0.1", fresh: "127.0.3.98",
			flood: func(t *testing.T) []net.Conn { return silentFlood(t, hostport, "127.0.0.1", 30) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns := tt.flood(t)
			defer closeAll(conns)
			for _, addr := range []string{tt.fresh, tt.flooder} {
				if answered, _ := pings(c, addr, 5); answered != 5 {
					t.Errorf("%d of 5 pings from %s answered during the flood", answered, addr)
				}
			}
		})
	}
	if !strings.Contains(c.Log(), "connection limits reached: shedding") {
		t.Errorf("the log does not say when shedding started")
	}
}
