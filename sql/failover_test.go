package sql

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestParseMySQLDSNServerLists(t *testing.T) {
	tests := []struct {
		name     string
		dsn      string
		wantAddr string
		wantList []string
		wantErr  string
	}{
		{name: "one server", dsn: "cmon:pw@tcp(db1:3307)/cmon", wantAddr: "db1:3307"},
		{name: "one server without a port", dsn: "cmon:pw@tcp(db1)/cmon", wantAddr: "db1:3306"},
		{name: "three nodes", dsn: "cmon:pw@tcp(db1:3306,db2:3307,db3)/cmon?timeout=2s", wantAddr: "db1:3306",
			wantList: []string{"db1:3306", "db2:3307", "db3:3306"}},
		{name: "spaces after commas", dsn: "cmon:pw@tcp(127.0.0.1:1, 127.0.0.2:2)/cmon", wantAddr: "127.0.0.1:1",
			wantList: []string{"127.0.0.1:1", "127.0.0.2:2"}},
		{name: "ipv6 nodes", dsn: "cmon:pw@tcp([::1]:3306,[::2]:3306)/cmon", wantAddr: "[::1]:3306",
			wantList: []string{"[::1]:3306", "[::2]:3306"}},
		{name: "ipv6 nodes without ports", dsn: "cmon:pw@tcp([::1],::2)/cmon", wantAddr: "[::1]:3306",
			wantList: []string{"[::1]:3306", "[::2]:3306"}},
		{name: "an @ and a comma in the password", dsn: "cmon:p@ss,w@tcp(db1,db2)/cmon", wantAddr: "db1:3306",
			wantList: []string{"db1:3306", "db2:3306"}},
		{name: "an empty address", dsn: "cmon:secret-pw@tcp(db1,,db3)/cmon", wantErr: "an empty server address"},
		{name: "a port without a host", dsn: "cmon:secret-pw@tcp(db1,:3306)/cmon", wantErr: "is not host:port"},
		{name: "a port out of range", dsn: "cmon:secret-pw@tcp(db1,db2:99999)/cmon", wantErr: "is not host:port"},
		{name: "not a DSN", dsn: "cmon:secret-pw@db1/cmon", wantErr: "not a valid MySQL DSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, addrs, err := parseMySQLDSN(tt.dsn)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret-pw") {
					t.Fatalf("the error quotes the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tt.wantAddr || !slices.Equal(addrs, tt.wantList) {
				t.Fatalf("address %q and list %q, want %q and %q", cfg.Addr, addrs, tt.wantAddr, tt.wantList)
			}
		})
	}
}

// FuzzParseMySQLDSN: whatever an operator writes as CMON_MYSQL_DSN, parsing
// never panics, an error never quotes the text, and a list it accepts names
// every server with a port.
func FuzzParseMySQLDSN(f *testing.F) {
	for _, dsn := range []string{"cmon:pw@tcp(db1:3306,db2,db3)/cmon?timeout=2s", "cmon:p@ss,w@tcp(db1,db2)/cmon",
		"u:secret-pw@tcp(db1,,db3)/cmon", "u:p@tcp([::1]:3306,[::2])/d", "/", "@tcp(,)/", "tcp(a,b)"} {
		f.Add(dsn)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		_, addrs, err := parseMySQLDSN(dsn)
		if err != nil {
			if len(dsn) > 12 && strings.Contains(err.Error(), dsn) {
				t.Fatalf("the error quotes the DSN: %v", err)
			}
			return
		}
		for _, addr := range addrs {
			if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
				t.Fatalf("listed server %q has no port: %v", addr, err)
			}
		}
	})
}
