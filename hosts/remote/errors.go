package remote

import (
	"errors"
	"fmt"
)

// The kinds of failure of a command on a node. Every error Run returns is an
// *Error whose Kind is one of these, so callers test with errors.Is.
var (
	// ErrConnect: no SSH connection could be made (no route, refused, handshake cut).
	ErrConnect = errors.New("cannot connect")
	// ErrAuth: the node refused our credentials.
	ErrAuth = errors.New("authentication refused")
	// ErrHostKey: the node presented a host key other than the one on record
	// (or than the fingerprint given). Never accepted silently.
	ErrHostKey = errors.New("host key mismatch")
	// ErrUnknownHostKey: no host key is on record for the node and the client
	// is in strict mode.
	ErrUnknownHostKey = errors.New("unknown host key")
	// ErrConnLost: the connection broke while the command ran; its outcome is unknown.
	ErrConnLost = errors.New("connection lost")
	// ErrTimeout: the command ran out of time and was ended on the node.
	ErrTimeout = errors.New("timed out")
	// ErrKilled: the caller cancelled and the command was ended on the node.
	ErrKilled = errors.New("killed")
	// ErrRefused: a command filter refused the command; it never reached the node.
	ErrRefused = errors.New("command refused by filter")
	// ErrInvalid: the request itself is unusable (no host, bad variable name...).
	ErrInvalid = errors.New("invalid request")
	// ErrSetup: the controller cannot log in as configured (its key file is
	// missing or unreadable, no agent): the node was never asked.
	ErrSetup = errors.New("controller configuration error")
	// ErrFault: the controller failed on what the node sent (a bug caught by
	// Contain). The node's command or check fails; the controller goes on.
	ErrFault = errors.New("controller fault on the node's data")
)

// Error is a failure on one node: its kind (one of the Err* values above), the
// node, and the cause underneath.
type Error struct {
	Kind error
	Node string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %v", e.Node, e.Kind)
	}
	return fmt.Sprintf("%s: %v: %v", e.Node, e.Kind, e.Err)
}

// Unwrap gives both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// KindOf returns the kind of an error from this package, or nil.
func KindOf(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return nil
}

func newError(kind error, node string, cause error) *Error {
	return &Error{Kind: kind, Node: node, Err: cause}
}
