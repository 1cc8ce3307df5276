package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config sets up a Client. Zero durations and sizes take the defaults below.
type Config struct {
	// KnownHosts holds the nodes' host keys. Required.
	KnownHosts KnownHosts
	// LearnHostKeys trusts and records the key of a node that has none on
	// record (registration mode). Off, such a node is refused (strict mode).
	// A key on record is always checked, whatever this says.
	LearnHostKeys bool
	// KeyFile is the private key used when a Target names none.
	KeyFile string
	// AgentSocket is an ssh-agent socket (the daemon passes $SSH_AUTH_SOCK),
	// used when neither the Target nor KeyFile names a key.
	AgentSocket string
	// Filters decide which commands may be sent, per cluster.
	Filters Filters
	// ConnectTimeout bounds dialing and the SSH handshake (default 10s).
	ConnectTimeout time.Duration
	// KeepOpen is how long an idle connection stays pooled (default 60s);
	// Request.KeepOpen overrides it per connection.
	KeepOpen time.Duration
	// Observer, when set, is told of connections and commands (metrics).
	Observer Observer
	// KeepAlive is the interval of keep-alive requests on pooled connections,
	// and how long one may go unanswered (default 15s).
	KeepAlive time.Duration
	// MaxSessions bounds the sessions open at once on one connection; keep it
	// at or below the nodes' sshd MaxSessions (default 10, OpenSSH's default).
	// One of them is kept back for ending timed-out commands; commands beyond
	// the rest wait for a free session (within their context and timeout).
	MaxSessions int
	// OutputLimit is the default per-stream output limit (DefaultOutputLimit).
	OutputLimit int
	// KillGrace is how long a timed-out or cancelled command has between
	// SIGTERM and SIGKILL (default 2s). It is the one grace period of a stop:
	// Run and RunMany return at most StopBound after their context ends.
	KillGrace time.Duration
	// Dial opens TCP connections; tests count connections through it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives the package's logs (default slog.Default()).
	Logger *slog.Logger
}

// Target is one node to run a command on.
type Target struct {
	Host string `json:"hostname"`
	// Port defaults to 22.
	Port int    `json:"port,omitempty"`
	User string `json:"username"`
	// KeyFile is the private key for this node (default Config.KeyFile, then the agent).
	KeyFile string `json:"key_file,omitempty"`
	// Cluster selects the cluster's command filter, if one is configured.
	Cluster string `json:"cluster,omitempty"`
	// HostKeyFingerprints, when given ("SHA256:..."), are the only host keys
	// accepted; a matching key not yet on record is recorded even in strict mode.
	HostKeyFingerprints []string `json:"host_key_fingerprints,omitempty"`
}

// Addr is the node's "host:port", the name it has in results and errors.
func (t Target) Addr() string {
	port := t.Port
	if port == 0 {
		port = 22
	}
	return hostPort(t.Host, port)
}

// Request is a command to run and how.
type Request struct {
	// Command is shell text, run by /bin/sh on the node.
	Command string
	// Env is exported to the command. It travels over stdin, never on the
	// command line, and its values are never logged.
	Env []EnvVar
	// Stdin is given to the command as its standard input.
	Stdin []byte
	// Dir is the working directory (default: the login directory).
	Dir string
	// Sudo runs the command as root.
	Sudo Sudo
	// Timeout ends the command, on the node too, after this long (0: the
	// context's deadline only). It counts from the call, connecting included.
	Timeout time.Duration
	// OutputLimit is how many bytes of each stream are kept and passed on
	// (default Config.OutputLimit); the rest is read and dropped.
	OutputLimit int
	// OnOutput, when set, receives output while the command runs, up to the
	// limit. Calls are serialized.
	OnOutput func(Chunk)
	// OnStarted, when set, hears the process group the command runs in on
	// the node, once it is known: what ends the command should the
	// controller die before it does (EndGroupCommand).
	OnStarted func(node string, pgid int)
	// KeepOpen sets how long this connection stays open once idle (PrivX's
	// keep_open_sec); 0 leaves it as it is.
	KeepOpen time.Duration
	// Close closes the connection once no command uses it (PrivX's close).
	Close bool
}

// Result is what a command did. Run returns one even with an error, holding
// whatever was known (output so far, times).
type Result struct {
	Node string `json:"node"`
	// ExitStatus is the command's exit status; 128+n when signal n ended it;
	// -1 when unknown (the command never ran or the node sent none).
	ExitStatus        int       `json:"exit_status"`
	ExitSignal        string    `json:"exit_signal,omitempty"`
	ExitSignalMessage string    `json:"exit_signal_message,omitempty"`
	Stdout            []byte    `json:"stdout"`
	Stderr            []byte    `json:"stderr"`
	StdoutTruncated   bool      `json:"stdout_truncated"`
	StderrTruncated   bool      `json:"stderr_truncated"`
	Started           time.Time `json:"started"`
	Ended             time.Time `json:"ended"`
}

