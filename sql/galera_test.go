package sql_test

import (
	"context"
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
// read at once through another, every time, because Open turns on Galera's
// causality wait for its connections.
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
	if err := dbs[1].QueryRowContext(ctx, "SELECT @@SESSION.wsrep_sync_wait").Scan(&wait); err != nil || wait != 1 {
		t.Fatalf("wsrep_sync_wait = %d, %v; want 1", wait, err)
	}
	if _, err := dbs[0].ExecContext(ctx, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].ExecContext(ctx, "INSERT INTO counter VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 300; n++ {
		writer, reader := dbs[n%2], dbs[(n+1)%2]
		if _, err := writer.ExecContext(ctx, "UPDATE counter SET n = ? WHERE id = 1", n); err != nil {
			t.Fatal(err)
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
