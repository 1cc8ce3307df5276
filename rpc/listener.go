package rpc

import (
	"net"
	"sync"
)

// ConnLimits bound the connections a controller holds open: in all, and from
// one client address, so that one flooding client cannot take the file
// descriptors and memory its other clients need.
type ConnLimits struct {
	Total      int // 0: no bound
	PerAddress int // 0: no bound
}

// limitListener closes at once each connection past a limit; the client
// sees a reset, and the controller keeps serving the connections it holds.
type limitListener struct {
	net.Listener
	limits ConnLimits

	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

// LimitConnections wraps l with limits.
func LimitConnections(l net.Listener, limits ConnLimits) net.Listener {
	if limits.Total <= 0 && limits.PerAddress <= 0 {
		return l
	}
	return &limitListener{Listener: l, limits: limits, byAddr: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		if l.admit(addr) {
			return &limitedConn{Conn: c, release: func() { l.release(addr) }}, nil
		}
		c.Close()
	}
}

func (l *limitListener) admit(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.limits.Total > 0 && l.total >= l.limits.Total) ||
		(l.limits.PerAddress > 0 && l.byAddr[addr] >= l.limits.PerAddress) {
		return false
	}
	l.total++
	l.byAddr[addr]++
	return true
}

func (l *limitListener) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
