package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
)

// TestDatabaseDownSaidPlainly: with its database gone, the controller keeps
// answering: ping without the database, and every other request with
// TryAgain saying the database is unreachable, never an internal error.
func TestDatabaseDownSaidPlainly(t *testing.T) {
	ctx := context.Background()
	db, err := services.StartMariaDB(ctx)
	if err != nil {
		services.Unavailable(t, "MariaDB", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			db.Stop()
		}
	})
	dsn, _, err := db.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := startController(t, controllerOptions{backend: backend{name: "mariadb", dsn: dsn}})
	admin := c.session(t, "admin", adminPassword)
	mustOk(t, admin.call(t, "clusters", `{"operation":"getAllClusterInfo"}`))

	db.Stop()
	stopped = true
	for _, op := range []struct{ module, body string }{
		{"clusters", `{"operation":"getAllClusterInfo"}`},
		{"controller", `{"operation":"getStatus"}`},
		{"jobs", `{"operation":"getJobInstances"}`},
	} {
		r := admin.call(t, op.module, op.body)
		if r.Status() != "TryAgain" || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), "database is unreachable") {
			t.Errorf("%s with the database down: %s", op.body, r.Raw)
		}
	}
	if r := mustOk(t, c.curl(t, "controller", `{"operation":"ping"}`)); r.Reply["package_name"] != "cmon" {
		t.Errorf("ping with the database down: %s", r.Raw)
	}
}
