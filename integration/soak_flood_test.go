//go:build soak

package integration

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSoakSheddingFloods: the two floods of the second hardening issue at
// full size against the default limits (2000 in all, 200 per address): 3000
// keep-alive connections from 30 addresses that each sent a ping and stay
// open, and 300 connections from 127.0.0.1 that never start TLS. Pings from
// a fresh address and from a flooding one are all answered.
func TestSoakSheddingFloods(t *testing.T) {
	c := startController(t, controllerOptions{logLevel: "info"})
	hostport := strings.TrimPrefix(c.URL, "https://")
	var flooders []string
	for i := range 30 {
		flooders = append(flooders, fmt.Sprintf("127.0.4.%d", i+1))
	}
	tests := []struct {
		name           string
		flood          func(t *testing.T) (conns []net.Conn, summary string)
		flooder, fresh string
	}{
		{name: "keep-alive flood", flooder: flooders[0], fresh: "127.0.4.200",
			flood: func(t *testing.T) ([]net.Conn, string) {
				conns, answered := keepAliveFlood(t, hostport, flooders, 100)
				return conns, fmt.Sprintf("%d connections from %d addresses, %d of their pings answered", len(conns), len(flooders), answered)
			}},
		{name: "handshake flood", flooder: "127.0.0.1", fresh: "127.0.4.201",
			flood: func(t *testing.T) ([]net.Conn, string) {
				conns := silentFlood(t, hostport, "127.0.0.1", 300)
				return conns, fmt.Sprintf("%d connections without a handshake from 127.0.0.1", len(conns))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, summary := tt.flood(t)
			defer closeAll(conns)
			const n = 40
			freshOK, freshTook := pings(c, tt.fresh, n)
			flooderOK, flooderTook := pings(c, tt.flooder, n)
			p99 := func(took []time.Duration) time.Duration { return took[len(took)*99/100].Round(time.Millisecond) }
			fmt.Printf("connection-flood: %s: %s; pings answered %d/%d from a fresh address (p99 %s), %d/%d from the flooding one (p99 %s)\n",
				tt.name, summary, freshOK, n, p99(freshTook), flooderOK, n, p99(flooderTook))
			if freshOK != n || flooderOK != n {
				t.Errorf("pings went unanswered during the %s", tt.name)
			}
		})
	}
}
