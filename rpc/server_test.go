package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

type fixedAuth struct{ user *rbac.User }

func (a fixedAuth) Authenticate(context.Context, *Request) (*rbac.User, error) {
	if a.user == nil {
		return nil, &Error{Status: StatusAuthRequired, Message: "Authentication required."}
	}
	return a.user, nil
}

type numberReply struct {
	Envelope
	Number int `json:"number"`
}

func testServer(auth Authenticator) *Server {
	s := NewServer(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "1.2.3", ControllerID: "cid",
		AllowedOrigins: []string{"https://ui.example/"}})
	s.auth = auth
	s.Handle("test",
		Operation{Name: "echoNumber", Serve: anyone(func(_ context.Context, _ *Request, in *struct {
			Number int `json:"number"`
		}) (Reply, error) {
			return &numberReply{Number: in.Number}, nil
		})},
		Operation{Name: "boom", Serve: anyone(func(context.Context, *Request, *none) (Reply, error) { panic("boom") })},
		Operation{Name: "internal", Serve: anyone(func(context.Context, *Request, *none) (Reply, error) {
			return nil, io.ErrUnexpectedEOF
		})},
		Operation{Name: "adminOnly", Serve: superuser(func(context.Context, *Request, *none) (Reply, error) {
			panic("the handler ran for a refused caller")
		})},
	)
	return s
}

func call(t *testing.T, h http.Handler, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	return callFrom(t, h, "", method, path, body)
}

// callFrom is call as a browser page of origin sends it ("" for no Origin).
func callFrom(t *testing.T, h http.Handler, origin, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Host = "cmon.example:9501"
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	h.ServeHTTP(rec, r)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, rec.Body.String())
	}
	return rec.Code, rec.Header(), out
}

