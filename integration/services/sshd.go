package services

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHD is a throwaway OpenSSH server: one sshd process listening on one port
// of several loopback addresses, each address standing for a distinct node.
type SSHD struct {
	// Port is the one port sshd listens on at every address.
	Port int
	// Addrs are the loopback addresses (127.0.0.2, 127.0.0.3...), one per node.
	Addrs []string
	// User logs in: root, or the current user when the tests do not run as root.
	User string
	// ClientKey is the path of the private key sshd accepts.
	ClientKey string
	// Home is the HOME of the sessions: an empty directory, so that the
	// login user's shell start-up files (on the build machines root's
	// .bashrc runs pyenv: most of a second per command) stay out of the
	// tests. The working directory of a session is still the user's own.
	Home string

	dir     string
	server  string
	keygen  string
	mu      sync.Mutex
	hostKey ssh.PublicKey
	procs   []*sshdProc
	// perProcess is how many addresses one sshd process serves (maxListen by
	// default; 1 lets a test take single nodes down and up).
	perProcess int
	// distinctKeys gives each process a host key of its own.
	distinctKeys bool
}

// sshdProc is one sshd process. OpenSSH listens on at most 16 sockets
// (MAX_LISTEN_SOCKS), so more addresses take several processes on one port.
type sshdProc struct {
	cmd     *exec.Cmd
	done    chan error
	stopped sync.Once
}

// maxListen is OpenSSH's MAX_LISTEN_SOCKS.
const maxListen = 16

// NodeAddrs lists n loopback addresses starting at 127.0.0.2 (127.0.0.1 is
// left to the other services).
func NodeAddrs(n int) []string {
	addrs := make([]string, 0, n)
	for i := range n {
		addrs = append(addrs, fmt.Sprintf("127.0.%d.%d", (i+2)/256, (i+2)%256))
	}
	return addrs
}

// SharedSSHDNodes is how many node addresses SharedSSHD listens on.
const SharedSSHDNodes = 20

var sharedSSHD shared[*SSHD]

// SharedSSHD starts one sshd for the test binary on first use, listening on
// NodeAddrs(SharedSSHDNodes); Main stops it. Tests that restart or stop sshd
// need their own from NewSSHD.
func SharedSSHD(t testing.TB) *SSHD {
	t.Helper()
	return sharedSSHD.get(t, "OpenSSH sshd", func() (*SSHD, error) {
		return StartSSHD(context.Background(), NodeAddrs(SharedSSHDNodes))
	})
}

// NewSSHD starts an sshd of the test's own on addrs, stopped when the test ends.
func NewSSHD(t testing.TB, addrs ...string) *SSHD {
	t.Helper()
	return newSSHD(t, maxListen, addrs)
}

// NewSSHDPerNode is NewSSHD with one sshd process per address, so that
// PauseNode and ResumeNode can take single nodes down and bring them back.
func NewSSHDPerNode(t testing.TB, addrs ...string) *SSHD {
	t.Helper()
	return newSSHD(t, 1, addrs)
}

