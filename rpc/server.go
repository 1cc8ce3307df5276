// Package rpc serves the RPC v2 protocol: TLS listeners, the request/reply
// envelope, authentication, and one operation table per module.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rpc/console"
	"github.com/cmon-dev/cmon/sql"
)

// MaxBodyBytes bounds a request body; larger requests are refused unread.
const MaxBodyBytes = 1 << 20

// AuthMode says whether an operation needs an authenticated caller.
type AuthMode int

const (
	// AuthRequired, the zero value, refuses requests without valid credentials.
	AuthRequired AuthMode = iota
	// AuthOptional identifies the caller when it can and answers anyway (ping).
	AuthOptional
	// AuthNone never looks at credentials (the login steps themselves).
	AuthNone
)

// Operation is one row of a module's table: the name clients send, whether it
// needs an authenticated caller, and its access rule around its handler.
type Operation struct {
	Name string
	Auth AuthMode
	// ReadOnly operations change nothing: only their refusals are audited.
	ReadOnly bool
	Serve    Endpoint
}

// Module is one /v2/<name> path and its operations, looked up case-insensitively.
type Module struct {
	Name string
	ops  map[string]Operation
}

// Authenticator finds the caller of a request: from an inline authenticate
// object or from the session cookie. It returns an *Error (AuthRequired or
// AccessDenied) when the request carries no valid credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, req *Request) (*rbac.User, error)
}

// JobEngine is the job engine as rpc uses it (*jobs.Service).
type JobEngine interface {
	Jobs
	JobCounter
	ControllerLister
}

// Pinner reads the database's change versions once for a request, so that
// the state served from memory is checked against one reading per request.
type Pinner interface {
	Pin(ctx context.Context) (context.Context, error)
}

// Server is the RPC v2 HTTP handler.
type Server struct {
	log          *slog.Logger
	console      *console.Handler
	changes      Pinner
	auditor      Auditor
	metrics      *Metrics
	system       *SystemInfo
	node         string
	version      string
	controllerID string
	auth         Authenticator
	modules      map[string]*Module
	origins      map[string]bool
	replyBuffers sync.Pool   // of *replyBuffer
	headers      http.Header // sent with every reply
}

// Options wire a Server.
type Options struct {
	Log          *slog.Logger
	Version      string
	ControllerID string
	// Authn checks logins and changes passwords; with none, every operation
	// that needs a caller answers AuthRequired. Sessions, Users and
	// Passwords come with it (rbac.Authn's own, as cmon wires them).
	Authn     Logins
	Sessions  SessionStore
	Users     Directory
	Passwords PasswordRules
	// Inventory holds the clusters; with none, /v2/clusters is not served.
	Inventory Inventory
	// Jobs is the job engine; with none, /v2/jobs is not served.
	Jobs JobEngine
	// Audit records every change and refusal; with it, /v2/audit serves
	// the trail to superusers.
	Audit Auditor
	// Metrics, when set, count requests and logins and are served at
	// /metrics (to loopback clients and superusers).
	Metrics *Metrics
	// Alarms, when set, serves /v2/alarm, /v2/maintenance and /v2/log.
	Alarms AlarmStore
	// System, when set, is served by getSystemInfo and getStatus.
	System *SystemInfo
	// Node is this controller's own id among those sharing the database,
	// as audit entries name it.
	Node string
	// Changes pins each request to the change versions read when it began
	// (sql.DB does); with none, each lookup reads them itself.
	Changes Pinner
	// Authz decides access to clusters, jobs and the tree; /v2/users,
	// /v2/clusters, /v2/jobs and /v2/tree need it.
	Authz Authorizer
	// AllowedOrigins are the browser origins ("https://ui.example:8443")
	// besides the controller's own that may send requests. A request with
	// another Origin header is refused; requests without one (curl, CLIs)
	// are not browsers' and pass.
	AllowedOrigins []string
	// Console, when set, serves the web console at / on the same origin as
	// the API it calls.
	Console *console.Handler
}

// infoModule is the name the protocol gives to the bare /v2 path.
const infoModule = "info"

