package sql_test

import (
	"context"
	stdsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

// TestInTxRunsAConflictAgain: two transactions that lock two rows in
// opposite order deadlock; the one chosen as the victim runs again and both
// end committed, as a Galera certification conflict (the same error) would.
func TestInTxRunsAConflictAgain(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open(ctx, services.SharedMariaDB(t).NewDatabase(t), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{"CREATE TABLE pair (id INT PRIMARY KEY, n INT NOT NULL)", "INSERT INTO pair VALUES (1, 0), (2, 0)"} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	var bothLocked sync.WaitGroup
	bothLocked.Add(2)
	bump := func(first, second int) error {
		var ran atomic.Bool
		return db.InTx(ctx, func(tx *stdsql.Tx) error {
			if _, err := tx.ExecContext(ctx, "UPDATE pair SET n = n + 1 WHERE id = ?", first); err != nil {
				return err
			}
			if !ran.Swap(true) { // the first run waits for the other's lock; a rerun does not
				bothLocked.Done()
				bothLocked.Wait()
			}
			_, err := tx.ExecContext(ctx, "UPDATE pair SET n = n + 1 WHERE id = ?", second)
			return err
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = bump(1, 2) })
	wg.Go(func() { errs[1] = bump(2, 1) })
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("transactions: %v, %v", errs[0], errs[1])
	}
	var total int
	if err := db.QueryRowContext(ctx, "SELECT SUM(n) FROM pair").Scan(&total); err != nil || total != 4 {
		t.Fatalf("sum after both: %d, %v; want 4 (each transaction's two updates, once)", total, err)
	}
	if db.ConflictsRetried() == 0 {
		t.Fatal("no conflict was retried")
	}
}

func TestErrorClasses(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name                  string
		err                   error
		unavailable, conflict bool
	}{
		{name: "none", err: nil},
		{name: "connection refused", err: fmt.Errorf("ping: %w", refused), unavailable: true},
		{name: "bad connection", err: driver.ErrBadConn, unavailable: true},
		{name: "invalid connection", err: fmt.Errorf("query: %w", mysql.ErrInvalidConn), unavailable: true},
		{name: "galera node not ready", err: &mysql.MySQLError{Number: 1047, Message: "WSREP has not yet prepared node for application use"}, unavailable: true},
		{name: "deadlock or certification", err: fmt.Errorf("commit: %w", &mysql.MySQLError{Number: 1213}), conflict: true},
		{name: "lock wait timeout", err: &mysql.MySQLError{Number: 1205}, conflict: true},
		{name: "syntax", err: &mysql.MySQLError{Number: 1064}},
		{name: "other", err: errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sql.IsUnavailable(tt.err); got != tt.unavailable {
				t.Errorf("IsUnavailable = %v, want %v", got, tt.unavailable)
			}
			if got := sql.IsConflict(tt.err); got != tt.conflict {
				t.Errorf("IsConflict = %v, want %v", got, tt.conflict)
			}
		})
	}
}