func newSSHD(t testing.TB, perProcess int, addrs []string) *SSHD {
	t.Helper()
	s, err := startSSHD(context.Background(), perProcess, addrs, false)
	if err != nil {
		Unavailable(t, "OpenSSH sshd", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartSSHD creates a host key and a client key in a temporary directory and
// starts sshd on one spare port of addrs; openssh-server must be installed.
func StartSSHD(ctx context.Context, addrs []string) (*SSHD, error) {
	return startSSHD(ctx, maxListen, addrs, false)
}

// StartSSHDPerNode is StartSSHD with one sshd process per address, each
// with a host key of its own, as separate machines have. HostKey is the
// first node's.
func StartSSHDPerNode(ctx context.Context, addrs []string) (*SSHD, error) {
	return startSSHD(ctx, 1, addrs, true)
}

func startSSHD(ctx context.Context, perProcess int, addrs []string, distinctKeys bool) (*SSHD, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("sshd needs at least one listen address")
	}
	server, err := Find("sshd")
	if err != nil {
		return nil, err
	}
	keygen, err := lookPath("ssh-keygen")
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("current user: %w", err)
	}
	dir, err := os.MkdirTemp("", "cmon-sshd-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s := &SSHD{Addrs: addrs, User: u.Username, ClientKey: filepath.Join(dir, "id"), Home: filepath.Join(dir, "home"),
		dir: dir, server: server, keygen: keygen, perProcess: perProcess, distinctKeys: distinctKeys}
	if err := os.Mkdir(s.Home, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create session home: %w", err)
	}
	if err := s.newKey(ctx, s.ClientKey); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	pub, err := os.ReadFile(s.ClientKey + ".pub")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("read client key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write authorized_keys: %w", err)
	}
	if err := s.newHostKey(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for g := 1; distinctKeys && g < len(addrs); g++ {
		if err := s.newKey(ctx, s.hostKeyPath(g)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start without its privilege-separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("create /run/sshd: %w", err)
		}
	}
	for attempt := 0; attempt < 3; attempt++ {
		if s.Port, err = FreePort(addrs[0]); err != nil {
			break
		}
		if err = s.start(ctx); err == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

func (s *SSHD) newKey(ctx context.Context, path string) error {
	_ = os.Remove(path)
	_ = os.Remove(path + ".pub")
	out, err := exec.CommandContext(ctx, s.keygen, "-q", "-t", "ed25519", "-N", "", "-C", "cmon-test", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen: %w: %s", err, lastLines(out, 3))
	}
	return nil
}

func (s *SSHD) newHostKey(ctx context.Context) error {
	path := s.hostKeyPath(0)
	if err := s.newKey(ctx, path); err != nil {
		return err
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		return fmt.Errorf("read host key: %w", err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		return fmt.Errorf("parse host key: %w", err)
	}
	s.mu.Lock()
	s.hostKey = key
	s.mu.Unlock()
	return nil
}

// config is the recipe of docs/test-services.md for group g of the
// addresses, with two changes: MaxSessions stays at OpenSSH's default of 10,
// so that a client opening more sessions than a real node allows fails here
// too, and HOME is Home (see there).
func (s *SSHD) config(g int, addrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Port %d\n", s.Port)
	for _, a := range addrs {
		fmt.Fprintf(&b, "ListenAddress %s\n", a)
	}
	fmt.Fprintf(&b, "HostKey %s\n", s.hostKeyPath(g))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.dir, "authorized_keys"))
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.dir, fmt.Sprintf("sshd%d.pid", g)))
	fmt.Fprintf(&b, "SetEnv HOME=%s\n", s.Home)
	b.WriteString("StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" +
		"PermitRootLogin prohibit-password\nPrintMotd no\nMaxStartups 500\nMaxSessions 10\nLoginGraceTime 30\n")
	return b.String()
}

// start runs one sshd per group of at most maxListen addresses, all on s.Port.
func (s *SSHD) start(ctx context.Context) error {
	for g := 0; g*s.perProcess < len(s.Addrs); g++ {
		p, err := s.startGroup(ctx, g, s.group(g))
		if err != nil {
			s.halt()
			return err
		}
		s.mu.Lock()
		s.procs = append(s.procs, p)
		s.mu.Unlock()
	}
	return nil
}

func (s *SSHD) group(g int) []string {
	return s.Addrs[g*s.perProcess : min((g+1)*s.perProcess, len(s.Addrs))]
}

// PauseNode takes node i down, with the connections it serves (NewSSHDPerNode only).
func (s *SSHD) PauseNode(i int) {
	s.mu.Lock()
	p := s.procs[i]
	s.mu.Unlock()
	stopTree(p)
}

// ResumeNode brings a paused node i back with the same host key.
func (s *SSHD) ResumeNode(ctx context.Context, i int) error {
	p, err := s.startGroup(ctx, i, s.group(i))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.procs[i] = p
	s.mu.Unlock()
	return nil
}

