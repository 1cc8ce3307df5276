package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/jobs/commands"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rpc"
	"github.com/cmon-dev/cmon/rpc/console"
	"github.com/cmon-dev/cmon/sql"
)

// controller is the daemon's parts: build makes them, run runs their loops
// until the context ends and only then releases what build acquired, so no
// loop ever finds the database or an SSH pool closed under it.
type controller struct {
	cfg     *Config
	log     *slog.Logger
	started time.Time

	listeners    []net.Listener
	cert         tls.Certificate
	nodeID       string
	db           *sql.DB
	controllerID string

	users    *rbac.Store
	authz    *rbac.Authorizer
	sessions *rbac.Sessions
	authn    *rbac.Authn
	audit    *rbac.AuditLog

	metrics       *rpc.Metrics
	alarms        *hosts.Alarms
	inventory     *hosts.Inventory
	knownHosts    *hosts.DBKnownHosts
	strict, learn *remote.Client
	monitor       *hosts.Monitor
	engine        *jobs.Service

	// loops run under one group until its context ends or one of them fails.
	loops []func(context.Context) error
	// closers release what build acquired, the last acquired first.
	closers []func(context.Context)
}

// serve builds the controller and runs it until ctx ends.
func serve(ctx context.Context, log *slog.Logger, level *slog.LevelVar, cfg *Config, reload func() (*Config, error)) error {
	c, err := build(ctx, log, level, cfg, reload)
	if err != nil {
		return err
	}
	return c.run(ctx)
}

// build acquires and wires every part, in the order they depend on each
// other; on an error what was acquired so far is released.
func build(ctx context.Context, log *slog.Logger, level *slog.LevelVar, cfg *Config, reload func() (*Config, error)) (*controller, error) {
	c := &controller{cfg: cfg, log: log, started: time.Now()}
	steps := []func(context.Context) error{c.claim, c.openDatabase, c.buildAccess, c.buildHosts, c.startEngine, c.buildServer}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			c.close(ctx)
			return nil, err
		}
	}
	c.watchConfig(level, reload)
	return c, nil
}

// run runs every loop under one group, which ends when ctx does or a loop
// fails, and releases the parts once every loop has returned.
func (c *controller) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, loop := range c.loops {
		g.Go(func() error { return loop(gctx) })
	}
	err := g.Wait()
	c.close(ctx)
	c.log.Info("cmon stopped")
	return err
}

// close runs the closers, the last added first. They outlive ctx's
// cancellation: stopping is what they do.
func (c *controller) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, f := range slices.Backward(c.closers) {
		f(ctx)
	}
}

func (c *controller) onClose(f func()) {
	c.closers = append(c.closers, func(context.Context) { f() })
}

// untilDone is a loop that ends only with its context, as a group member.
func untilDone(loop func(context.Context)) func(context.Context) error {
	return func(ctx context.Context) error {
		loop(ctx)
		return nil
	}
}

// claim binds the ports and takes the data directory, its node identity
// and the TLS certificate. The ports come first: a busy one stops start-up
// before anything is written.
func (c *controller) claim(context.Context) error {
	listeners, err := rpc.Listen(c.log, c.cfg.BindAddresses, c.cfg.Port, connLimits(c.log, c.cfg))
	if err != nil {
		return err
	}
	c.listeners = listeners
	c.onClose(func() { closeAll(listeners) })
	if err := os.MkdirAll(c.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	unlock, err := lockDataDir(c.cfg.DataDir)
	if err != nil {
		return err
	}
	c.onClose(unlock)
	if c.nodeID, err = nodeIdentity(c.cfg.DataDir); err != nil {
		return err
	}
	// Every line names this controller among those sharing the database.
	c.log = c.log.With("controller", c.nodeID)
	c.cert, err = rpc.LoadCertificate(c.log, c.cfg.TLSCert, c.cfg.TLSKey, c.cfg.DataDir, rpc.CertNames(c.cfg.BindAddresses, c.cfg.TLSNames))
	return err
}

// openDatabase opens and migrates the database and reads the installation's id.
func (c *controller) openDatabase(ctx context.Context) error {
	db, err := sql.Open(ctx, c.cfg.MySQLDSN, c.cfg.DataDir)
	if err != nil {
		return err
	}
	c.db = db
	c.onClose(func() { db.Close() })
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		c.log.Info("database schema migrated", "database", db.Where, "applied", applied)
	}
	c.controllerID, err = db.EnsureSetting(ctx, "controller_id", uuid.NewString())
	return err
}