func TestEnvelope(t *testing.T) {
	alice := &rbac.User{ID: 4, Name: "alice"}
	tests := []struct {
		name       string
		auth       Authenticator
		origin     string
		method     string
		path       string
		body       string
		wantHTTP   int
		wantStatus Status
		wantError  string
		check      func(t *testing.T, out map[string]any)
	}{
		{name: "bare v2 get", method: "GET", path: "/v2", wantHTTP: 200, wantStatus: StatusInvalidRequest,
			wantError: "Invalid operation '' on '/v2/info'.",
			check: func(t *testing.T, out map[string]any) {
				if out["request_operation"] != "" || len(out["request_path"].([]any)) != 1 {
					t.Errorf("request_operation/request_path = %v %v", out["request_operation"], out["request_path"])
				}
			}},
		{name: "ping without auth, trailing slash, any case", method: "POST", path: "/v2/controller/",
			body: `{"operation":"PiNg","request_id":42,"request_created":"2021-02-09T09:24:47.552Z"}`, wantHTTP: 200, wantStatus: StatusOk,
			check: func(t *testing.T, out map[string]any) {
				if out["request_id"] != float64(42) || out["request_created"] != "2021-02-09T09:24:47.552Z" {
					t.Errorf("request_id/created not echoed: %v", out)
				}
				if out["authenticated"] != false || out["rpc_version"] != "2.0" || out["package_version"] != "1.2.3" {
					t.Errorf("ping reply %v", out)
				}
				if _, err := time.Parse(jobs.TimeFormat, out["request_processed"].(string)); err != nil {
					t.Errorf("request_processed: %v", err)
				}
				if _, ok := out["request_user_id"]; ok {
					t.Error("request_user_id on an unauthenticated reply")
				}
			}},
		{name: "unknown module", method: "POST", path: "/v2/nope", body: `{"operation":"x"}`, wantHTTP: 200,
			wantStatus: StatusInvalidRequest, wantError: "Invalid module '/v2/nope'."},
		{name: "unknown operation", method: "POST", path: "/v2/test", body: `{"operation":"fly"}`, wantHTTP: 200,
			wantStatus: StatusInvalidRequest, wantError: "Invalid operation 'fly' on '/v2/test'."},
		{name: "not an rpc path", method: "POST", path: "/v3/test", body: `{}`, wantHTTP: 404, wantStatus: StatusObjectNotFound},
		{name: "auth required", method: "POST", path: "/v2/test", body: `{"operation":"echoNumber"}`,
			wantHTTP: 401, wantStatus: StatusAuthRequired},
		{name: "authenticated call", auth: fixedAuth{alice}, method: "POST", path: "/v2/test", body: `{"operation":"echoNumber","number":7}`,
			wantHTTP: 200, wantStatus: StatusOk,
			check: func(t *testing.T, out map[string]any) {
				if out["number"] != float64(7) || out["request_user_id"] != float64(4) {
					t.Errorf("reply %v", out)
				}
				if dm := out["debug_messages"].([]any); dm[0] != "RPC V2 authenticated user is 'alice'." {
					t.Errorf("debug_messages %v", dm)
				}
			}},
		{name: "number written as a string", auth: fixedAuth{alice}, method: "POST", path: "/v2/test", body: `{"operation":"echoNumber","number":"7"}`,
			wantHTTP: 200, wantStatus: StatusOk,
			check: func(t *testing.T, out map[string]any) {
				if out["number"] != float64(7) {
					t.Errorf("reply %v", out)
				}
			}},
		{name: "wrong field type", auth: fixedAuth{alice}, method: "POST", path: "/v2/test", body: `{"operation":"echoNumber","number":"seven"}`,
			wantHTTP: 200, wantStatus: StatusInvalidRequest, wantError: "Field 'number' must be an integer, not string."},
		{name: "operation not a string", method: "POST", path: "/v2/test", body: `{"operation":5}`,
			wantHTTP: 200, wantStatus: StatusInvalidRequest, wantError: "Field 'operation' must be a string."},
		{name: "malformed json", method: "POST", path: "/v2/test", body: `{"operation":`,
			wantHTTP: 200, wantStatus: StatusInvalidRequest},
		{name: "json array", method: "POST", path: "/v2/test", body: `[1,2]`,
			wantHTTP: 200, wantStatus: StatusInvalidRequest, wantError: "The request must be a JSON object."},
		{name: "trailing garbage", method: "POST", path: "/v2/test", body: `{"operation":"x"} {}`,
			wantHTTP: 200, wantStatus: StatusInvalidRequest},
		{name: "body over 1 MiB", method: "POST", path: "/v2/test", body: `{"operation":"echoNumber","pad":"` + strings.Repeat("a", MaxBodyBytes) + `"}`,
			wantHTTP: 200, wantStatus: StatusInvalidRequest, wantError: "The request body is larger than 1048576 bytes."},
		{name: "get on a module", method: "GET", path: "/v2/test", wantHTTP: 200, wantStatus: StatusInvalidRequest,
			wantError: "Method GET is not supported on '/v2/test': send POST with a JSON body."},
		{name: "panic becomes UnknownError", auth: fixedAuth{alice}, method: "POST", path: "/v2/test", body: `{"operation":"boom"}`,
			wantHTTP: 200, wantStatus: StatusUnknownError, wantError: "Internal error."},
		{name: "access is checked before the handler", auth: fixedAuth{alice}, method: "POST", path: "/v2/test", body: `{"operation":"adminOnly"}`,
			wantHTTP: 200, wantStatus: StatusAccessDenied, wantError: "Superuser access to operation adminOnly for user alice is denied."},
		{name: "the controller's own origin", origin: "https://cmon.example:9501", method: "POST", path: "/v2/controller",
			body: `{"operation":"ping"}`, wantHTTP: 200, wantStatus: StatusOk},
		{name: "an allowed origin", origin: "https://UI.example", method: "POST", path: "/v2/controller",
			body: `{"operation":"ping"}`, wantHTTP: 200, wantStatus: StatusOk},
		{name: "another port of the same host", origin: "https://cmon.example:8080", method: "POST", path: "/v2/controller",
			body: `{"operation":"ping"}`, wantHTTP: 200, wantStatus: StatusAccessDenied,
			wantError: "Requests from origin 'https://cmon.example:8080' are not allowed; add it to CMON_ALLOWED_ORIGINS to let its pages call this controller."},
		{name: "a page over plain http", origin: "http://cmon.example:9501", method: "POST", path: "/v2/controller",
			body: `{"operation":"ping"}`, wantHTTP: 200, wantStatus: StatusAccessDenied},
		{name: "internal error text is not leaked", auth: fixedAuth{alice}, method: "POST", path: "/v2/test", body: `{"operation":"internal"}`,
			wantHTTP: 200, wantStatus: StatusUnknownError, wantError: "Internal error."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, out := callFrom(t, testServer(tt.auth), tt.origin, tt.method, tt.path, tt.body)
			if code != tt.wantHTTP {
				t.Errorf("HTTP status %d, want %d", code, tt.wantHTTP)
			}
			if out["request_status"] != string(tt.wantStatus) {
				t.Fatalf("request_status %v, want %s: %v", out["request_status"], tt.wantStatus, out)
			}
			if tt.wantError != "" && out["error_string"] != tt.wantError {
				t.Errorf("error_string %q, want %q", out["error_string"], tt.wantError)
			}
			if out["controller_id"] != "cid" || hdr.Get("Server") != "cmon/1.2.3" || hdr.Get("Content-Length") == "" {
				t.Errorf("envelope headers/fields missing: %v %v", hdr, out)
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

// openOperations are the operations that answer without a caller: the login
// steps, which identify it, and the pings, which say whether there is one.
var openOperations = map[string]AuthMode{
	"auth/authenticateWithPassword": AuthNone,
	"auth/authenticate":             AuthNone,
	"auth/authenticateResponse":     AuthNone,
	"auth/response":                 AuthNone,
	"auth/logout":                   AuthNone,
	"info/ping":                     AuthOptional,
	"controller/ping":               AuthOptional,
	"controller/heartBeat":          AuthOptional,
	"clusters/ping":                 AuthOptional,
}

// TestEveryOperationDeclaresAccess goes through every operation of a fully
// wired server: each has an access rule, only those listed above answer
// without a caller, and every other refuses a call without credentials
// before its rule or handler runs.
func TestEveryOperationDeclaresAccess(t *testing.T) {
	s, _ := fullServer(t)
	var ran []string // operations whose endpoint ran
	var required []string
	open := map[string]bool{}
	for _, m := range s.modules {
		for key, op := range m.ops {
			name := m.Name + "/" + op.Name
			if op.Serve == nil {
				t.Errorf("%s has no access rule", name)
				continue
			}
			if want, ok := openOperations[name]; ok {
				open[name] = true
				if op.Auth != want {
					t.Errorf("%s: auth mode %d, want %d", name, op.Auth, want)
				}
				continue
			}
			if op.Auth != AuthRequired {
				t.Errorf("%s answers without a caller (auth mode %d); list it in openOperations if it must", name, op.Auth)
				continue
			}
			required = append(required, name)
			serve := op.Serve
			op.Serve = func(ctx context.Context, req *Request) (Reply, error) {
				ran = append(ran, name)
				return serve(ctx, req)
			}
			m.ops[key] = op
		}
	}
	for name := range openOperations {
		if !open[name] {
			t.Errorf("open operation %s is not served", name)
		}
	}
	for _, module := range []string{"info", "controller", "auth", "audit", "users", "jobs", "host", "poolcontrollers",
		"clusters", "alarm", "maintenance", "log", "tree"} {
		if s.modules[module] == nil {
			t.Errorf("module %s is not served: the server is not fully wired", module)
		}
	}
	for _, name := range required {
		module, op, _ := strings.Cut(name, "/")
		code, _, out := call(t, s, http.MethodPost, "/v2/"+module, `{"operation":"`+op+`"}`)
		if code != http.StatusUnauthorized || out["request_status"] != string(StatusAuthRequired) {
			t.Errorf("%s without credentials: HTTP %d, %v", name, code, out["request_status"])
		}
	}
	if len(ran) > 0 {
		t.Errorf("endpoints ran for calls without credentials: %v", ran)
	}
}

func TestHandleRefusesOperationWithoutRule(t *testing.T) {
	s := NewServer(Options{Version: "1"})
	if err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%v", p)
			}
		}()
		s.Handle("test", Operation{Name: "open"})
		return nil
	}(); err == nil || !strings.Contains(err.Error(), "declares no access rule") {
		t.Fatalf("an operation without an access rule was accepted: %v", err)
	}
}
