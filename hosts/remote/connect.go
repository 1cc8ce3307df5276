package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// open takes a pooled connection and a session on it. A pooled connection
// that turns out broken is replaced once, transparently: nothing ran on it.
func (c *Client) open(ctx context.Context, key poolKey, t Target) (*conn, *ssh.Session, func(), error) {
	node := key.addr
	for attempt := 0; ; attempt++ {
		cn, fresh, err := c.pool.acquire(ctx, key, t)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, nil, newError(stopKind(ctx), node, fmt.Errorf("while connecting: %w", err))
			}
			var e *Error
			if errors.As(err, &e) {
				return nil, nil, nil, e
			}
			return nil, nil, nil, newError(ErrConnect, node, err)
		}
		sess, release, err := c.session(ctx, cn)
		if err == nil {
			return cn, sess, release, nil
		}
		c.pool.release(cn, 0, false)
		if ctx.Err() != nil {
			return nil, nil, nil, newError(stopKind(ctx), node, fmt.Errorf("while waiting for a session: %w", err))
		}
		// A refused channel comes from a live peer: the connection is sound
		// and must not be dropped under other commands.
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) || fresh || attempt > 0 {
			return nil, nil, nil, newError(ErrConnect, node, fmt.Errorf("open session: %w", err))
		}
		c.log.InfoContext(ctx, "pooled ssh connection is broken, reconnecting", "node", node, "err", err)
		c.pool.discard(cn)
	}
}

// session opens a command session. sshd counts a closed session against
// MaxSessions until it has collected it, which can lag behind our close (it
// answers "open failed" then): a refused session is retried briefly before
// the refusal counts.
func (c *Client) session(ctx context.Context, cn *conn) (*ssh.Session, func(), error) {
	const tries = 6
	for try := 1; ; try++ {
		sess, release, err := cn.session(ctx, false)
		var refused *ssh.OpenChannelError
		if err == nil || try == tries || !errors.As(err, &refused) {
			return sess, release, err
		}
		c.log.DebugContext(ctx, "session refused, retrying", "node", cn.node, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Duration(try) * 50 * time.Millisecond):
		}
	}
}

func (c *Client) keyFile(t Target) string {
	if t.KeyFile != "" {
		return t.KeyFile
	}
	return c.cfg.KeyFile
}

// connect dials a node, checks its host key and logs in. Its errors are
// *Error, classified.
func (c *Client) connect(ctx context.Context, t Target) (*ssh.Client, error) {
	node := t.Addr()
	known, err := c.cfg.KnownHosts.Lookup(ctx, node)
	if err != nil {
		return nil, newError(ErrConnect, node, fmt.Errorf("read known host keys: %w", err))
	}
	auth, done, err := c.auth(ctx, t)
	if err != nil {
		return nil, newError(ErrSetup, node, err)
	}
	defer done()
	check := &hostKeyCheck{known: known, fingerprints: t.HostKeyFingerprints, learn: c.cfg.LearnHostKeys}
	nc, err := c.cfg.Dial(ctx, "tcp", node)
	if err != nil {
		return nil, newError(ErrConnect, node, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	// A handshake has no context: a deadline in the past interrupts it.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(nc, node, &ssh.ClientConfig{
		User:              t.User,
		Auth:              auth,
		HostKeyCallback:   c.containedHostKeyCheck(ctx, node, check),
		HostKeyAlgorithms: hostKeyAlgorithms(known),
	})
	interrupted := !stop()
	if err != nil {
		nc.Close()
		switch {
		case check.refused != nil:
			c.log.ErrorContext(ctx, "refusing node: host key check failed", "node", node, "err", err)
			return nil, newError(check.refused, node, unwrapHandshake(err))
		case interrupted:
			return nil, newError(ErrConnect, node, fmt.Errorf("handshake: %w", ctx.Err()))
		case check.verified:
			// The key exchange passed: what failed is the login.
			return nil, newError(ErrAuth, node, unwrapHandshake(err))
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			c.log.ErrorContext(ctx, "refusing node: it offers none of the host key types on record", "node", node, "err", err)
			return nil, newError(ErrHostKey, node, unwrapHandshake(err))
		default:
			return nil, newError(ErrConnect, node, unwrapHandshake(err))
		}
	}
	_ = nc.SetDeadline(time.Time{})
	if check.record {
		if err := c.cfg.KnownHosts.Record(ctx, node, check.presented); err != nil {
			sc.Close()
			if errors.Is(err, ErrHostKey) {
				c.log.ErrorContext(ctx, "refusing node: host key check failed", "node", node, "err", err)
				return nil, newError(ErrHostKey, node, err)
			}
			return nil, newError(ErrConnect, node, fmt.Errorf("record host key: %w", err))
		}
		c.log.InfoContext(ctx, "learned host key", "node", node, "key_type", check.presented.Type(),
			"fingerprint", ssh.FingerprintSHA256(check.presented))
	}
	c.log.DebugContext(ctx, "ssh connection open", "node", node, "user", t.User)
	return ssh.NewClient(sc, chans, reqs), nil
}

// unwrapHandshake drops x/crypto's "ssh: handshake failed: " prefix, which
// the error kind already says.
func unwrapHandshake(err error) error {
	if inner := errors.Unwrap(err); inner != nil && strings.HasPrefix(err.Error(), "ssh: handshake failed: ") {
		return inner
	}
	return err
}

// auth gives the login methods for a target: its key file, the default key
// file, or the agent. done releases the agent connection after the handshake.
func (c *Client) auth(ctx context.Context, t Target) (methods []ssh.AuthMethod, done func(), err error) {
	if path := c.keyFile(t); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			var pathErr *fs.PathError
			if errors.As(err, &pathErr) {
				err = pathErr.Err // the path is named below
			}
			return nil, nil, fmt.Errorf("key file %s cannot be read by cmon: %w", path, err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var protected *ssh.PassphraseMissingError
		if errors.As(err, &protected) {
			return nil, nil, fmt.Errorf("private key %s is protected by a passphrase: load it into ssh-agent instead", path)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("key file %s is not a private key cmon can use: %w", path, err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, func() {}, nil
	}
	if c.cfg.AgentSocket != "" {
		var d net.Dialer
		ac, err := d.DialContext(ctx, "unix", c.cfg.AgentSocket)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to ssh-agent: %w", err)
		}
		return []ssh.AuthMethod{ssh.PublicKeysCallback(agent.NewClient(ac).Signers)}, func() { ac.Close() }, nil
	}
	return nil, nil, errors.New("no private key file and no ssh-agent configured")
}

// containedHostKeyCheck runs check under Contain: the handshake calls it on
// a goroutine of its own, with a key the node chose, where a panic would end
// the controller. A fault refuses the node.
func (c *Client) containedHostKeyCheck(ctx context.Context, node string, check *hostKeyCheck) ssh.HostKeyCallback {
	return func(host string, addr net.Addr, key ssh.PublicKey) (err error) {
		if fault := Contain(func() { err = check.callback(host, addr, key) }); fault != nil {
			c.log.ErrorContext(ctx, "checking the host key failed in the controller", append([]any{"node", node}, FaultAttrs(fault)...)...)
			check.refused = ErrFault
			return fault
		}
		return err
	}
}
