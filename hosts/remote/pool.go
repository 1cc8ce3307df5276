package remote

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// poolKey identifies a reusable connection: the same login on the same node
// with the same credentials.
type poolKey struct {
	user, addr, keyFile string
}

// pool keeps one SSH connection per poolKey open between commands, closes it
// after it has been idle for its keep-open time, and watches it with
// keep-alives.
type pool struct {
	log            *slog.Logger
	connectTimeout time.Duration
	keepOpen       time.Duration
	keepAlive      time.Duration
	maxSessions    int
	dial           func(ctx context.Context, t Target) (*ssh.Client, error)
	observer       Observer

	mu      sync.Mutex
	conns   map[poolKey]*conn
	dialing map[poolKey]*dialCall
	closed  bool
	wg      sync.WaitGroup
}

// dialCall lets concurrent commands for one node share one dial.
type dialCall struct {
	done chan struct{}
	c    *conn
	err  error
}

type conn struct {
	key    poolKey
	node   string
	client *ssh.Client
	// slots bounds the command sessions (sshd's MaxSessions, less one);
	// killSlot is the one kept back so that ending a command never waits
	// behind the commands that fill the connection.
	slots    chan struct{}
	killSlot chan struct{}
	gone     chan struct{}
	goneOnce sync.Once

	// guarded by pool.mu
	users    int
	keepOpen time.Duration
	idle     *time.Timer
	idleGen  int
}

var errPoolClosed = errors.New("ssh client closed")

func newPool(cfg Config, log *slog.Logger, dial func(context.Context, Target) (*ssh.Client, error)) *pool {
	return &pool{
		log: log, connectTimeout: cfg.ConnectTimeout, keepOpen: cfg.KeepOpen, keepAlive: cfg.KeepAlive,
		maxSessions: cfg.MaxSessions, dial: dial, observer: cfg.Observer,
		conns: map[poolKey]*conn{}, dialing: map[poolKey]*dialCall{},
	}
}

// acquire returns the pooled connection for key, dialing it when there is
// none; fresh tells whether it was dialed for this call. The dial itself is
// not bound to ctx: a caller that gives up leaves it to finish (within the
// connect timeout) for the next command.
func (p *pool) acquire(ctx context.Context, key poolKey, t Target) (c *conn, fresh bool, err error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, errPoolClosed
		}
		if c := p.conns[key]; c != nil {
			p.takeLocked(c)
			p.mu.Unlock()
			return c, false, nil
		}
		d := p.dialing[key]
		if d == nil {
			d = &dialCall{done: make(chan struct{})}
			p.dialing[key] = d
			p.wg.Add(1)
			go p.dialFor(key, t, d)
		}
		p.mu.Unlock()

		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		if d.err != nil {
			return nil, false, d.err
		}
		p.mu.Lock()
		if p.conns[key] == d.c {
			p.takeLocked(d.c)
			p.mu.Unlock()
			return d.c, true, nil
		}
		p.mu.Unlock() // taken and closed already: look again
	}
}

func (p *pool) takeLocked(c *conn) {
	c.users++
	c.idleGen++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
}

func (p *pool) dialFor(key poolKey, t Target, d *dialCall) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), p.connectTimeout)
	var (
		client *ssh.Client
		err    error
	)
	// The handshake handles what the node sends (its version, host key):
	// a fault there fails this connection only.
	if fault := Contain(func() { client, err = p.dial(ctx, t) }); fault != nil {
		p.log.Error("connecting failed in the controller", append([]any{"node", t.Addr()}, FaultAttrs(fault)...)...)
		err = newError(ErrFault, t.Addr(), fault)
	}
	cancel()
	p.observer.Dialed(err)

	p.mu.Lock()
	delete(p.dialing, key)
	if err == nil && p.closed {
		client.Close()
		err = errPoolClosed
	}
	if err == nil {
		c := &conn{
			key: key, node: t.Addr(), client: client, keepOpen: p.keepOpen,
			slots: make(chan struct{}, max(1, p.maxSessions-1)), killSlot: make(chan struct{}, 1),
			gone: make(chan struct{}),
		}
		p.conns[key] = c
		p.armIdleLocked(c) // in case every waiter gave up meanwhile
		p.wg.Add(2)
		go p.watch(c)
		go p.keepAliveLoop(c)
		d.c = c
	}
	d.err = err
	p.mu.Unlock()
	close(d.done)
}

