package services

import (
	"context"
	"net"
	"os"
	"testing"

	"golang.org/x/crypto/ssh"
)

// login runs echo on node i of s, trusting only hostKey.
func login(t *testing.T, s *SSHD, i int, hostKey ssh.PublicKey) (string, error) {
	t.Helper()
	pem, err := os.ReadFile(s.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.Addr(i), &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(hostKey),
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.Output(`[ "$HOME" = "` + s.Home + `" ] && echo ok`)
	return string(out), err
}

func TestSSHD(t *testing.T) {
	// More addresses than one sshd can listen on (16).
	s := NewSSHD(t, NodeAddrs(18)...)
	if len(s.Addrs) != 18 || s.Addrs[0] != "127.0.0.2" || s.Addrs[17] != "127.0.0.19" {
		t.Fatalf("addrs %v", s.Addrs)
	}
	old := s.HostKey()
	for _, i := range []int{0, 15, 16, 17} {
		if out, err := login(t, s, i, old); err != nil || out != "ok\n" {
			t.Fatalf("node %d: %q, %v", i, out, err)
		}
	}
	if n := s.AcceptedLogins(); n != 4 {
		t.Errorf("AcceptedLogins = %d, want 4", n)
	}

	if err := s.RestartWithNewHostKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if string(s.HostKey().Marshal()) == string(old.Marshal()) {
		t.Fatal("the host key did not change")
	}
	if _, err := login(t, s, 0, old); err == nil {
		t.Error("login trusting the old host key succeeded after the restart")
	}
	if out, err := login(t, s, 17, s.HostKey()); err != nil || out != "ok\n" {
		t.Errorf("after restart: %q, %v", out, err)
	}

	s.Stop()
	for _, i := range []int{0, 17} {
		if c, err := net.Dial("tcp", s.Addr(i)); err == nil {
			c.Close()
			t.Errorf("sshd still accepts on %s after Stop", s.Addr(i))
		}
	}
}

func TestNodeAddrs(t *testing.T) {
	a := NodeAddrs(300)
	if a[0] != "127.0.0.2" || a[253] != "127.0.0.255" || a[254] != "127.0.1.0" || len(a) != 300 {
		t.Errorf("NodeAddrs: %v ... %v", a[:2], a[252:256])
	}
}
