package rpc

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/rbac"
)

// TestMetricsServedToLoopbackAndSuperusers: /metrics answers loopback
// clients, and from elsewhere only a superuser's session.
func TestMetricsServedToLoopbackAndSuperusers(t *testing.T) {
	s, db := fullServer(t)
	ctx := context.Background()
	store, sessions := rbac.NewStore(db), s.auth.(*authenticator).sessions
	admin, err := store.UserByName(ctx, rbac.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := store.CreateUser(ctx, rbac.NewUser{Name: "bob", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	cookie := func(u *rbac.User) string {
		token, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return SessionCookie + "=" + token
	}
	tests := []struct {
		name, remote, cookie string
		want                 int
	}{
		{name: "loopback", remote: "127.0.0.1:40000", want: 200},
		{name: "ipv6 loopback", remote: "[::1]:40000", want: 200},
		{name: "remote without a session", remote: "192.0.2.7:40000", want: 403},
		{name: "remote user", remote: "192.0.2.7:40000", cookie: cookie(bob), want: 403},
		{name: "remote superuser", remote: "192.0.2.7:40000", cookie: cookie(admin), want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.RemoteAddr = tt.remote
			if tt.cookie != "" {
				req.Header.Set("Cookie", tt.cookie)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %.200s", rec.Code, tt.want, rec.Body.String())
			}
			if tt.want == 200 && !strings.Contains(rec.Body.String(), "cmon_sessions") {
				t.Fatalf("no cmon metrics: %.500s", rec.Body.String())
			}
		})
	}
}