// NewServer makes a Server with the controller module; callers add the others.
func NewServer(o Options) *Server {
	s := &Server{log: o.Log, console: o.Console, changes: o.Changes, auditor: o.Audit, metrics: o.Metrics, system: o.System, node: o.Node, version: o.Version, controllerID: o.ControllerID, modules: map[string]*Module{},
		origins: map[string]bool{}}
	s.replyBuffers.New = func() any { return newReplyBuffer() }
	s.headers = http.Header{
		"Server":                 {"cmon/" + s.version},
		"Content-Type":           {"application/json; charset=utf-8"},
		"Cache-Control":          {"no-store"},
		"X-Content-Type-Options": {"nosniff"},
	}
	for _, origin := range o.AllowedOrigins {
		s.origins[originKey(origin)] = true
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.Handle(infoModule, s.infoOperations()...)
	s.Handle("controller", s.controllerOperations()...)
	if o.Authn == nil {
		return s
	}
	a := newAuthenticator(o.Authn, o.Sessions, o.Metrics)
	s.auth = a
	s.Handle("auth", a.authOperations()...)
	if o.Audit != nil {
		s.Handle("audit", s.auditOperations()...)
	}
	if o.Authz != nil {
		s.Handle("users", (&users{authn: o.Authn, hasher: o.Passwords, sessions: a, store: o.Users, policy: policiesOf(o.Authz)}).operations()...)
	}
	if o.Inventory != nil && o.Authz != nil {
		g := &guard{policy: policiesOf(o.Authz), inventory: o.Inventory, jobs: o.Jobs}
		if o.Jobs != nil {
			s.Handle("jobs", (&jobsModule{guard: g}).operations()...)
			s.Handle("host", s.hostOperations(o.Jobs)...)
			s.Handle("poolcontrollers", s.poolOperations(o.Jobs, o.Inventory)...)
		}
		cl := newClusters(g, anyone(s.ping), o.Jobs, o.Alarms, s.controllerHost())
		s.Handle("clusters", cl.operations()...)
		if o.Alarms != nil {
			al := &alarms{guard: g, store: o.Alarms}
			s.Handle("alarm", al.alarmOperations()...)
			s.Handle("maintenance", al.maintenanceOperations()...)
			s.Handle("log", al.logOperations()...)
		}
		s.Handle("tree", (&tree{guard: g, store: o.Users}).operations()...)
	}
	return s
}

// controllerHost is this controller as a host of every cluster, when the
// system it runs on is known.
func (s *Server) controllerHost() *controllerHost {
	if s.system == nil {
		return nil
	}
	self := &controllerHost{hostname: s.system.Hostname, port: s.system.Port, version: s.version}
	if len(s.system.BindAddresses) > 0 {
		self.ip = s.system.BindAddresses[0] // where clients reach it
	}
	if self.hostname == "" {
		self.hostname = self.ip
	}
	return self
}

// Handle adds operations to a module, creating it on first use.
func (s *Server) Handle(module string, ops ...Operation) {
	m := s.modules[module]
	if m == nil {
		m = &Module{Name: module, ops: map[string]Operation{}}
		s.modules[module] = m
	}
	for _, op := range ops {
		key := strings.ToLower(op.Name)
		if op.Serve == nil {
			panic(fmt.Sprintf("rpc: operation %s on /v2/%s declares no access rule", op.Name, module)) // a wiring bug, found at start-up
		}
		if _, dup := m.ops[key]; dup {
			panic(fmt.Sprintf("rpc: operation %s registered twice on /v2/%s", op.Name, module)) // a wiring bug, found at start-up
		}
		m.ops[key] = op
	}
}

// ServeHTTP answers every request with an RPC v2 envelope.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" && s.metrics != nil {
		s.serveMetrics(w, r)
		return
	}
	if s.console != nil && console.Serves(r) {
		s.console.ServeHTTP(w, r)
		return
	}
	if s.allowCrossOrigin(w, r) {
		return // a preflight, answered
	}
	start := time.Now()
	req := &Request{HTTP: r, Writer: w, RemoteIP: remoteIP(r)}
	reply, err := s.serve(r.Context(), req)
	rpcErr := s.asError(req, err)
	status, message := StatusOk, ""
	if rpcErr != nil {
		status, message = rpcErr.Status, rpcErr.Message
	}
	// Recorded before the reply, so that a client that got it finds the entry.
	if req.known && audited(req.readOnly, status) {
		s.record(r.Context(), req, status, message)
	}
	s.write(w, req, reply, rpcErr)
	operation := req.Operation
	if !req.known {
		operation = "" // what clients send as names is no label: it is unbounded
	}
	s.metrics.request(req.Module, operation, status, time.Since(start))
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "rpc request",
		slog.String("module", req.Module), slog.String("operation", req.Operation),
		slog.String("status", string(status)), slog.String("remote", req.RemoteIP),
		slog.String("user", callerName(req.Caller)), slog.Duration("took", time.Since(start)))
}

