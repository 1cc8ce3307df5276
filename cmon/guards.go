package main

import (
	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rpc"
	"github.com/cmon-dev/cmon/sql"
)

// What the controller wires into rpc.Options must keep the interfaces rpc
// declares for it; a change on either side fails the build here, next to
// the wiring, instead of at the call.
var (
	_ rpc.Logins        = (*rbac.Authn)(nil)
	_ rpc.SessionStore  = (*rbac.Sessions)(nil)
	_ rpc.Directory     = (*rbac.Store)(nil)
	_ rpc.PasswordRules = (*rbac.Hasher)(nil)
	_ rpc.Authorizer    = (*rbac.Authorizer)(nil)
	_ rpc.Auditor       = (*rbac.AuditLog)(nil)
	_ rpc.Inventory     = (*hosts.Inventory)(nil)
	_ rpc.AlarmStore    = (*hosts.Alarms)(nil)
	_ rpc.JobEngine     = (*jobs.Service)(nil)
	_ rpc.Pinner        = (*sql.DB)(nil)
)
