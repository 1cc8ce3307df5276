package rpc

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/rbac"
)

// fakeSessions keeps sessions in a map: the authenticator needs no database.
type fakeSessions map[string]*rbac.User

func (f fakeSessions) Create(_ context.Context, userID int64) (string, error) {
	token := strings.Repeat("t", 42) + string(rune('a'+len(f)))
	f[token] = &rbac.User{ID: userID, Name: "someone"}
	return token, nil
}

func (f fakeSessions) User(_ context.Context, token string) (*rbac.User, error) {
	if u, ok := f[token]; ok {
		return u, nil
	}
	return nil, rbac.ErrNoSession
}

func (f fakeSessions) Delete(_ context.Context, token string) error {
	delete(f, token)
	return nil
}

func (fakeSessions) Limits() rbac.SessionLimits { return rbac.DefaultSessionLimits }

// fakeLogins knows one user and one password.
type fakeLogins struct{ user *rbac.User }

func (f fakeLogins) Password(_ context.Context, name, password, _ string) (*rbac.User, error) {
	if name != f.user.Name || password != "right-password" {
		return nil, rbac.ErrBadCredentials
	}
	return f.user, nil
}

func (f fakeLogins) Inline(ctx context.Context, name, password, remote string) (*rbac.User, error) {
	return f.Password(ctx, name, password, remote)
}

func (fakeLogins) Challenge(context.Context, string, string) (string, string, error) {
	return "", "", rbac.ErrBadCredentials
}

func (fakeLogins) Respond(context.Context, string, string, string) (*rbac.User, error) {
	return nil, rbac.ErrBadCredentials
}

func (fakeLogins) SetPassword(context.Context, *rbac.User, string, string) error { return nil }

// TestSessionsWithoutADatabase: logins, sessions and logout go through the
// interfaces rpc declares, so the authenticator is tested on fakes.
func TestSessionsWithoutADatabase(t *testing.T) {
	bob := &rbac.User{ID: 7, Name: "bob"}
	sessions := fakeSessions{}
	s := NewServer(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "t", ControllerID: "cid",
		Authn: fakeLogins{user: bob}, Sessions: sessions})
	send := func(module, body, cookie string) (*httptest.ResponseRecorder, string) {
		r := httptest.NewRequest("POST", "/v2/"+module, strings.NewReader(body))
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w, w.Body.String()
	}
	tests := []struct {
		name, body, want string
	}{
		{name: "wrong password", body: `{"operation":"authenticateWithPassword","user_name":"bob","password":"nope"}`, want: badCredentials},
		{name: "right password", body: `{"operation":"authenticateWithPassword","user_name":"bob","password":"right-password"}`, want: `"request_status": "Ok"`},
	}
	var cookie string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, body := send("auth", tt.body, "")
			if !strings.Contains(body, tt.want) {
				t.Fatalf("reply %s, want %s", body, tt.want)
			}
			if c := w.Result().Cookies(); len(c) == 1 && c[0].Value != "" {
				cookie = c[0].Name + "=" + c[0].Value
			}
		})
	}
	if len(sessions) != 1 || cookie == "" {
		t.Fatalf("a login made %d sessions, cookie %q", len(sessions), cookie)
	}
	if _, body := send("controller", `{"operation":"ping"}`, cookie); !strings.Contains(body, `"authenticated": true`) {
		t.Fatalf("the session's ping: %s", body)
	}
	send("auth", `{"operation":"logout"}`, cookie)
	if len(sessions) != 0 {
		t.Fatalf("logout left %d sessions", len(sessions))
	}
	if _, body := send("controller", `{"operation":"ping"}`, cookie); !strings.Contains(body, `"authenticated": false`) {
		t.Fatalf("a ping after logout: %s", body)
	}
}