func (s *Server) serve(ctx context.Context, req *Request) (reply Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc operation panicked", "module", req.Module, "operation", req.Operation,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			reply, err = nil, &Error{Status: StatusUnknownError, Message: "Internal error."}
		}
	}()
	if err := s.checkOrigin(req.HTTP); err != nil {
		return nil, err
	}
	module, err := s.route(req.HTTP.URL.Path)
	if err != nil {
		return nil, err
	}
	req.Module = module.Name
	if err := s.readBody(req); err != nil {
		return nil, err
	}
	if module.Name != infoModule && req.HTTP.Method != http.MethodPost {
		return nil, InvalidRequest("Method %s is not supported on '/v2/%s': send POST with a JSON body.", req.HTTP.Method, module.Name)
	}
	op, ok := module.ops[strings.ToLower(req.Operation)]
	if !ok {
		return nil, InvalidRequest("Invalid operation '%s' on '/v2/%s'.", req.Operation, module.Name)
	}
	req.Operation, req.known, req.readOnly = op.Name, true, op.ReadOnly
	if s.changes != nil && module.Name != infoModule {
		pinned, err := s.changes.Pin(ctx)
		switch {
		case err == nil:
			ctx = pinned
		case op.Auth == AuthRequired:
			return nil, err
		}
		// An operation that answers without a caller (ping) answers without
		// the database too: a controller whose database is down says so.
	}
	switch op.Auth {
	case AuthRequired:
		if req.Caller, err = s.authenticate(ctx, req); err != nil {
			return nil, err
		}
	case AuthOptional:
		req.Caller, _ = s.authenticate(ctx, req)
	}
	return op.Serve(ctx, req)
}

func (s *Server) authenticate(ctx context.Context, req *Request) (*rbac.User, error) {
	if s.auth == nil {
		return nil, &Error{Status: StatusAuthRequired, Message: "Authentication required."}
	}
	return s.auth.Authenticate(ctx, req)
}

// checkOrigin refuses a browser's request from a page of another origin, so
// that a page elsewhere (even on another port of the same host) cannot use the
// user's session cookie; cookies alone do not tell a forged request.
func (s *Server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	if key := originKey(origin); ownOrigin(r, key) || s.origins[key] {
		return nil
	}
	return AccessDenied("Requests from origin '%s' are not allowed; add it to CMON_ALLOWED_ORIGINS to let its pages call this controller.", clip(origin, 200))
}

// allowCrossOrigin lets the pages of an allowed origin other than the
// controller's own read replies (CORS), with their cookies: those headers go
// to allowed origins only. It answers a preflight itself and says so.
func (s *Server) allowCrossOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if key := originKey(origin); origin == "" || ownOrigin(r, key) || !s.origins[key] {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// originKey is an Origin as the allowlist compares it.
func originKey(origin string) string { return strings.ToLower(strings.TrimRight(origin, "/")) }

// ownOrigin tells whether an origin is the controller's own: its pages,
// the console's among them, need no allowlist entry.
func ownOrigin(r *http.Request, key string) bool { return key == "https://"+strings.ToLower(r.Host) }

// clip shortens what a client sent to at most n bytes for a reply.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// route maps /v2, /v2/ and /v2/<module>[/] to a module.
func (s *Server) route(path string) (*Module, error) {
	rest, ok := strings.CutPrefix(path, "/v2")
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, NotFound("Path '%s' is not an RPC v2 path; use /v2/<module>.", path)
	}
	name := strings.Trim(rest, "/")
	if name == "" {
		name = infoModule
	}
	m, ok := s.modules[name]
	if !ok {
		return nil, InvalidRequest("Invalid module '/v2/%s'.", name)
	}
	return m, nil
}

// requestHead is what the server reads of every request itself.
type requestHead struct {
	Operation json.RawMessage `json:"operation"`
	// RequestID and RequestCreated are repeated in the reply, to let
	// clients match replies to requests; only scalars are.
	RequestID      json.RawMessage `json:"request_id"`
	RequestCreated json.RawMessage `json:"request_created"`
	// Authenticate holds inline credentials.
	Authenticate json.RawMessage `json:"authenticate"`
}