func (s *SSHD) startGroup(ctx context.Context, g int, addrs []string) (*sshdProc, error) {
	cfg := filepath.Join(s.dir, fmt.Sprintf("sshd%d_config", g))
	if err := os.WriteFile(cfg, []byte(s.config(g, addrs)), 0o600); err != nil {
		return nil, fmt.Errorf("write sshd_config: %w", err)
	}
	logPath := filepath.Join(s.dir, fmt.Sprintf("sshd%d.log", g))
	// -D keeps sshd in the foreground, so that this process owns its pid.
	p := &sshdProc{cmd: exec.Command(s.server, "-D", "-f", cfg, "-E", logPath), done: make(chan error, 1)}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case exit := <-p.done:
			p.done <- exit
			err = fmt.Errorf("sshd exited: %v", exit)
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(50 * time.Millisecond):
			if err = allBanners(addrs, s.Port); err == nil {
				return p, nil
			}
			if time.Now().Before(deadline) {
				continue
			}
		}
		break
	}
	log, _ := os.ReadFile(logPath)
	stopProcess(p.cmd, p.done)
	return nil, fmt.Errorf("sshd on port %d: %w: %s", s.Port, err, lastLines(log, 5))
}

func allBanners(addrs []string, port int) error {
	for _, a := range addrs {
		if err := banner(net.JoinHostPort(a, strconv.Itoa(port))); err != nil {
			return err
		}
	}
	return nil
}

// banner checks that an SSH server, not merely some listener, answers at addr.
func banner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read banner from %s: %w", addr, err)
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("%s answers %q, not SSH", addr, line)
	}
	return nil
}

// hostKeyPath is the host key file of process g: one for all, unless
// each has its own.
func (s *SSHD) hostKeyPath(g int) string {
	if s.distinctKeys && g > 0 {
		return filepath.Join(s.dir, fmt.Sprintf("hostkey%d", g))
	}
	return filepath.Join(s.dir, "hostkey")
}

// HostKey is the public host key sshd presents now.
func (s *SSHD) HostKey() ssh.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostKey
}

// AuthorizedKeys is the authorized_keys file of every node: a test that
// empties it makes new logins fail authentication.
func (s *SSHD) AuthorizedKeys() string { return filepath.Join(s.dir, "authorized_keys") }

// Addr is the host:port of node i.
func (s *SSHD) Addr(i int) string {
	return net.JoinHostPort(s.Addrs[i], strconv.Itoa(s.Port))
}

// Log is the log of sshd (of every process, when there are several) so far.
func (s *SSHD) Log() string {
	var b strings.Builder
	for g := 0; g*s.perProcess < len(s.Addrs); g++ {
		log, _ := os.ReadFile(filepath.Join(s.dir, fmt.Sprintf("sshd%d.log", g)))
		b.Write(log)
	}
	return b.String()
}

// AcceptedLogins counts the logins sshd accepted so far: one per SSH
// connection, which tells a test how many connections a client opened.
func (s *SSHD) AcceptedLogins() int {
	return strings.Count(s.Log(), "Accepted publickey")
}

// RestartWithNewHostKey simulates a reinstalled node: sshd and every
// connection it serves end, and it comes back on the same port with a new host
// key, which clients must refuse.
func (s *SSHD) RestartWithNewHostKey(ctx context.Context) error {
	s.halt()
	if err := s.newHostKey(ctx); err != nil {
		return err
	}
	return s.start(ctx)
}

// Stop ends sshd, the connections it serves and the commands they run, and
// removes its files.
func (s *SSHD) Stop() {
	s.halt()
	os.RemoveAll(s.dir)
}

// halt stops the listeners and their descendants. A per-connection sshd
// outlives its listener, so the tree is collected first and killed after.
func (s *SSHD) halt() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for _, p := range procs {
		stopTree(p)
	}
}

// stopTree stops one sshd and the per-connection processes below it.
func stopTree(p *sshdProc) {
	p.stopped.Do(func() {
		if p.cmd.Process == nil {
			return
		}
		// Frozen, the listener forks off no connection between the reading
		// of its tree and its end: one it did would outlive it and keep
		// answering on a node meant to be down. Killed while frozen, it
		// accepts nothing more; connections in its backlog are reset.
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		for _, child := range descendants(pid) {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// descendants lists the processes below pid, read from /proc (Linux only;
// elsewhere none are found and connections end when their clients close).
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in parentheses may hold spaces: fields start after its ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
