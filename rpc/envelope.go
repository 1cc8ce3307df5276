package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// Status is an RPC v2 request_status.
type Status string

// The request statuses of the RPC v2 protocol.
const (
	StatusOk             Status = "Ok"
	StatusInvalidRequest Status = "InvalidRequest"
	StatusObjectNotFound Status = "ObjectNotFound"
	StatusAccessDenied   Status = "AccessDenied"
	StatusAuthRequired   Status = "AuthRequired"
	StatusTryAgain       Status = "TryAgain"
	StatusUnknownError   Status = "UnknownError"
)

// Error is an RPC failure with the status and the error_string the client sees.
// Other errors reaching the envelope become UnknownError without their text,
// which may hold internals.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string { return string(e.Status) + ": " + e.Message }

func newError(status Status, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// InvalidRequest reports input the operation cannot accept.
func InvalidRequest(format string, args ...any) *Error {
	return newError(StatusInvalidRequest, format, args...)
}

// NotFound reports a missing object.
func NotFound(format string, args ...any) *Error {
	return newError(StatusObjectNotFound, format, args...)
}

// AccessDenied reports an operation the caller may not do.
func AccessDenied(format string, args ...any) *Error {
	return newError(StatusAccessDenied, format, args...)
}

// renderList renders each item of a list for the wire; an empty list is [],
// never null, as clients iterate it.
func renderList[T, W any](list []T, render func(T) W) []W {
	out := make([]W, 0, len(list))
	for _, x := range list {
		out = append(out, render(x))
	}
	return out
}

// Request is one decoded RPC v2 request.
type Request struct {
	Module    string
	Operation string
	// Caller is the authenticated user, nil for operations that need none.
	Caller   *rbac.User
	RemoteIP string
	HTTP     *http.Request
	// Writer lets operations that start or end sessions set cookies.
	Writer http.ResponseWriter

	body []byte
	head requestHead
	// known is set once the operation is found; readOnly is the operation's.
	known, readOnly bool
	audit           auditFacts
}

// Decode reads the request's fields into v (a pointer to a struct with json
// tags) by jobs.Unmarshal's rule, as job_data is read, turning type
// mismatches into a clear InvalidRequest.
func (r *Request) Decode(v any) error {
	if err := jobs.Unmarshal(r.body, v); err != nil {
		return decodeError(err)
	}
	return nil
}

func decodeError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return InvalidRequest("The request must be a JSON object.")
		}
		return InvalidRequest("Field '%s' must be %s, not %s.", field, jobs.JSONKind(typeErr.Type), typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return InvalidRequest("The request is not valid JSON: %s at byte %d.", syntaxErr.Error(), syntaxErr.Offset)
	}
	return InvalidRequest("The request could not be read: %s.", strings.TrimSuffix(err.Error(), "."))
}