// Client runs commands on nodes over pooled SSH connections. It is safe for
// concurrent use; Close it to end its connections.
type Client struct {
	cfg  Config
	log  *slog.Logger
	pool *pool
	// filters is cfg.Filters, changeable while running (SetFilters).
	filters atomic.Pointer[Filters]
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.KnownHosts == nil {
		return nil, errors.New("hosts client needs a known hosts store")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.KeepOpen <= 0 {
		cfg.KeepOpen = 60 * time.Second
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10
	}
	cfg.MaxSessions = max(cfg.MaxSessions, 2)
	if cfg.OutputLimit <= 0 {
		cfg.OutputLimit = DefaultOutputLimit
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 2 * time.Second
	}
	if cfg.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		cfg.Dial = d.DialContext
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{cfg: cfg, log: log.With("component", "remote")}
	c.SetFilters(cfg.Filters)
	c.pool = newPool(cfg, c.log, c.connect)
	return c, nil
}

// SetFilters changes the command filters for the commands sent from now on.
func (c *Client) SetFilters(f Filters) { c.filters.Store(&f) }

// CheckCommand tells, without sending anything, whether the filters let
// command run on the nodes of cluster: nil, or why not.
func (c *Client) CheckCommand(cluster, command string) error {
	return c.filters.Load().For(cluster).Check(command)
}

// stopSlack is what a stop may take beyond KillGrace: learning the command's
// process group, opening the session that ends it, the SIGKILL and the
// command's report of its end.
const stopSlack = 5 * time.Second

// StopBound is how long after its context ends a Run (or RunMany) returns at
// the most, having ended the remote command: the engine above waits for it.
func (c *Client) StopBound() time.Duration { return c.cfg.KillGrace + stopSlack }

// Close ends every pooled connection.
func (c *Client) Close() error {
	c.pool.close()
	return nil
}

// Run runs one command on one node and waits for it. A non-zero exit status
// is not an error; errors are *Error with one of the Err* kinds.
func (c *Client) Run(ctx context.Context, t Target, req Request) (*Result, error) {
	node := t.Addr()
	res := &Result{Node: node, ExitStatus: -1}
	if t.Host == "" || t.User == "" || t.Port < 0 || t.Port > 65535 {
		return res, newError(ErrInvalid, node, errors.New("target needs a host, a user and a valid port"))
	}
	if err := c.CheckCommand(t.Cluster, req.Command); err != nil {
		c.log.WarnContext(ctx, "command refused by filter", "node", node, "cluster", t.Cluster,
			"command", clip(req.Command), "reason", err)
		return res, newError(ErrRefused, node, err)
	}
	inv, err := newInvocation(req.Command, req.Dir, req.Env, req.Sudo, req.Stdin)
	if err != nil {
		return res, newError(ErrInvalid, node, err)
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, req.Timeout, errDeadline)
		defer cancel()
	}
	keyFile := c.keyFile(t)
	cn, sess, release, err := c.open(ctx, poolKey{user: t.User, addr: node, keyFile: keyFile}, t)
	if err != nil {
		return res, err
	}
	defer func() {
		release()
		c.pool.release(cn, req.KeepOpen, req.Close)
	}()

	limit := req.OutputLimit
	if limit <= 0 {
		limit = c.cfg.OutputLimit
	}
	outs := newOutputs(node, limit, req.OnOutput)
	stdout := newPgidWriter(streamWriter{outs, Stdout}, started(req.OnStarted, node))
	sess.Stdout = guardedWriter{outs, stdout}
	sess.Stderr = guardedWriter{outs, streamWriter{outs, Stderr}}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return res, newError(ErrConnLost, node, err)
	}
	log := c.log.With("node", node, "user", t.User, "sudo", req.Sudo.on())
	log.DebugContext(ctx, "running command", "command", clip(req.Command), "env", envKeys(req.Env), "dir", req.Dir)
	res.Started = time.Now()
	if err := sess.Start(inv.line); err != nil {
		return res, newError(ErrConnLost, node, fmt.Errorf("start command: %w", err))
	}
	go func() {
		// The command may exit without reading its stdin: a failed write is
		// no error of ours. The session's close unblocks a write left hanging.
		_, _ = stdin.Write(inv.stdin)
		_ = stdin.Close()
	}()
	waited, waitErr, stopped := c.await(ctx, cn, sess, stdout.pgid, req.Sudo, log)
	res.Ended = time.Now()
	if waited {
		outs.contain(stdout.flush)
	}
	fault := outs.seal(res)

	cause := exitOf(res, waited, waitErr)
	attrs := []any{"exit_status", res.ExitStatus, "duration", res.Ended.Sub(res.Started)}
	if res.ExitSignal != "" {
		attrs = append(attrs, "exit_signal", res.ExitSignal)
	}
	switch {
	case fault != nil:
		log.ErrorContext(ctx, "handling the command's output failed: the command fails, the controller goes on",
			append(attrs, FaultAttrs(fault)...)...)
		err = newError(ErrFault, node, fault)
	case stopped != nil:
		log.WarnContext(ctx, "command ended early", append(attrs, "why", stopped)...)
		err = newError(stopped, node, cause)
	case cause != nil:
		log.WarnContext(ctx, "command outcome unknown", append(attrs, "err", cause)...)
		err = newError(ErrConnLost, node, cause)
	default:
		log.DebugContext(ctx, "command finished", attrs...)
	}
	c.cfg.Observer.CommandEnded(res.Ended.Sub(res.Started), err)
	return res, err
}

