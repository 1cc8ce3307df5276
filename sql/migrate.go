package sql

import (
	"context"
	stdsql "database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrations holds one folder per dialect with files named NNNN_what.sql; the
// number is the schema version the file brings the database to.
//
//go:embed migrations
var migrations embed.FS

// Migration is one schema step.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations lists the dialect's schema steps in version order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations for %s: %w", d, err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s is not named NNNN_what.sql", name)
		}
		body, err := fs.ReadFile(migrations, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: version, Name: name, Statements: splitStatements(string(body))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].Version)
		}
	}
	return out, nil
}

// splitStatements cuts a migration at lines ending in ';', dropping "--" comment
// lines, so that neither driver needs multi-statement mode.
func splitStatements(body string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.SplitSeq(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// ErrSchemaTooNew is returned when the database was migrated by a newer cmon.
type ErrSchemaTooNew struct{ Database, Binary int }

func (e *ErrSchemaTooNew) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this cmon knows (%d): upgrade cmon", e.Database, e.Binary)
}

// Migrate applies every migration the database lacks, in order, and refuses a
// database whose schema is newer than this binary. Controllers sharing a MySQL
// database serialize on a named lock, so running it twice or concurrently is safe.
func (db *DB) Migrate(ctx context.Context) (applied []int, err error) {
	steps, err := Migrations(db.Dialect)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration connection: %w", err)
	}
	defer conn.Close()
	if db.Dialect == MySQL {
		var got stdsql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('cmon_schema_migration', 60)").Scan(&got); err != nil {
			return nil, fmt.Errorf("take the schema migration lock: %w", err)
		}
		if got.Int64 != 1 {
			return nil, errors.New("take the schema migration lock: another controller held it for 60 s")
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('cmon_schema_migration')")
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		name VARCHAR(255) NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	done, maxDone, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	if latest := steps[len(steps)-1].Version; maxDone > latest {
		return nil, &ErrSchemaTooNew{Database: maxDone, Binary: latest}
	}
	for _, m := range steps {
		if done[m.Version] {
			continue
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			return applied, err
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

func appliedVersions(ctx context.Context, conn *stdsql.Conn) (map[int]bool, int, error) {
	rows, err := conn.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	done := map[int]bool{}
	maxDone := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, 0, fmt.Errorf("read schema_migrations: %w", err)
		}
		done[v] = true
		maxDone = max(maxDone, v)
	}
	return done, maxDone, rows.Err()
}

// applyMigration runs one step in a transaction. MySQL commits DDL implicitly, so
// there a step is kept to statements that are safe to repeat if a crash cuts it short.
func applyMigration(ctx context.Context, conn *stdsql.Conn, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	for _, stmt := range m.Statements {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	return nil
}

// SchemaVersion is the highest migration applied to the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v stdsql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