// buildAccess makes the users, their sessions, logins, permissions and
// audit trail, with the admin and the tree's root in place.
func (c *controller) buildAccess(ctx context.Context) error {
	hasher, err := rbac.NewHasher(0)
	if err != nil {
		return err
	}
	hasher.MinLength = c.cfg.MinPasswordLength
	c.users = rbac.NewStore(c.db)
	if err := ensureAdmin(ctx, c.log, c.cfg, c.users, hasher); err != nil {
		return err
	}
	if err := c.users.EnsureRoot(ctx); err != nil {
		return err
	}
	if c.authz, err = rbac.NewAuthorizer(c.db); err != nil {
		return err
	}
	c.sessions = rbac.NewSessions(c.users, rbac.SessionLimits{Idle: c.cfg.SessionIdle, Absolute: c.cfg.SessionMax})
	c.authn = rbac.NewAuthn(c.users, c.sessions, hasher, rbac.AuthnOptions{Log: c.log, Throttle: rbac.ThrottleLimits{
		MaxFailures: c.cfg.LoginMaxFailures, Window: c.cfg.LoginLockout, Lockout: c.cfg.LoginLockout}})
	c.audit = rbac.NewAuditLog(c.db, c.cfg.AuditRetention)
	return nil
}

// buildHosts makes the alarms (and their webhook), the inventory, the SSH
// clients and the health monitor, and adds their loops with the purge's.
func (c *controller) buildHosts(context.Context) error {
	c.metrics = rpc.NewMetrics()
	var notify func(string, hosts.Alarm)
	if c.cfg.WebhookURL != "" {
		webhook := hosts.NewWebhook(c.cfg.WebhookURL, c.cfg.WebhookSecret, c.log)
		c.loops = append(c.loops, untilDone(webhook.Run))
		notify = webhook.Notify
	}
	c.alarms = hosts.NewAlarms(c.db, c.cfg.LogRetention, notify)
	c.loops = append(c.loops, untilDone(func(ctx context.Context) {
		purgeExpired(ctx, c.log, c.sessions, c.authn.Throttle(), c.audit, c.alarms)
	}))
	c.inventory = hosts.NewInventory(c.db)
	c.knownHosts = hosts.NewDBKnownHosts(c.db)
	strict, learn, err := sshClients(c.log, c.cfg, c.knownHosts, c.metrics)
	if err != nil {
		return err
	}
	c.strict, c.learn = strict, learn
	c.onClose(func() { strict.Close() })
	c.onClose(func() { learn.Close() })
	// The engine, which knows the live controllers, exists before the
	// monitor's first round.
	leads := func(ctx context.Context) (bool, error) { return c.engine.Leads(ctx) }
	c.monitor = hosts.NewMonitor(c.inventory, strict, hosts.MonitorConfig{Interval: c.cfg.MonitorInterval, OfflineAfter: c.cfg.HostOfflineAfter,
		Log: c.log, Alarms: c.alarms, Leads: leads})
	c.loops = append(c.loops, untilDone(c.monitor.Run))
	return nil
}

// startEngine starts the job engine; it is stopped after every loop has
// returned and before the SSH clients and the database close.
func (c *controller) startEngine(ctx context.Context) error {
	permit := jobs.OwnerCheck{Users: c.users, Policies: c.authz, Clusters: c.inventory}
	// One grace period for a stop, the transport's: the engine's backstop
	// for a handler that ignores its cancellation sits just above it.
	killGrace := max(c.strict.StopBound(), c.learn.StopBound()) + 2*time.Second
	events := &jobEvents{alarms: c.alarms, log: c.log}
	engine, err := startJobs(ctx, c.log, c.cfg, c.db, c.nodeID, commands.NodeDeps{Inventory: c.inventory, Tree: c.users, SSH: c.strict, Learn: c.learn,
		HostKeys: c.knownHosts, Events: c.alarms, Log: c.log}, c.monitor, permit, killGrace, jobs.Observers{c.metrics, events})
	if err != nil {
		return err
	}
	c.engine = engine
	events.engine.Store(engine)
	c.closers = append(c.closers, func(ctx context.Context) {
		// Running jobs get the shutdown grace to finish; the engine fails the rest.
		stopCtx, cancel := context.WithTimeout(ctx, c.cfg.ShutdownGrace)
		defer cancel()
		if err := engine.Stop(stopCtx); err != nil {
			c.log.Warn("stop job engine", "err", err)
		}
	})
	return nil
}

