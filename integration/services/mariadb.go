package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MariaDB is a throwaway mariadbd on 127.0.0.1 with its data in a temporary directory.
type MariaDB struct {
	dir    string
	sock   string
	Port   int
	server string
	client string
	// userArgs run mariadbd as root when the tests do.
	userArgs []string
	// serverArgs are mariadbd options beyond the tests' defaults.
	serverArgs []string
	cmd        *exec.Cmd
	done       chan error
}

var sharedMariaDB shared[*MariaDB]

// SharedMariaDB starts one MariaDB for the test binary on first use; Main stops
// it. Tests get their own database on it with NewDatabase.
func SharedMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	return sharedMariaDB.get(t, "MariaDB", func() (*MariaDB, error) { return StartMariaDB(context.Background()) })
}

// StartMariaDB starts a fresh server, with serverArgs added to (and
// overriding) the tests' mariadbd options; mariadb-server must be installed.
func StartMariaDB(ctx context.Context, serverArgs ...string) (*MariaDB, error) {
	m, err := installMariaDB(ctx, "cmon-mariadb-", serverArgs)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		m.Port = 0 // another port: the last one may have been taken meanwhile
		if err = m.start(ctx); err == nil {
			return m, nil
		}
	}
	os.RemoveAll(m.dir)
	return nil, err
}

// installMariaDB finds the programs and creates a fresh data directory in a new
// temporary directory named after prefix, without starting the server.
func installMariaDB(ctx context.Context, prefix string, serverArgs []string) (*MariaDB, error) {
	server, err := Find("mariadbd")
	if err != nil {
		return nil, err
	}
	installDB, err := lookPath("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	client, err := lookPath("mariadb")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	m := &MariaDB{dir: dir, sock: filepath.Join(dir, "sock"), server: server, client: client, serverArgs: serverArgs}
	if os.Geteuid() == 0 {
		m.userArgs = []string{"--user=root"}
	}
	data := filepath.Join(dir, "data")
	// mariadb-install-db now and then fails its bootstrap on a loaded
	// machine (1051 Unknown table 'mysql.tmp_user_sys', seen about once in
	// eight test runs, never alone): a fresh attempt succeeds.
	for attempt := 1; ; attempt++ {
		install := exec.CommandContext(ctx, installDB, append([]string{"--no-defaults", "--datadir=" + data,
			"--auth-root-authentication-method=normal", "--skip-test-db", noNativeAIO}, m.userArgs...)...)
		out, err := install.CombinedOutput()
		if err == nil {
			return m, nil
		}
		if attempt == 3 || ctx.Err() != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, errorLines(out, 5))
		}
		if err := os.RemoveAll(data); err != nil {
			return nil, fmt.Errorf("remove the failed data directory: %w", err)
		}
	}
}

// noNativeAIO keeps InnoDB off the kernel's asynchronous I/O: a test run
// starts many servers at once (a shared one per test binary, Galera's
// three, private ones), and together they can exhaust the system's AIO
// contexts or locked memory, which fails a server's start.
const noNativeAIO = "--innodb-use-native-aio=0"

// start runs the server on m.Port, or on a spare port when that is 0.
func (m *MariaDB) start(ctx context.Context) error {
	if m.Port == 0 {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			return err
		}
		m.Port = port
	}
	port := m.Port
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(m.dir, "data"), "--socket=" + m.sock,
		fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1", "--pid-file=" + filepath.Join(m.dir, "pid"),
		"--log-error=" + filepath.Join(m.dir, "err.log"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=2", "--max-connections=500", noNativeAIO}, m.userArgs...)
	args = append(args, m.serverArgs...) // later options win
	m.cmd = exec.Command(m.server, args...)
	m.done = make(chan error, 1)
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	err := WaitFor(ctx, 60*time.Second, func() error {
		select {
		case err := <-m.done:
			m.done <- err
			return fmt.Errorf("mariadbd exited: %v", err)
		default:
		}
		return m.exec(ctx, "SELECT 1")
	})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(m.dir, "err.log"))
		stopProcess(m.cmd, m.done)
		return fmt.Errorf("mariadbd on port %d: %w: %s", port, err, lastLines(log, 5))
	}
	return nil
}

func (m *MariaDB) exec(ctx context.Context, query string) error {
	_, err := m.query(ctx, query)
	return err
}

// query runs statements as root and returns what they print, tab-separated
// without column names.
func (m *MariaDB) query(ctx context.Context, query string) (string, error) {
	out, err := exec.CommandContext(ctx, m.client, "--no-defaults", "-S", m.sock, "-uroot", "-N", "-B", "-e", query).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out = append(out, ee.Stderr...)
		}
		return "", fmt.Errorf("%w: %s", err, lastLines(out, 3))
	}
	return strings.TrimSpace(string(out)), nil
}

// NewDatabase creates an empty database with its own user and returns a
// go-sql-driver/mysql DSN for it; the database is dropped when the test ends.
func (m *MariaDB) NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "MariaDB", m.CreateDatabase)
}

// newDatabase is NewDatabase of either server: what create made, dropped
// when the test ends.
func newDatabase[DSN any](t testing.TB, server string, create func(context.Context) (DSN, func(), error)) DSN {
	t.Helper()
	dsn, drop, err := create(context.Background())
	if err != nil {
		t.Fatalf("create %s database: %v", server, err)
	}
	t.Cleanup(drop)
	return dsn
}

// CreateDatabase is NewDatabase for callers without a testing.TB.
func (m *MariaDB) CreateDatabase(ctx context.Context) (dsn string, drop func(), err error) {
	name, password, drop, err := m.createDatabase(ctx)
	if err != nil {
		return "", nil, err
	}
	return databaseDSN(name, password, m.Port), drop, nil
}

// createDatabase makes a database and a user of the same name owning it.
func (m *MariaDB) createDatabase(ctx context.Context) (name, password string, drop func(), err error) {
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name = "cmon_" + hex.EncodeToString(suffix)
	password = hex.EncodeToString(suffix) + "Pw"
	q := fmt.Sprintf("CREATE DATABASE %[1]s; CREATE USER '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s';"+
		" GRANT ALL ON %[1]s.* TO '%[1]s'@'127.0.0.1';", name, password)
	if err := m.exec(ctx, q); err != nil {
		return "", "", nil, err
	}
	drop = func() {
		_ = m.exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %[1]s; DROP USER IF EXISTS '%[1]s'@'127.0.0.1';", name))
	}
	return name, password, drop, nil
}

// databaseDSN is the go-sql-driver/mysql DSN of a database made by createDatabase.
func databaseDSN(name, password string, port int) string {
	return fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s", name, password, port, name)
}

// Stop ends the server and removes its data.
func (m *MariaDB) Stop() {
	stopProcess(m.cmd, m.done)
	os.RemoveAll(m.dir)
}