// readBody reads the JSON body whatever the Content-Type says (curl -d sends a
// form type), and the envelope fields every operation shares.
func (s *Server) readBody(req *Request) error {
	body, err := readAll(http.MaxBytesReader(nil, req.HTTP.Body, MaxBodyBytes), req.HTTP.ContentLength)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return InvalidRequest("The request body is larger than %d bytes.", MaxBodyBytes)
	}
	if err != nil {
		return InvalidRequest("The request body could not be read.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if jsonDepth(body, MaxDepth) > MaxDepth {
		return InvalidRequest("The request nests deeper than %d levels.", MaxDepth)
	}
	req.body = body
	if err := json.Unmarshal(body, &req.head); err != nil {
		return decodeError(err) // not JSON, or not an object
	}
	for _, echo := range [...]struct {
		name string
		raw  *json.RawMessage
	}{{"request_id", &req.head.RequestID}, {"request_created", &req.head.RequestCreated}} {
		if *echo.raw != nil && !isScalar(*echo.raw) {
			*echo.raw = nil // not repeated
			return InvalidRequest("Field '%s' must be a string or a number.", echo.name)
		}
	}
	if raw := req.head.Operation; raw != nil && string(raw) != "null" {
		if err := json.Unmarshal(raw, &req.Operation); err != nil {
			return InvalidRequest("Field 'operation' must be a string.")
		}
	}
	return nil
}

// readAll reads r to its end; a body of a declared length is read into a
// buffer of that size.
func readAll(r io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 || declared > MaxBodyBytes {
		return io.ReadAll(r)
	}
	body := make([]byte, declared)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// asError is the protocol error an operation's error becomes: its own
// *Error, else UnknownError without the text, which may hold internals.
func (s *Server) asError(req *Request, err error) *Error {
	if err == nil {
		return nil
	}
	var rpcErr *Error
	switch {
	case errors.As(err, &rpcErr):
	case sql.IsUnavailable(err):
		s.log.Error("rpc operation failed: the database is unreachable", "module", req.Module, "operation", req.Operation, "err", err)
		rpcErr = &Error{Status: StatusTryAgain, Message: "The database is unreachable; try again shortly."}
	default:
		s.log.Error("rpc operation failed", "module", req.Module, "operation", req.Operation, "err", err)
		rpcErr = &Error{Status: StatusUnknownError, Message: "Internal error."}
	}
	return rpcErr
}

// write fills in the envelope of reply, or of rpcErr's reply, and sends it.
func (s *Server) write(w http.ResponseWriter, req *Request, reply Reply, rpcErr *Error) {
	if reply == nil || rpcErr != nil {
		reply = &Envelope{}
	}
	env := reply.envelope()
	status := StatusOk
	if rpcErr != nil {
		status = rpcErr.Status
		env.ErrorString = rpcErr.Message
		if status == StatusInvalidRequest && req.Module != "" {
			env.RequestOperation = &req.Operation
			env.RequestPath = requestPath(req.HTTP.URL.Path)
		}
	}
	env.RequestStatus = status
	env.ControllerID = s.controllerID
	env.RequestProcessed = jobs.FormatTime(time.Now())
	env.RequestID, env.RequestCreated = req.head.RequestID, req.head.RequestCreated // scalars: readBody checked
	if req.Caller != nil {
		env.RequestUserID = req.Caller.ID
		env.DebugMessages = []string{"RPC V2 authenticated user is '" + req.Caller.Name + "'."}
	}
	buf := s.replyBuffers.Get().(*replyBuffer)
	defer s.putReplyBuffer(buf)
	body, err := buf.encode(reply)
	if err != nil {
		s.log.Error("encode rpc reply", "module", req.Module, "operation", req.Operation, "err", err)
		body = []byte(`{"request_status": "UnknownError", "error_string": "Internal error."}` + "\n")
		status = StatusUnknownError
	}
	h := w.Header()
	for k, v := range s.headers {
		h[k] = v // shared: net/http only reads them
	}
	// An explicit length keeps HTTP/1.0 clients, which read until EOF, off chunking.
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(httpStatus(status, req.Module))
	_, _ = w.Write(body)
}

// maxPooledReply bounds the reply buffers kept for reuse: large replies
// (listings of many clusters) reuse theirs instead of allocating and
// clearing one per request; rare huge ones are left to the collector.
const maxPooledReply = 8 << 20

func (s *Server) putReplyBuffer(b *replyBuffer) {
	if b.size() <= maxPooledReply {
		s.replyBuffers.Put(b)
	}
}

func httpStatus(status Status, module string) int {
	switch {
	case status == StatusAuthRequired:
		return http.StatusUnauthorized // one known client re-authenticates on 401
	case module == "" && status == StatusObjectNotFound:
		return http.StatusNotFound // not an RPC path at all
	default:
		return http.StatusOK
	}
}

// requestPath splits the URL path the way the original controller reports it.
func requestPath(path string) []string {
	var parts []string
	for p := range strings.SplitSeq(path, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func callerName(u *rbac.User) string {
	if u == nil {
		return ""
	}
	return u.Name
}
