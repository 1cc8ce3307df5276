// Package sql opens cmon's database (embedded SQLite or MySQL/MariaDB) and keeps
// its schema current. It knows nothing of cmon's domain: the other packages write
// their queries against *DB and keep backend differences in the few helpers here.
package sql

import (
	"context"
	stdsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the backend, for the few statements the two do not share.
type Dialect string

const (
	SQLite Dialect = "sqlite"
	MySQL  Dialect = "mysql"
)

// DB is a database/sql handle that knows its dialect.
type DB struct {
	*stdsql.DB
	Dialect Dialect
	// Where is a printable description of the database without secrets.
	Where string
	// changes coalesces reads of the change versions (changes.go).
	changes changeClock
	// conflicts counts transactions run again after a conflict.
	conflicts atomic.Int64
	// failover, when the DSN lists several servers, picks the live one.
	failover *failoverConnector
}

// SQLiteFile is the embedded database's file name inside the data directory.
const SQLiteFile = "cmon.db"

// Open connects to MySQL/MariaDB when mysqlDSN is set, else to the SQLite file
// in dataDir, and checks that the database answers.
func Open(ctx context.Context, mysqlDSN, dataDir string) (*DB, error) {
	if mysqlDSN != "" {
		return openMySQL(ctx, mysqlDSN)
	}
	return OpenSQLite(ctx, filepath.Join(dataDir, SQLiteFile))
}

// Connection pool bounds per backend.
const (
	maxOpenSQLite = 32
	maxOpenMySQL  = 64
)

// OpenSQLite opens (creating if needed) the SQLite database at path.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	// The database holds password hashes: create it private (SQLite gives its
	// -wal and -shm files the main file's mode).
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	// WAL lets readers run beside the single writer; busy_timeout makes writers
	// queue instead of failing; _txlock=immediate takes the write lock at BEGIN so
	// read-then-write transactions (claiming a job) cannot deadlock on upgrade.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := stdsql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Bounded, so a flood of requests queues for a connection instead of
	// opening file handles without end (SQLite has one writer anyway).
	db.SetMaxOpenConns(maxOpenSQLite)
	db.SetMaxIdleConns(maxOpenSQLite)
	d := &DB{DB: db, Dialect: SQLite, Where: "sqlite:" + path}
	if err := d.ping(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// CheckMySQLDSN tells whether dsn parses, without connecting, so that start-up
// can report a bad one before it binds a port.
func CheckMySQLDSN(dsn string) error {
	_, _, err := parseMySQLDSN(dsn)
	return err
}

// parseMySQLDSN reads dsn, which may list several servers, the nodes of a
// Galera cluster, as tcp(db1:3306,db2:3306,db3:3306); addrs holds them, or
// nothing when dsn names one server.
func parseMySQLDSN(dsn string) (cfg *mysql.Config, addrs []string, err error) {
	// The driver's message may quote the DSN, password included: say only what is wrong.
	invalid := errors.New("not a valid MySQL DSN (user:password@tcp(host:port)/dbname)")
	single, addrs, err := splitAddresses(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", invalid, err)
	}
	if cfg, err = mysql.ParseDSN(single); err != nil {
		return nil, nil, invalid
	}
	return cfg, addrs, nil
}

func openMySQL(ctx context.Context, dsn string) (*DB, error) {
	cfg, addrs, err := parseMySQLDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("CMON_MYSQL_DSN: %w", err)
	}
	cfg.ParseTime = false // times are stored as integer milliseconds on both backends
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	d, err := connectMySQL(ctx, cfg, addrs)
	if err != nil {
		return nil, err
	}
	galera, err := d.isGalera(ctx)
	if err != nil || !galera {
		if err != nil {
			d.Close()
		}
		return d, err
	}
	// A Galera node applies other nodes' commits asynchronously: without a
	// causality wait a controller could read data older than a change another
	// controller has already committed through another node, and serve it, or
	// run a compare-and-set UPDATE against a row it has not yet received and
	// match nothing. 7 makes reads, updates, deletes, inserts and replaces
	// wait until the node has applied what the cluster committed before them.
	d.Close()
	cfg.Params["wsrep_sync_wait"] = "7"
	return connectMySQL(ctx, cfg, addrs)
}

// connectMySQL opens a pool on cfg's server or, when addrs lists several,
// on the first live one of them, moving to another when it fails.
func connectMySQL(ctx context.Context, cfg *mysql.Config, addrs []string) (*DB, error) {
	var connector driver.Connector
	var failover *failoverConnector
	var err error
	where := cfg.Addr
	if len(addrs) > 1 {
		failover, err = newFailoverConnector(cfg, addrs)
		connector, where = failover, strings.Join(addrs, ",")
	} else {
		connector, err = mysql.NewConnector(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("mysql connector: %w", err)
	}
	db := stdsql.OpenDB(connector)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetMaxOpenConns(maxOpenMySQL) // several controllers share the server's max_connections
	db.SetMaxIdleConns(8)
	d := &DB{DB: db, Dialect: MySQL, Where: fmt.Sprintf("mysql:%s@%s/%s", cfg.User, where, cfg.DBName), failover: failover}
	if err := d.ping(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Failovers counts the times the pool moved to another of the listed
// database servers because the one it used was not live.
func (db *DB) Failovers() int64 {
	if db.failover == nil {
		return 0
	}
	return db.failover.failovers.Load()
}

// isGalera tells whether the server is a node of a Galera cluster; MySQL,
// which has no wsrep variables, is not.
func (db *DB) isGalera(ctx context.Context) (bool, error) {
	var name, value string
	err := db.QueryRowContext(ctx, "SHOW VARIABLES LIKE 'wsrep_on'").Scan(&name, &value)
	if errors.Is(err, stdsql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read wsrep_on of %s: %w", db.Where, err)
	}
	return strings.EqualFold(value, "ON"), nil
}

func (db *DB) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connect to %s: %w", db.Where, err)
	}
	return nil
}

// conflictAttempts bounds how often InTx runs a transaction that keeps
// losing to concurrent ones.
const conflictAttempts = 5

// InTx runs fn in a transaction, committing when fn returns nil. MySQL runs it
// READ COMMITTED: the claims and counters here want the latest rows, and
// REPEATABLE READ's gap locks would make concurrent inserts wait on each other.
// SQLite transactions take the single write lock at BEGIN. A transaction
// that loses to a concurrent one (a deadlock victim, or on Galera a failed
// certification) runs again after a short jittered wait, up to
// conflictAttempts times in all: fn must do nothing but its transaction's
// work, as every caller's does.
func (db *DB) InTx(ctx context.Context, fn func(tx *stdsql.Tx) error) error {
	return db.retryConflicts(ctx, func() error { return db.inTx(ctx, fn) })
}

// ExecContext runs one statement in a transaction of its own, run again
// after a conflict as InTx runs a transaction: a statement that lost was
// rolled back, so running it again applies it once.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	var res stdsql.Result
	err := db.retryConflicts(ctx, func() error {
		var err error
		res, err = db.DB.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// retryConflicts runs work until it does not lose to a concurrent
// transaction, at most conflictAttempts times, with jittered, growing waits
// between: the transactions that collided must not collide again in step.
func (db *DB) retryConflicts(ctx context.Context, work func() error) error {
	for attempt := 1; ; attempt++ {
		err := work()
		if !IsConflict(err) || attempt == conflictAttempts {
			return err
		}
		db.conflicts.Add(1)
		wait := time.Duration(rand.Int64N(int64(5*time.Millisecond) << attempt))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// ConflictsRetried counts the transactions and statements run again after a
// conflict.
func (db *DB) ConflictsRetried() int64 { return db.conflicts.Load() }

func (db *DB) inTx(ctx context.Context, fn func(tx *stdsql.Tx) error) error {
	var opts *stdsql.TxOptions
	if db.Dialect == MySQL {
		opts = &stdsql.TxOptions{Isolation: stdsql.LevelReadCommitted}
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		db.changes.ended(tx, false)
		return err
	}
	err = tx.Commit()
	// Counted even if the commit reports an error: a commit whose outcome is
	// unknown costs one more read of the versions, never a stale cache.
	db.changes.ended(tx, true)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ForUpdate is the clause of a locking read: MySQL and MariaDB lock the rows
// read; SQLite's transaction holds the write lock from BEGIN.
func (db *DB) ForUpdate() string {
	if db.Dialect == MySQL {
		return " FOR UPDATE"
	}
	return ""
}

// ForUpdateSkipLocked is the locking clause for claiming queue rows: MySQL and
// MariaDB lock rows and skip those another controller holds; SQLite has one
// writer at a time (the transaction holds the write lock from BEGIN), so it needs none.
func (db *DB) ForUpdateSkipLocked() string {
	if db.Dialect == MySQL {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// IsConflict tells whether err is a transaction that lost to a concurrent
// one and may be run again: InnoDB's deadlock victim and Galera's failed
// certification (both 1213), or a lock wait timeout (1205).
func IsConflict(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// IsUnavailable tells whether err says the database server could not be
// reached or is not ready to serve (a Galera node not yet synced, 1047),
// rather than that a statement failed.
func IsUnavailable(err error) bool {
	var opErr *net.OpError
	var me *mysql.MySQLError
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.As(err, &opErr) ||
		errors.Is(err, errNotSynced) || (errors.As(err, &me) && me.Number == 1047)
}

// IsUniqueViolation tells whether err is a duplicate-key error on either backend.
func IsUniqueViolation(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Millis converts a time to the integer milliseconds stored in the database; the
// zero time is stored as 0.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Time converts stored milliseconds back; 0 is the zero time.
func Time(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// EnsureSetting returns the stored value of an installation-wide setting,
// storing value first if the setting does not exist yet. Controllers sharing a
// database all end up with the value the first one stored.
func (db *DB) EnsureSetting(ctx context.Context, name, value string) (string, error) {
	_, err := db.ExecContext(ctx, "INSERT INTO controller_settings (name, value) VALUES (?, ?)", name, value)
	if err != nil && !IsUniqueViolation(err) {
		return "", fmt.Errorf("store setting %s: %w", name, err)
	}
	var stored string
	if err := db.QueryRowContext(ctx, "SELECT value FROM controller_settings WHERE name = ?", name).Scan(&stored); err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, err)
	}
	return stored, nil
}

// Clip shortens s to at most n bytes at a rune boundary, for a column of
// bounded size.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Placeholders renders "?, ?, ?" for the values of an IN list, and the
// values as arguments.
func Placeholders[T any](vals []T) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", "), args
}

// Where builds a WHERE clause from the filters a listing was given: each
// method adds a condition only when its value selects something.
type Where struct {
	conds []string
	args  []any
}

// Equal adds "col = v" unless v is "".
func (w *Where) Equal(col, v string) {
	if v != "" {
		w.conds, w.args = append(w.conds, col+" = ?"), append(w.args, v)
	}
}

// In adds "col IN (ids)" unless ids is empty.
func (w *Where) In(col string, ids []int64) {
	if len(ids) > 0 {
		list, args := Placeholders(ids)
		w.conds, w.args = append(w.conds, col+" IN ("+list+")"), append(w.args, args...)
	}
}

// Between adds from <= col < to for the bounds that are set; col holds
// stored milliseconds.
func (w *Where) Between(col string, from, to time.Time) {
	if !from.IsZero() {
		w.conds, w.args = append(w.conds, col+" >= ?"), append(w.args, Millis(from))
	}
	if !to.IsZero() {
		w.conds, w.args = append(w.conds, col+" < ?"), append(w.args, Millis(to))
	}
}

// Clause is " WHERE ..." ("" without conditions) and its arguments.
func (w *Where) Clause() (string, []any) {
	if len(w.conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(w.conds, " AND "), w.args
}

// Add adds a condition without arguments.
func (w *Where) Add(cond string) { w.conds = append(w.conds, cond) }
