package jobs

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned when a job does not exist (RPC: ObjectNotFound).
var ErrNotFound = errors.New("job not found")

// Sentinels wrapped by *InvalidError, for callers that need to tell the cases
// apart; all of them are bad requests (RPC: InvalidRequest).
var (
	ErrUnknownCommand = errors.New("unknown job command")
	ErrBadJobData     = errors.New("bad job_data")
	ErrBadSchedule    = errors.New("bad schedule")
	// ErrNeedsCluster: the command acts on a cluster and none was named.
	ErrNeedsCluster = errors.New("job needs a cluster")
	// ErrWrongState: the operation does not apply to the job in its status
	// (deleting a running job, killing an ended one, pausing a one-off job...).
	ErrWrongState = errors.New("operation not allowed in the job's status")
)

// InvalidError is a request the engine refuses before queueing anything. Its
// message is lower case and suitable as an RPC error_string.
type InvalidError struct {
	Msg string
	Err error // one of the sentinels above, or nil
}

func (e *InvalidError) Error() string { return e.Msg }
func (e *InvalidError) Unwrap() error { return e.Err }

func invalidf(format string, args ...any) *InvalidError {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

func invalid(kind error, format string, args ...any) *InvalidError {
	return &InvalidError{Msg: fmt.Sprintf(format, args...), Err: kind}
}

// Causes of a running job's context cancellation, for handlers that want to
// know why (context.Cause(ctx)): errors.Is(cause, ErrKilled) and so on.
var (
	ErrKilled            = errors.New("job was killed")
	ErrTimedOut          = errors.New("job timed out")
	ErrControllerStopped = errors.New("controller is stopping")
)

// killedError is the cause of a kill; it names who asked.
type killedError struct{ by string }

func (e *killedError) Error() string { return "job was killed by " + e.by }
func (e *killedError) Unwrap() error { return ErrKilled }

// ExitError is a handler error that carries the job's exit code.
type ExitError struct {
	Code int
	// Signal is what ended the command that failed ("TERM" for a timeout on
	// a node), "" when it exited by itself.
	Signal string
	Err    error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// exitCode is the exit code a handler error asks for: ExitError's, else 1.
func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code != 0 {
		return ee.Code
	}
	return 1
}