// buildServer makes the RPC server, and the metrics server when asked for,
// and adds their loops.
func (c *controller) buildServer(context.Context) error {
	c.metrics.Watch(rpc.MetricsState{Sessions: c.sessions, Jobs: c.engine, Inventory: c.inventory, Database: c.db})
	if addr := c.cfg.MetricsAddress; addr != "" {
		c.loops = append(c.loops, untilDone(func(ctx context.Context) { serveMetrics(ctx, c.log, addr, c.metrics) }))
	}
	system := &rpc.SystemInfo{Started: c.started, Hostname: hostname(), Backend: c.db.Where, Workers: c.cfg.JobWorkers, BindAddresses: c.cfg.BindAddresses,
		Port: c.cfg.Port, SchemaVersion: c.db.SchemaVersion, Checks: []rpc.HealthCheck{
			{Name: "database", Check: c.db.PingContext},
			{Name: "job queue", Check: c.engine.Alive},
			{Name: "health monitor", Check: c.monitor.Healthy},
		}}
	web, err := console.New()
	if err != nil {
		return err
	}
	server := rpc.NewServer(rpc.Options{Log: c.log, Version: releaseVersion(), ControllerID: c.controllerID, Node: c.nodeID, Authn: c.authn,
		Sessions: c.authn.Sessions(), Users: c.users, Passwords: c.authn.Hasher(),
		Changes: c.db, Audit: c.audit, Metrics: c.metrics, System: system, Alarms: c.alarms,
		Inventory: c.inventory, Jobs: c.engine, Authz: c.authz, AllowedOrigins: c.cfg.AllowedOrigins, Console: web})
	c.loops = append(c.loops, func(ctx context.Context) error {
		c.log.Info("cmon started", "version", releaseVersion(), "installation_id", c.controllerID, "database", c.db.Where,
			"addresses", c.cfg.BindAddresses, "port", c.cfg.Port)
		return rpc.Serve(ctx, c.log, server, c.listeners, rpc.TLSConfig(c.cert), c.cfg.ShutdownGrace)
	})
	return nil
}

// watchConfig adds the loop that applies, on SIGHUP, the keys that can
// change while running.
func (c *controller) watchConfig(level *slog.LevelVar, reload func() (*Config, error)) {
	retention := func(next *Config) error {
		c.engine.SetRetention(jobs.Retention{MaxAge: next.JobRetention, MaxCount: next.JobRetentionMax})
		return nil
	}
	filters := func(next *Config) error {
		f, err := execFilter(next)
		if err != nil {
			return err
		}
		c.strict.SetFilters(remote.Filters{Default: f})
		c.learn.SetFilters(remote.Filters{Default: f})
		return nil
	}
	live := map[string]liveSetting{
		"CMON_LOG_LEVEL":           func(next *Config) error { level.Set(parseLevel(next.LogLevel)); return nil },
		"CMON_MONITOR_INTERVAL":    func(next *Config) error { c.monitor.SetInterval(next.MonitorInterval); return nil },
		"CMON_JOB_RETENTION":       retention,
		"CMON_JOB_RETENTION_COUNT": retention,
		"CMON_AUDIT_RETENTION":     func(next *Config) error { c.audit.SetRetention(next.AuditRetention); return nil },
		"CMON_EXEC_ALLOW":          filters,
		"CMON_EXEC_DENY":           filters,
		"CMON_EXEC_ORDER":          filters,
	}
	c.loops = append(c.loops, untilDone(func(ctx context.Context) { reloadOnHangup(ctx, c.log, c.cfg, reload, live) }))
}
