package rpc

import (
	"container/list"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimits bound the connections a controller holds open: in all, and from
// one client address, so that one flooding client cannot take the file
// descriptors and memory its other clients need.
type ConnLimits struct {
	Total      int // 0: no bound
	PerAddress int // 0: no bound
}

// shedQuiet is how long without a shed or refused connection ends a
// shedding episode, so that the log says so once rather than per connection.
const shedQuiet = 10 * time.Second

// connTracker holds the connections of every listener of a controller against
// its limits. At a limit it sheds what costs least to shed, so that a client
// that sends a request is served: the connection idle longest between
// requests, else the one that has waited longest without sending a byte (not
// even its TLS handshake). It refuses a newcomer only when every connection
// it could shed is busy with a request or a handshake; those end by the
// server's deadlines.
type connTracker struct {
	log    *slog.Logger
	limits ConnLimits
	quiet  time.Duration

	mu     sync.Mutex
	total  int
	byAddr map[string]*addrConns
	// Sheddable connections, oldest first.
	idle, silent list.List
	episode      *shedEpisode // nil while nothing is shed
}

// addrConns are one client address's connections.
type addrConns struct {
	count        int
	idle, silent list.List // of this address only, oldest first
}

// shedEpisode counts what a spell of pressure shed and refused, for the log.
type shedEpisode struct {
	started, last time.Time
	shed, refused int
	timer         *time.Timer
}

// connKind names the list a sheddable connection is on.
type connKind int

const (
	kindIdle connKind = iota
	kindSilent
)

func newConnTracker(log *slog.Logger, limits ConnLimits) *connTracker {
	return &connTracker{log: log, limits: limits, quiet: shedQuiet, byAddr: map[string]*addrConns{}}
}

// LimitConnections wraps listeners with limits they share.
func LimitConnections(log *slog.Logger, limits ConnLimits, listeners ...net.Listener) []net.Listener {
	if limits.Total <= 0 && limits.PerAddress <= 0 {
		return listeners
	}
	t := newConnTracker(log, limits)
	out := make([]net.Listener, len(listeners))
	for i, l := range listeners {
		out[i] = &limitListener{Listener: l, tracker: t}
	}
	return out
}

// limitListener admits connections through its tracker; the client of a
// connection shed or refused sees it closed.
type limitListener struct {
	net.Listener
	tracker *connTracker
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		admitted, victim := l.tracker.admit(c)
		if victim != nil {
			victim.Conn.Close() // its place is already given to c
		}
		if admitted != nil {
			return admitted, nil
		}
		c.Close()
	}
}

// admit books c, shedding a victim when a limit is reached; it returns no
// connection when c is refused.
func (t *connTracker) admit(c net.Conn) (admitted, victim *trackedConn) {
	addr := hostOf(c.RemoteAddr())
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.byAddr[addr]
	full := true
	switch {
	case t.limits.PerAddress > 0 && at != nil && at.count >= t.limits.PerAddress:
		// Only the address's own connections make room under its limit.
		victim = oldest(&at.idle, &at.silent)
	case t.limits.Total > 0 && t.total >= t.limits.Total:
		victim = oldest(&t.idle, &t.silent)
	default:
		full = false
	}
	if full {
		t.noteShedding(addr, victim != nil)
		if victim == nil {
			return nil, nil
		}
		t.forget(victim)
		at = t.byAddr[addr] // forgetting the last of addr's connections drops its entry
	}
	if at == nil {
		at = &addrConns{}
		t.byAddr[addr] = at
	}
	at.count++
	t.total++
	admitted = &trackedConn{Conn: c, tracker: t, addr: addr, at: at}
	t.list(admitted, kindSilent)
	return admitted, victim
}

func oldest(lists ...*list.List) *trackedConn {
	for _, l := range lists {
		if front := l.Front(); front != nil {
			return front.Value.(*trackedConn)
		}
	}
	return nil
}

// list puts c last on the lists of kind. Called with t.mu held.
func (t *connTracker) list(c *trackedConn, kind connKind) {
	t.unlist(c)
	c.globalList, c.localList = &t.idle, &c.at.idle
	if kind == kindSilent {
		c.globalList, c.localList = &t.silent, &c.at.silent
	}
	c.global, c.local = c.globalList.PushBack(c), c.localList.PushBack(c)
	c.sheddable.Store(true)
}

// unlist takes c off the sheddable lists. Called with t.mu held.
func (t *connTracker) unlist(c *trackedConn) {
	if c.global == nil {
		return
	}
	c.globalList.Remove(c.global)
	c.localList.Remove(c.local)
	c.global, c.local, c.globalList, c.localList = nil, nil, nil, nil
	c.sheddable.Store(false)
}

// forget gives c's place back. Called with t.mu held.
func (t *connTracker) forget(c *trackedConn) {
	if c.released {
		return
	}
	t.unlist(c)
	c.released = true
	t.total--
	if c.at.count--; c.at.count <= 0 {
		delete(t.byAddr, c.addr)
	}
}

func (t *connTracker) release(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forget(c)
}

// heard takes c off the lists: it is sending something, a handshake or a
// request, and is served as a busy connection.
func (t *connTracker) heard(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unlist(c)
}

// setState follows the server's view of c (http.Server.ConnState).
func (t *connTracker) setState(c *trackedConn, state http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case c.released:
	case state == http.StateIdle:
		t.list(c, kindIdle)
	case state != http.StateNew: // new connections are listed as silent when admitted
		t.unlist(c)
	}
}

// noteShedding counts a shed or refused connection, and logs when a spell of
// them begins; a timer logs its end. Called with t.mu held.
func (t *connTracker) noteShedding(addr string, shed bool) {
	now := time.Now()
	e := t.episode
	if e == nil {
		e = &shedEpisode{started: now}
		t.episode = e
		t.log.Warn("connection limits reached: shedding idle and silent connections, refusing new ones while all are busy",
			"connections", t.total, "max_connections", t.limits.Total,
			"max_connections_per_address", t.limits.PerAddress, "address", addr)
		e.timer = time.AfterFunc(t.quiet, t.endEpisode)
	}
	e.last = now
	if shed {
		e.shed++
	} else {
		e.refused++
	}
}

func (t *connTracker) endEpisode() {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.episode
	if wait := t.quiet - time.Since(e.last); wait > 0 {
		e.timer.Reset(wait)
		return
	}
	t.episode = nil
	t.log.Info("connection shedding stopped", "shed", e.shed, "refused", e.refused,
		"lasted", e.last.Sub(e.started).Round(time.Millisecond), "connections", t.total)
}

// trackedConn is a connection booked by a tracker; it gives its place back
// once, when closed.
type trackedConn struct {
	net.Conn
	tracker *connTracker
	addr    string
	at      *addrConns
	// sheddable says, without the lock, whether c is on the lists.
	sheddable atomic.Bool

	// Guarded by tracker.mu.
	global, local         *list.Element
	globalList, localList *list.List
	released              bool
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.sheddable.Load() {
		c.tracker.heard(c)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.tracker.release(c)
	return err
}

// trackConnState is the http.Server.ConnState hook that keeps trackers
// informed of which connections are idle.
func trackConnState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tracked, ok := c.(*trackedConn); ok {
		tracked.tracker.setState(tracked, state)
	}
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
