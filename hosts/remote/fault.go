package remote

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// PanicError is a panic caught where a node's data is handled: its value and
// the stack where it happened, for the controller's log.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Contain runs f and turns a panic in it into a *PanicError. Whatever a node
// sends (output, exit status, facts, host keys) is handled under Contain, so
// that a bug it triggers fails that node's command or check, never the
// controller.
func Contain(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	f()
	return nil
}

// FaultAttrs are the log attributes of a caught panic: the error and, for
// the controller's log only, its stack.
func FaultAttrs(err error) []any {
	attrs := []any{"err", err}
	if pe := (*PanicError)(nil); errors.As(err, &pe) {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	return attrs
}
