package sql_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

func TestMain(m *testing.M) { os.Exit(services.Main(m)) }

func TestMigrateIsIdempotentAndVersioned(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		steps, err := sql.Migrations(db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		latest := steps[len(steps)-1].Version
		applied, err := db.Migrate(ctx)
		if err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if len(applied) != 0 {
			t.Errorf("second migrate applied %v, want nothing", applied)
		}
		if v, err := db.SchemaVersion(ctx); err != nil || v != latest {
			t.Fatalf("schema version = %d, %v; want %d", v, err, latest)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)", latest+1); err != nil {
			t.Fatal(err)
		}
		_, err = db.Migrate(ctx)
		var tooNew *sql.ErrSchemaTooNew
		if !errors.As(err, &tooNew) || tooNew.Database != latest+1 {
			t.Fatalf("migrate against a newer schema: %v, want ErrSchemaTooNew", err)
		}
	})
}

func TestConcurrentMigrateOnOneDatabase(t *testing.T) {
	dsn := services.SharedMariaDB(t).NewDatabase(t)
	for i, err := range migrateAtOnce(context.Background(), []string{dsn, dsn, dsn, dsn}) {
		if err != nil {
			t.Errorf("controller %d: %v", i, err)
		}
	}
}

// migrateAtOnce opens each DSN and migrates through it, all at once, as
// controllers starting together do; it returns each one's error.
func migrateAtOnce(ctx context.Context, dsns []string) []error {
	var wg sync.WaitGroup
	errs := make([]error, len(dsns))
	for i, dsn := range dsns {
		wg.Go(func() {
			db, err := sql.Open(ctx, dsn, "")
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			_, errs[i] = db.Migrate(ctx)
		})
	}
	wg.Wait()
	return errs
}

func TestEnsureSettingKeepsFirstValue(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		first, err := db.EnsureSetting(ctx, "controller_id", "one")
		if err != nil || first != "one" {
			t.Fatalf("first = %q, %v", first, err)
		}
		second, err := db.EnsureSetting(ctx, "controller_id", "two")
		if err != nil || second != "one" {
			t.Fatalf("second = %q, %v; want the first value kept", second, err)
		}
	})
}

func TestUniqueViolationIsRecognized(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		insert := "INSERT INTO controller_settings (name, value) VALUES ('k', 'v')"
		if _, err := db.ExecContext(ctx, insert); err != nil {
			t.Fatal(err)
		}
		_, err := db.ExecContext(ctx, insert)
		if !sql.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert error %v not recognized", err)
		}
		if sql.IsUniqueViolation(errors.New("other")) {
			t.Fatal("plain error recognized as a unique violation")
		}
	})
}
