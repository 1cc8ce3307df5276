package sql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

// TestGaleraConcurrentMigrate: controllers migrating one empty database at
// once, each through another Galera node, all succeed (a named lock holds on
// one node only).
func TestGaleraConcurrentMigrate(t *testing.T) {
	ctx := context.Background()
	cluster := services.SharedGalera(t)
	for round := range 3 {
		for i, err := range migrateAtOnce(ctx, cluster.NewDatabase(t)) {
			if err != nil {
				t.Errorf("round %d, node %d: %v", round, i+1, err)
			}
		}
	}
}

// TestGaleraReadsSeeOtherNodesCommits: a row committed through one node is
// read and updated at once through another, every time, because Open turns on
// Galera's causality wait for its connections' reads and writes alike.
func TestGaleraReadsSeeOtherNodesCommits(t *testing.T) {
	ctx := context.Background()
	dsns := services.SharedGalera(t).NewDatabase(t)
	var dbs []*sql.DB
	for _, dsn := range dsns[:2] {
		db, err := sql.Open(ctx, dsn, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	var wait int
	if err := dbs[1].QueryRowContext(ctx, "SELECT @@SESSION.wsrep_sync_wait").Scan(&wait); err != nil || wait != 7 {
		t.Fatalf("wsrep_sync_wait = %d, %v; want 7", wait, err)
	}
	if _, err := dbs[0].ExecContext(ctx, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].ExecContext(ctx, "INSERT INTO counter VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 300; n++ {
		writer, reader := dbs[n%2], dbs[(n+1)%2]
		res, err := writer.ExecContext(ctx, "UPDATE counter SET n = ? WHERE id = 1", n)
		if err != nil {
			t.Fatal(err)
		}
		// An update that ran before its node had the row matches nothing.
		if updated, err := res.RowsAffected(); err != nil || updated != 1 {
			t.Fatalf("write %d updated %d rows, %v", n, updated, err)
		}
		var got int
		if err := reader.QueryRowContext(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Fatalf("write %d: the other node read %d", n, got)
		}
	}
}

// TestGaleraServerListSkipsDeadServers: a DSN listing several servers
// connects to the first live one, and counts the move.
func TestGaleraServerListSkipsDeadServers(t *testing.T) {
	ctx := context.Background()
	dsns := services.SharedGalera(t).NewDatabase(t)
	dead, err := services.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dsn := strings.Replace(services.ServerList(dsns, 1), "tcp(", fmt.Sprintf("tcp(127.0.0.1:%d,", dead), 1)
	db, err := sql.Open(ctx, dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if db.Failovers() != 1 {
		t.Fatalf("failovers = %d, want 1 (past the dead server)", db.Failovers())
	}
	if !strings.Contains(db.Where, fmt.Sprintf("127.0.0.1:%d,", dead)) || strings.Contains(db.Where, "@tcp") {
		t.Fatalf("Where = %q, want every server listed and no password", db.Where)
	}
}