// release gives a connection back after a command. keepOpen, when set, is the
// idle time the caller asks for from now on; closeNow closes it once idle.
func (p *pool) release(c *conn, keepOpen time.Duration, closeNow bool) {
	p.mu.Lock()
	c.users--
	if keepOpen > 0 {
		c.keepOpen = keepOpen
	}
	if c.users > 0 {
		p.mu.Unlock()
		return
	}
	if closeNow {
		p.removeLocked(c)
		p.mu.Unlock()
		c.close()
		return
	}
	p.armIdleLocked(c)
	p.mu.Unlock()
}

func (p *pool) armIdleLocked(c *conn) {
	if p.conns[c.key] != c || c.users > 0 {
		return
	}
	c.idleGen++
	gen := c.idleGen
	c.idle = time.AfterFunc(c.keepOpen, func() {
		p.mu.Lock()
		if c.idleGen != gen || c.users > 0 || p.closed {
			p.mu.Unlock()
			return
		}
		p.removeLocked(c)
		// Logged under the lock, so that no log line follows the pool's close.
		p.log.Debug("closing idle ssh connection", "node", c.node, "user", c.key.user)
		p.mu.Unlock()
		c.close()
	})
}

func (p *pool) removeLocked(c *conn) {
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
	c.idleGen++ // a timer already firing must not act
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
}

// discard drops a broken connection so that the next command dials afresh.
func (p *pool) discard(c *conn) {
	p.mu.Lock()
	p.removeLocked(c)
	p.mu.Unlock()
	c.close()
}

// watch notices a connection the node (or the network) closed.
func (p *pool) watch(c *conn) {
	defer p.wg.Done()
	err := c.client.Wait()
	p.observer.Closed()
	select {
	case <-c.gone:
	default:
		p.log.Info("ssh connection closed by peer", "node", c.node, "user", c.key.user, "err", err)
	}
	p.discard(c)
}

// keepAliveLoop asks the node for a reply now and then: a connection that stops
// answering (a dead peer behind a silent network) is dropped before a command
// hangs on it.
func (p *pool) keepAliveLoop(c *conn) {
	defer p.wg.Done()
	tick := time.NewTicker(p.keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-c.gone:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			// OpenSSH answers an unknown global request with a failure reply:
			// any reply proves the peer alive.
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timer := time.NewTimer(p.keepAlive)
		select {
		case err := <-reply:
			timer.Stop()
			if err == nil {
				continue
			}
			p.log.Warn("ssh keep-alive failed", "node", c.node, "err", err)
		case <-timer.C:
			p.log.Warn("ssh keep-alive unanswered", "node", c.node, "after", p.keepAlive)
		case <-c.gone:
			timer.Stop()
			return
		}
		p.discard(c)
		return
	}
}

func (c *conn) close() {
	c.goneOnce.Do(func() {
		close(c.gone)
		c.client.Close()
	})
}

// session opens a session on the connection once a slot is free. The release
// function closes it and frees the slot.
func (c *conn) session(ctx context.Context, kill bool) (*ssh.Session, func(), error) {
	slots := c.slots
	if kill {
		slots = c.killSlot
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-c.gone:
		return nil, nil, errConnGone
	}
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.client.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			<-slots
			return nil, nil, o.err
		}
		return o.s, func() { o.s.Close(); <-slots }, nil
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
			<-slots
		}()
		return nil, nil, ctx.Err()
	}
}

var errConnGone = errors.New("connection closed")

// close ends every connection and waits for the pool's goroutines.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
		p.removeLocked(c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}

// Observer is told of connections and commands, for metrics.
type Observer interface {
	// Dialed reports a connection attempt: err is nil when it opened.
	Dialed(err error)
	// Closed reports an open connection's end.
	Closed()
	// CommandEnded reports a command that ran for took, err as Run returned it.
	CommandEnded(took time.Duration, err error)
}

type noObserver struct{}

func (noObserver) Dialed(error)                      {}
func (noObserver) Closed()                           {}
func (noObserver) CommandEnded(time.Duration, error) {}
