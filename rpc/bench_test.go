package rpc

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
)

// benchServer is a test server with clusters × nodes registered and a
// session cookie of admin.
func benchServer(b *testing.B, clusters, nodes int) (*Server, string) {
	s, db := fullServer(b)
	ctx := context.Background()
	inv := hosts.NewInventory(db)
	for i := range clusters {
		c := &hosts.Cluster{Name: fmt.Sprintf("bench%03d", i), Type: "galera", SSHUser: "cmon", SSHPort: 22}
		for n := range nodes {
			c.Hosts = append(c.Hosts, hosts.Host{Hostname: fmt.Sprintf("127.1.%d.%d", i, n+1), Port: 3306, Role: "node"})
		}
		if err := inv.Create(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	admin, err := rbac.NewStore(db).UserByName(ctx, rbac.AdminUser)
	if err != nil {
		b.Fatal(err)
	}
	token, err := s.auth.(*authenticator).sessions.Create(ctx, admin.ID)
	if err != nil {
		b.Fatal(err)
	}
	return s, SessionCookie + "=" + token
}

func serveBench(b *testing.B, s *Server, cookie, module, body string) {
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v2/"+module, strings.NewReader(body))
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), `"request_status": "Ok"`) {
			b.Fatalf("reply: %.300s", rec.Body.String())
		}
	}
}

// BenchmarkBaselineRecorder is what the harness itself costs: a request, a
// recorder and a fixed reply.
func BenchmarkBaselineRecorder(b *testing.B) {
	reply := []byte(`{"request_status": "Ok"}`)
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v2/controller", strings.NewReader(`{"operation":"ping"}`))
		req.Header.Set("Cookie", "x")
		rec := httptest.NewRecorder()
		_, _ = rec.Write(reply)
	}
}

func BenchmarkPingWithSession(b *testing.B) {
	s, cookie := benchServer(b, 0, 0)
	serveBench(b, s, cookie, "controller", `{"operation":"ping"}`)
}

func BenchmarkAllClusterInfo100x5(b *testing.B) {
	s, cookie := benchServer(b, 100, 5)
	serveBench(b, s, cookie, "clusters", `{"operation":"getAllClusterInfo","with_hosts":true}`)
}