// await waits for the command, or for ctx: then it ends the command on the
// node. stopped is ErrTimeout or ErrKilled in that case; waited is false when
// even closing the session did not make it report an end.
func (c *Client) await(ctx context.Context, cn *conn, sess *ssh.Session, pgid <-chan int, sudo Sudo, log *slog.Logger) (waited bool, waitErr, stopped error) {
	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()
	select {
	case err := <-waitc:
		return true, err, nil
	case <-ctx.Done():
	}
	select {
	case err := <-waitc:
		// It ended by itself just now: its process group may be gone and
		// its number free for another, so no kill.
		return true, err, nil
	default:
	}
	stopped = stopKind(ctx)
	log.WarnContext(ctx, "ending remote command", "why", stopped)
	// One deadline for the whole stop: the kill, then the command's report
	// of how it ended. Past it the connection is dropped, which ends the
	// session for certain, so Run returns within StopBound.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.StopBound())
	defer cancel()
	c.endRemote(stopCtx, cn, pgid, sudo, log)
	select {
	case err := <-waitc:
		return true, err, stopped
	case <-stopCtx.Done():
	}
	log.Warn("the command did not report its end in time: dropping the connection", "bound", c.StopBound())
	_ = sess.Close()
	c.pool.discard(cn)
	<-waitc
	return false, nil, stopped
}

// exitOf fills in how the command ended; it returns why that is unknown.
func exitOf(res *Result, waited bool, waitErr error) error {
	var exit *ssh.ExitError
	switch {
	case !waited:
		return errors.New("the session did not end after the kill")
	case waitErr == nil:
		res.ExitStatus = 0
	case errors.As(waitErr, &exit):
		res.ExitStatus = exit.ExitStatus()
		res.ExitSignal = exit.Signal()
		res.ExitSignalMessage = exit.Msg()
	default:
		// No exit status (*ssh.ExitMissingError) or the connection broke.
		return waitErr
	}
	return nil
}

// started binds a Request's OnStarted to the node, nil when not set.
func started(onStarted func(string, int), node string) func(int) {
	if onStarted == nil {
		return nil
	}
	return func(pgid int) { onStarted(node, pgid) }
}

// errDeadline is the cause of a Request.Timeout running out.
var errDeadline = errors.New("command timeout")

// stopKind tells a timeout from a cancellation.
func stopKind(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, errDeadline) || errors.Is(cause, context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ErrKilled
}

// endRemote ends the command's process group on the node over a second
// session on the same connection, as the same user (with sudo when the
// command used it), within ctx.
func (c *Client) endRemote(ctx context.Context, cn *conn, pgidc <-chan int, sudo Sudo, log *slog.Logger) {
	var pgid int
	select {
	case g, ok := <-pgidc:
		if !ok {
			log.Warn("cannot end remote command: its process group is unknown")
			return
		}
		pgid = g
	case <-ctx.Done():
		log.Warn("cannot end remote command: it never reported its process group")
		return
	}
	inv, err := newInvocation(EndGroupCommand(pgid, c.cfg.KillGrace), "", nil, sudo, nil)
	if err != nil {
		log.Warn("cannot end remote command", "err", err)
		return
	}
	sess, release, err := cn.session(ctx, true)
	if err != nil {
		log.Warn("cannot end remote command: no session", "pgid", pgid, "err", err)
		return
	}
	defer release()
	var stderr strings.Builder
	sess.Stdin = strings.NewReader(string(inv.stdin))
	sess.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run(inv.line) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		log.Warn("ending remote command failed", "pgid", pgid, "err", err, "stderr", clip(stderr.String()))
		return
	}
	log.Info("ended remote command", "pgid", pgid)
}

// clip shortens a command for a log line.
func clip(s string) string {
	const keep = 200
	if len(s) <= keep {
		return s
	}
	return s[:keep] + "..." + strconv.Itoa(len(s)-keep) + " more bytes"
}

func envKeys(env []EnvVar) []string {
	keys := make([]string, 0, len(env))
	for _, e := range env {
		keys = append(keys, e.Key)
	}
	return keys
}
