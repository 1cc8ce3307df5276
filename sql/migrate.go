package sql

import (
	"context"
	stdsql "database/sql"
	"embed"
	"fmt"
	"io/fs"
	"math/rand/v2"
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
// database take turns through a lock row, so running it twice or concurrently,
// even through different nodes of a Galera cluster, is safe.
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
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		name VARCHAR(255) NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	if db.Dialect == MySQL {
		release, err := db.lockMigrations(ctx, conn)
		if err != nil {
			return nil, err
		}
		defer release()
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

// The migration lock: how long a controller waits for it, and after how many
// seconds without a heartbeat its holder is taken for dead.
const (
	migrationLockWait  = 2 * time.Minute
	migrationLockStale = 60
)

// lockMigrations claims the single row of schema_migration_lock, committed on
// its own. A named lock (GET_LOCK) would hold on one Galera node only; a row
// insert is certified cluster-wide, so of concurrent claims through different
// nodes one commits and the others fail with a duplicate key or a deadlock,
// wait a little and try again. The holder refreshes the row until release, so
// the row of a controller that died is reclaimed once stale.
func (db *DB) lockMigrations(ctx context.Context, conn *stdsql.Conn) (release func(), err error) {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migration_lock (
		id INTEGER NOT NULL PRIMARY KEY,
		holder VARCHAR(64) NOT NULL,
		taken_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migration_lock: %w", err)
	}
	holder := strconv.FormatUint(rand.Uint64(), 36)
	deadline := time.Now().Add(migrationLockWait)
	for {
		_, err := conn.ExecContext(ctx, "INSERT INTO schema_migration_lock (id, holder, taken_at) VALUES (1, ?, UNIX_TIMESTAMP())", holder)
		if err == nil {
			break
		}
		if !isLockConflict(err) {
			return nil, fmt.Errorf("take the schema migration lock: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("take the schema migration lock: another controller held it for %s", migrationLockWait)
		}
		if _, err := conn.ExecContext(ctx, "DELETE FROM schema_migration_lock WHERE id = 1 AND taken_at < UNIX_TIMESTAMP() - ?",
			migrationLockStale); err != nil && !isLockConflict(err) {
			return nil, fmt.Errorf("reclaim a stale schema migration lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("take the schema migration lock: %w", ctx.Err())
		case <-time.After(50*time.Millisecond + rand.N(200*time.Millisecond)):
		}
	}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(migrationLockStale * time.Second / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				// A failed refresh is retried on the next tick; only a holder
				// silent for migrationLockStale loses the lock.
				_, _ = db.ExecContext(ctx, "UPDATE schema_migration_lock SET taken_at = UNIX_TIMESTAMP() WHERE id = 1 AND holder = ?", holder)
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "DELETE FROM schema_migration_lock WHERE id = 1 AND holder = ?", holder)
	}, nil
}

// isLockConflict tells whether a claim lost to another: a duplicate key where
// the winner's row is already seen, a deadlock where Galera's certification
// or InnoDB chose this one as the victim, or a lock wait timeout.
func isLockConflict(err error) bool {
	return IsUniqueViolation(err) || IsConflict(err)
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
