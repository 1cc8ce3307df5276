// Package fleet simulates many SSH nodes in one process, for measuring cmon
// at a scale that real sshd processes on loopback cannot reach: an SSH server
// built on golang.org/x/crypto/ssh listens on thousands of loopback
// addresses and answers a tiny fixed set of commands, both as plain exec
// requests (ssh host true, as parallel-ssh sends them) and through cmon's
// exec protocol (hosts/remote/script.go). Real OpenSSH stays the test of
// correctness; the simulator is for scale.
package fleet

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// Fleet is a running simulator.
type Fleet struct {
	// Addrs are the simulated nodes' addresses; all listen on Port.
	Addrs []string
	Port  int
	// User is the login name the nodes accept (any name passes; this one is
	// what the bench registers).
	User string
	// ClientKey is the path of the private key the nodes accept.
	ClientKey string
	// HostKey is the nodes' shared host key.
	HostKey ssh.PublicKey

	config    *ssh.ServerConfig
	listeners []net.Listener
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[ssh.Conn]struct{}

	opened   atomic.Int64 // connections accepted
	commands atomic.Int64 // commands run
	perNode  sync.Map     // address -> *atomic.Int64, commands run there
	diskUse  sync.Map     // address -> int, the root file system's use in percent (default 40)
}

// SetDiskUse sets how full a node says its root file system is.
func (f *Fleet) SetDiskUse(addr string, percent int) { f.diskUse.Store(addr, percent) }

// Addrs lists n loopback addresses from 127.10.0.1 on, clear of the ones
// the tests and the bench's sshd use.
func Addrs(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("127.%d.%d.%d", 10+i/65025, i/255%255, i%255+1)
	}
	return out
}

// Start listens on port (0 for a spare one) of every address in addrs and
// writes the client key into dir.
func Start(ctx context.Context, dir string, addrs []string, port int) (*Fleet, error) {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, err
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "fleet client")
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "fleet_client_key")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	accepted, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	f := &Fleet{Addrs: addrs, User: "fleet", ClientKey: keyPath, HostKey: hostSigner.PublicKey(), conns: map[ssh.Conn]struct{}{}}
	f.config = &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if string(key.Marshal()) != string(accepted.Marshal()) {
			return nil, errors.New("unknown key")
		}
		return nil, nil
	}}
	f.config.AddHostKey(hostSigner)
	for _, addr := range addrs {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			f.Stop()
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		f.Port = port
		f.listeners = append(f.listeners, l)
		f.wg.Go(func() { f.accept(l, addr) })
	}
	return f, nil
}

// Opened is how many connections the nodes accepted; Open how many are open
// now; Commands how many commands they ran.
func (f *Fleet) Opened() int64 { return f.opened.Load() }

// CommandsOn is how many commands the node at addr ran.
func (f *Fleet) CommandsOn(addr string) int64 {
	if n, ok := f.perNode.Load(addr); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}
func (f *Fleet) Commands() int64 { return f.commands.Load() }
func (f *Fleet) Open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// Stop closes every listener and connection and waits for them.
func (f *Fleet) Stop() {
	for _, l := range f.listeners {
		l.Close()
	}
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *Fleet) accept(l net.Listener, addr string) {
	for {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		f.opened.Add(1)
		f.wg.Go(func() { f.serve(nc, addr) })
	}
}

func (f *Fleet) serve(nc net.Conn, addr string) {
	conn, chans, reqs, err := ssh.NewServerConn(nc, f.config)
	if err != nil {
		nc.Close()
		return
	}
	f.mu.Lock()
	f.conns[conn] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, conn)
		f.mu.Unlock()
	}()
	go ssh.DiscardRequests(reqs)
	var sessions sync.WaitGroup
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		sessions.Go(func() { f.session(ch, chReqs, addr) })
	}
	sessions.Wait()
}

// session answers one exec request and closes the channel.
func (f *Fleet) session(ch ssh.Channel, reqs <-chan *ssh.Request, addr string) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		f.commands.Add(1)
		n, _ := f.perNode.LoadOrStore(addr, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		status := f.exec(ch, payload.Command, addr, f.disk(addr))
		_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
		return
	}
}

// exec runs a command line: cmon's bootstrap reads its script from stdin.
func (f *Fleet) disk(addr string) int {
	if v, ok := f.diskUse.Load(addr); ok {
		return v.(int)
	}
	return 40
}

func (f *Fleet) exec(ch ssh.Channel, line, addr string, disk int) uint32 {
	if !strings.Contains(line, "cmon-pgid:") {
		return run(ch, line, addr, disk)
	}
	_, _ = io.WriteString(ch, "cmon-pgid:4242\n")
	in := bufio.NewReader(ch)
	for {
		l, err := in.ReadString('\n')
		if err != nil {
			return 97
		}
		if strings.TrimSuffix(l, "\n") == "cmon-exec-v1" {
			break
		}
	}
	countLine, err := in.ReadString('\n')
	if err != nil {
		return 97
	}
	n, err := strconv.Atoi(strings.TrimSpace(countLine))
	if err != nil {
		return 97
	}
	var script strings.Builder
	for range n {
		l, err := in.ReadString('\n')
		if err != nil {
			return 97
		}
		script.WriteString(l)
	}
	return run(ch, script.String(), addr, disk)
}

// run answers the fixed command set: true, hostname, the monitor's df, the
// facts script of registration, and the kill script (its process group is
// gone at once).
func run(ch ssh.Channel, script, addr string, disk int) uint32 {
	cmd := strings.TrimSpace(script)
	switch {
	case strings.HasPrefix(cmd, "df -P /"):
		_, _ = fmt.Fprintf(ch, "/dev/fleet 10000000 %d %d %d%% /\n", disk*100000, (100-disk)*100000, disk)
		return 0
	case cmd == "true" || strings.HasPrefix(cmd, "kill "):
		return 0
	case cmd == "hostname":
		_, _ = io.WriteString(ch, "node-"+addr+"\n")
		return 0
	case strings.Contains(cmd, "os-release"):
		_, _ = fmt.Fprintf(ch, "os=\"Fleet Linux 1\"\nkernel=6.1.0-fleet\ncpus=4\nmem_kb=8388608\nssh=127.0.0.1 40000 %s 22\n", addr)
		return 0
	}
	_, _ = fmt.Fprintf(ch.Stderr(), "fleet: command not simulated: %.80s\n", cmd)
	return 127
}
