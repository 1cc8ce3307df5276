package services

// A store test runs against every backend cmon supports: a fresh SQLite file
// and a fresh database on a real MariaDB, both migrated.

import (
	"context"
	"testing"

	"github.com/cmon-dev/cmon/sql"
)

// Backend opens a fresh, migrated database of one kind for a test.
type Backend struct {
	Name string
	Open func(t testing.TB) *sql.DB
}

// Backends lists SQLite and MariaDB. MariaDB comes from SharedMariaDB, so the
// package's TestMain must run Main.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Open: OpenSQLite},
		{Name: "mariadb", Open: OpenMariaDB},
	}
}

// ForEach runs fn as a subtest on each backend.
func ForEach(t *testing.T, fn func(t *testing.T, db *sql.DB)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}

// OpenSQLite gives a migrated SQLite database in a temporary directory.
func OpenSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	return migrated(t, db)
}

// OpenMariaDB gives a migrated database of its own on the shared MariaDB.
func OpenMariaDB(t testing.TB) *sql.DB {
	t.Helper()
	dsn := SharedMariaDB(t).NewDatabase(t)
	db, err := sql.Open(context.Background(), dsn, "")
	if err != nil {
		t.Fatalf("open mariadb: %v", err)
	}
	return migrated(t, db)
}

func migrated(t testing.TB, db *sql.DB) *sql.DB {
	t.Helper()
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", db.Where, err)
	}
	return db
}
