package remote

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// KnownHosts stores the host keys of nodes by "host:port".
type KnownHosts interface {
	// Lookup returns the keys on record for hostport (none: never seen).
	Lookup(ctx context.Context, hostport string) ([]ssh.PublicKey, error)
	// Record stores a key for hostport. Recording the same key again is not an
	// error; a different key of the same type on record is, wrapping ErrHostKey.
	Record(ctx context.Context, hostport string, key ssh.PublicKey) error
}

// MemoryKnownHosts is a KnownHosts in memory, for tests and tools.
type MemoryKnownHosts struct {
	mu   sync.Mutex
	keys map[string][]ssh.PublicKey
}

var _ KnownHosts = (*MemoryKnownHosts)(nil)

// NewMemoryKnownHosts returns an empty store.
func NewMemoryKnownHosts() *MemoryKnownHosts {
	return &MemoryKnownHosts{keys: map[string][]ssh.PublicKey{}}
}

func (m *MemoryKnownHosts) Lookup(_ context.Context, hostport string) ([]ssh.PublicKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]ssh.PublicKey(nil), m.keys[hostport]...), nil
}

func (m *MemoryKnownHosts) Record(_ context.Context, hostport string, key ssh.PublicKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys[hostport] {
		if k.Type() != key.Type() {
			continue
		}
		return CheckSameKey(hostport, key, k)
	}
	m.keys[hostport] = append(m.keys[hostport], key)
	return nil
}

// Forget removes every key of hostport.
func (m *MemoryKnownHosts) Forget(_ context.Context, hostport string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, hostport)
	return nil
}

func sameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// CheckSameKey is how a KnownHosts store compares the key a node presents
// with the one of its type on record: nil when equal, else an ErrHostKey
// naming both.
func CheckSameKey(hostport string, presented, onRecord ssh.PublicKey) error {
	if sameKey(presented, onRecord) {
		return nil
	}
	return fmt.Errorf("%w: %s presented %s, on record %s", ErrHostKey, hostport, describeKey(presented), describeKey(onRecord))
}

func describeKey(k ssh.PublicKey) string { return k.Type() + " " + ssh.FingerprintSHA256(k) }

// hostPort is the canonical store key for a node.
func hostPort(host string, port int) string {
	return net.JoinHostPort(strings.ToLower(host), fmt.Sprint(port))
}

// hostKeyCheck verifies the key a node presents during one handshake. The
// store is read before the handshake (the callback has no context) and
// written after it succeeds.
type hostKeyCheck struct {
	known        []ssh.PublicKey
	fingerprints []string
	learn        bool

	verified  bool          // the callback accepted the key
	refused   error         // ErrHostKey or ErrUnknownHostKey when it did not
	presented ssh.PublicKey // what the node showed
	record    bool          // presented is new and trusted: store it
}

func (h *hostKeyCheck) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	h.presented = key
	if len(h.fingerprints) > 0 && !matchesFingerprint(key, h.fingerprints) {
		h.refused = ErrHostKey
		return fmt.Errorf("presented %s, expected fingerprint %s", describeKey(key), strings.Join(h.fingerprints, " or "))
	}
	if len(h.known) > 0 {
		for _, k := range h.known {
			if sameKey(k, key) {
				h.verified = true
				return nil
			}
		}
		on := make([]string, 0, len(h.known))
		for _, k := range h.known {
			on = append(on, describeKey(k))
		}
		h.refused = ErrHostKey
		return fmt.Errorf("presented %s, on record %s", describeKey(key), strings.Join(on, ", "))
	}
	if len(h.fingerprints) == 0 && !h.learn {
		h.refused = ErrUnknownHostKey
		return fmt.Errorf("presented %s, none on record, and this client does not learn new hosts", describeKey(key))
	}
	h.verified = true
	h.record = true
	return nil
}

// matchesFingerprint accepts "SHA256:base64" with or without its prefix.
func matchesFingerprint(key ssh.PublicKey, fps []string) bool {
	got := strings.TrimPrefix(ssh.FingerprintSHA256(key), "SHA256:")
	for _, fp := range fps {
		if strings.TrimRight(strings.TrimPrefix(strings.TrimSpace(fp), "SHA256:"), "=") == got {
			return true
		}
	}
	return false
}

// hostKeyAlgorithms makes the handshake ask for the key types on record:
// otherwise a node with several host keys may present one we have not seen,
// which would look like a mismatch.
func hostKeyAlgorithms(known []ssh.PublicKey) []string {
	var algos []string
	for _, k := range known {
		if k.Type() == ssh.KeyAlgoRSA {
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
			continue
		}
		algos = append(algos, k.Type())
	}
	return algos
}
