// Command cmon is the cluster-management controller daemon: it serves the RPC
// v2 API over TLS and runs jobs on the clusters' nodes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
	_ "time/tzdata" // user time zones resolve on machines without zoneinfo

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rpc"
	"github.com/cmon-dev/cmon/sql"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cmon:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, fs, err := loadConfig(args, getenv)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if v, _ := fs.GetBool("version"); v {
		fmt.Fprintf(stdout, "cmon %s\n", version)
		return nil
	}
	log := newLogger(stderr, cfg.LogLevel)
	if fs.Changed("admin-password") || fs.Changed("mysql-dsn") {
		log.Warn("a secret was given as a flag and is visible in the process list; prefer the config file or the environment")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, log, cfg)
}

func serve(ctx context.Context, log *slog.Logger, cfg *Config) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	db, err := sql.Open(ctx, cfg.MySQLDSN, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("database schema migrated", "database", db.Where, "applied", applied)
	}
	controllerID, err := db.EnsureSetting(ctx, "controller_id", uuid.NewString())
	if err != nil {
		return err
	}
	hasher, err := rbac.NewHasher(0)
	if err != nil {
		return err
	}
	users := rbac.NewStore(db)
	if err := ensureAdmin(ctx, log, cfg, users, hasher); err != nil {
		return err
	}
	cert, err := rpc.LoadCertificate(log, cfg.TLSCert, cfg.TLSKey, cfg.DataDir, cfg.BindAddresses)
	if err != nil {
		return err
	}
	listeners, err := rpc.Listen(cfg.BindAddresses, cfg.Port, rpc.TLSConfig(cert))
	if err != nil {
		return err
	}
	sessions := rbac.NewSessions(db, rbac.SessionLimits{Idle: cfg.SessionIdle, Absolute: cfg.SessionMax})
	authn := rbac.NewAuthn(users, sessions, hasher, rbac.AuthnOptions{Log: log, Throttle: rbac.ThrottleLimits{
		SlowAfter: cfg.LoginMaxFailures / 2, MaxFailures: cfg.LoginMaxFailures, Window: cfg.LoginLockout,
		Lockout: cfg.LoginLockout, Step: 500 * time.Millisecond, MaxDelay: 3 * time.Second}})
	go purgeSessions(ctx, log, sessions)
	server := rpc.NewServer(rpc.Options{Log: log, Version: version, ControllerID: controllerID, Authn: authn,
		Inventory: hosts.NewInventory(db)})
	log.Info("cmon started", "version", version, "controller_id", controllerID, "database", db.Where,
		"addresses", cfg.BindAddresses, "port", cfg.Port)
	err = rpc.Serve(ctx, log, server, listeners, cfg.ShutdownGrace)
	log.Info("cmon stopped")
	return err
}

// InitialPasswordFile is where a generated admin password is written, once.
const InitialPasswordFile = "initial-admin-password"

// ensureAdmin creates the admin user on an empty database. A generated password
// goes to a 0600 file whose path, never the password, is logged.
func ensureAdmin(ctx context.Context, log *slog.Logger, cfg *Config, users *rbac.Store, hasher *rbac.Hasher) error {
	n, err := users.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	password, generated := cfg.AdminPassword, false
	if password == "" {
		password, generated = rbac.RandomPassword(), true
	}
	hash, err := hasher.Hash(password)
	if err != nil {
		return fmt.Errorf("config: CMON_ADMIN_PASSWORD: %w", err)
	}
	created, err := users.CreateAdmin(ctx, hash)
	if err != nil || !created {
		return err
	}
	if !generated {
		log.Info("created the admin user with the configured password", "user", rbac.AdminUser)
		return nil
	}
	path := filepath.Join(cfg.DataDir, InitialPasswordFile)
	_ = os.Remove(path) // a file left from an earlier database holds a password that no longer works
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write initial admin password: %w", err)
	}
	_, werr := fmt.Fprintln(f, password)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("write initial admin password: %w", err)
	}
	log.Info("created the admin user with a generated password", "user", rbac.AdminUser, "password_file", path)
	return nil
}

// purgeSessions deletes expired sessions every few minutes until ctx ends.
func purgeSessions(ctx context.Context, log *slog.Logger, sessions *rbac.Sessions) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := sessions.Purge(ctx); err != nil {
				log.Warn("purge expired sessions", "err", err)
			} else if n > 0 {
				log.Debug("purged expired sessions", "count", n)
			}
		}
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
