package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MariaDB is a throwaway mariadbd on 127.0.0.1 with its data in a temporary directory.
type MariaDB struct {
	dir    string
	sock   string
	Port   int
	client string
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
	dir, err := os.MkdirTemp("", "cmon-mariadb-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	m := &MariaDB{dir: dir, sock: filepath.Join(dir, "sock"), client: client, serverArgs: serverArgs}
	userArgs := []string{}
	if os.Geteuid() == 0 {
		userArgs = []string{"--user=root"}
	}
	install := exec.CommandContext(ctx, installDB, append([]string{"--datadir=" + filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db"}, userArgs...)...)
	if out, err := install.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, lastLines(out, 5))
	}
	for attempt := 0; attempt < 3; attempt++ {
		if err = m.start(ctx, server, userArgs); err == nil {
			return m, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

func (m *MariaDB) start(ctx context.Context, server string, userArgs []string) error {
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	m.Port = port
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(m.dir, "data"), "--socket=" + m.sock,
		fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1", "--pid-file=" + filepath.Join(m.dir, "pid"),
		"--log-error=" + filepath.Join(m.dir, "err.log"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=2", "--max-connections=500"}, userArgs...)
	args = append(args, m.serverArgs...) // later options win
	m.cmd = exec.Command(server, args...)
	m.done = make(chan error, 1)
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	err = WaitFor(ctx, 60*time.Second, func() error {
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
	out, err := exec.CommandContext(ctx, m.client, "--no-defaults", "-S", m.sock, "-uroot", "-e", query).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, lastLines(out, 3))
	}
	return nil
}

// NewDatabase creates an empty database with its own user and returns a
// go-sql-driver/mysql DSN for it; the database is dropped when the test ends.
func (m *MariaDB) NewDatabase(t testing.TB) string {
	t.Helper()
	dsn, drop, err := m.CreateDatabase(context.Background())
	if err != nil {
		t.Fatalf("create MariaDB database: %v", err)
	}
	t.Cleanup(drop)
	return dsn
}

// CreateDatabase is NewDatabase for callers without a testing.TB.
func (m *MariaDB) CreateDatabase(ctx context.Context) (dsn string, drop func(), err error) {
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "cmon_" + hex.EncodeToString(suffix)
	password := hex.EncodeToString(suffix) + "Pw"
	q := fmt.Sprintf("CREATE DATABASE %[1]s; CREATE USER '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s';"+
		" GRANT ALL ON %[1]s.* TO '%[1]s'@'127.0.0.1';", name, password)
	if err := m.exec(ctx, q); err != nil {
		return "", nil, err
	}
	drop = func() {
		_ = m.exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %[1]s; DROP USER IF EXISTS '%[1]s'@'127.0.0.1';", name))
	}
	return fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s", name, password, m.Port, name), drop, nil
}

// Stop ends the server and removes its data.
func (m *MariaDB) Stop() {
	stopProcess(m.cmd, m.done)
	os.RemoveAll(m.dir)
}
