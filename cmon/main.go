// Command cmon is the cluster-management controller daemon: it serves the RPC
// v2 API over TLS and runs jobs on the clusters' nodes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	_ "time/tzdata" // user time zones resolve on machines without zoneinfo

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/jobs/commands"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rpc"
	"github.com/cmon-dev/cmon/sql"
)

// stampedVersion is set at build time with -ldflags "-X
// main.stampedVersion=..."; make stamps the repository's tags (git describe).
var stampedVersion string

// releaseVersion is the version this binary reports (--version, the Server
// header, ping's package_version): the stamped one, else what the Go
// toolchain recorded: the module version of a go install pkg@vX, or the
// commit it was built from; "dev" when none is known.
func releaseVersion() string {
	if stampedVersion != "" {
		return stampedVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var revision, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			revision = s.Value[:min(len(s.Value), 12)]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if revision == "" {
		return "dev"
	}
	return "dev-" + revision + dirty
}

func main() {
	if err := run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cmon:", err)
		os.Exit(1)
	}
}

func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	cfg, fs, err := loadConfig(args, lookupEnv)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: cmon [flags]\n\nEach flag also reads from the key in brackets, in the environment or the --config file.\n\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	if err != nil {
		return err
	}
	if v, _ := fs.GetBool("version"); v {
		fmt.Fprintf(stdout, "cmon %s\n", releaseVersion())
		return nil
	}
	if cfg.DataDir == "" {
		return errors.New("config: no data directory: HOME is not set and cmon does not run as root; name one with --data-dir or CMON_DATA_DIR")
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.LogLevel))
	log := newLogger(stderr, level, cfg.LogFormat)
	if fs.Changed("admin-password") || fs.Changed("mysql-dsn") {
		log.Warn("a secret was given as a flag and is visible in the process list; prefer the config file or the environment")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reload := func() (*Config, error) {
		next, _, err := loadConfig(args, lookupEnv)
		return next, err
	}
	return serve(ctx, log, level, cfg, reload)
}

// lockDataDir holds an exclusive lock on the data directory for as long as
// this process runs, so a second controller never opens the same embedded
// database or takes the same node identity.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "cmon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another cmon (pid %s): %w", dir, strings.TrimSpace(string(holder)), err)
	}
	// Who holds it, for the message above; the lock itself is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

func closeAll(listeners []net.Listener) {
	for _, l := range listeners {
		l.Close()
	}
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

// sshClients makes the two SSH clients over one host-key store: strict for
// everything, and one that learns unknown host keys, for registration only.
func sshClients(log *slog.Logger, cfg *Config, known remote.KnownHosts, observer remote.Observer) (strict, learn *remote.Client, err error) {
	filter, err := execFilter(cfg)
	if err != nil {
		return nil, nil, err
	}
	base := remote.Config{KnownHosts: known, KeyFile: cfg.SSHKeyFile, AgentSocket: os.Getenv("SSH_AUTH_SOCK"),
		Filters: remote.Filters{Default: filter}, Logger: log, Observer: observer}
	if strict, err = remote.New(base); err != nil {
		return nil, nil, err
	}
	base.LearnHostKeys = true
	if learn, err = remote.New(base); err != nil {
		strict.Close()
		return nil, nil, err
	}
	return strict, learn, nil
}

// execFilter is the command filter of CMON_EXEC_ALLOW, _DENY and _ORDER.
func execFilter(cfg *Config) (*remote.Filter, error) {
	f, err := remote.NewFilter(remote.FilterConfig{Allow: nonEmpty(cfg.ExecAllow), Deny: nonEmpty(cfg.ExecDeny), Order: remote.Order(cfg.ExecOrder)})
	if err != nil {
		return nil, fmt.Errorf("config: CMON_EXEC_ALLOW/CMON_EXEC_DENY: %w", err)
	}
	return f, nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// startJobs builds the command registry and starts the job engine.
func startJobs(ctx context.Context, log *slog.Logger, cfg *Config, db *sql.DB, nodeID string, deps commands.NodeDeps, checker commands.ClusterChecker,
	permit jobs.Permitter, killGrace time.Duration, observer jobs.Observer) (*jobs.Service, error) {
	cmds := append(commands.Builtin(), commands.NodeCommands(deps)...)
	reg, err := jobs.NewRegistry(append(cmds, commands.CheckHostsCommand(deps.Inventory, checker))...)
	if err != nil {
		return nil, err
	}
	workers := cfg.JobWorkers
	if workers == 0 {
		workers = -1 // the engine reads 0 as its default; here 0 means this controller runs none
	}
	engine, err := jobs.New(db, reg, jobs.Config{ControllerID: nodeID, Workers: workers, MaxRunTime: cfg.JobMaxRuntime,
		Retention: jobs.Retention{MaxAge: cfg.JobRetention, MaxCount: cfg.JobRetentionMax}, Permit: permit, KillGrace: killGrace, Logger: log, Observer: observer, Leftovers: commands.NodeLeftovers(deps),
		StaleAfter: cfg.ControllerTimeout, HeartbeatInterval: cfg.ControllerTimeout / 6,
		Announce: jobs.Announcement{Addresses: strings.Join(cfg.BindAddresses, ","), Port: cfg.Port, Version: releaseVersion(), Hostname: hostname()}})
	if err != nil {
		return nil, err
	}
	if err := engine.Start(ctx); err != nil {
		return nil, err
	}
	return engine, nil
}

// nodeIdentity is this controller's own id among controllers sharing a
// database (controller_id is the installation's): kept in the data directory,
// so a restarted controller knows its previous run's jobs as its own.
func nodeIdentity(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "controller-node-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := uuid.NewString()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write controller node id: %w", err)
	}
	return id, nil
}

// purgeExpired deletes expired sessions, challenges and login counters every
// minute until ctx ends.
func purgeExpired(ctx context.Context, log *slog.Logger, purgers ...interface {
	Purge(context.Context) (int64, error)
}) {
	// Often enough that a challenge (2 minutes) does not outlive itself long.
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, p := range purgers {
				if n, err := p.Purge(ctx); err != nil {
					log.Warn("purge expired sessions and login attempts", "err", err)
				} else if n > 0 {
					log.Debug("purged expired sessions and login attempts", "count", n)
				}
			}
		}
	}
}

func newLogger(w io.Writer, level *slog.LevelVar, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// parseLevel reads a level the configuration has checked.
func parseLevel(level string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return l
}

// liveSetting applies a changed key's new value while running.
type liveSetting func(next *Config) error

// reloadOnHangup re-reads the configuration on each SIGHUP: keys that can
// change live are applied, the others are named as needing a restart. A
// configuration with an error is refused whole and the running one stays.
func reloadOnHangup(ctx context.Context, log *slog.Logger, cfg *Config, reload func() (*Config, error), live map[string]liveSetting) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		next, err := reload()
		if err != nil {
			log.Error("configuration not reloaded: the running one stays", "err", err)
			continue
		}
		var applied, restart []string
		for _, key := range cfg.changed(next) {
			apply, ok := live[key]
			if !ok {
				restart = append(restart, key)
				continue
			}
			if err := apply(next); err != nil {
				log.Error("configuration key not applied", "key", key, "err", err)
				next.raw[key] = cfg.raw[key] // tried again on the next reload
				continue
			}
			applied = append(applied, key)
		}
		for _, key := range restart {
			next.raw[key] = cfg.raw[key] // still the running value: named again until a restart
		}
		cfg = next
		log.Info("configuration reloaded", "applied", applied, "need_restart", restart)
	}
}

// serveMetrics serves /metrics over plain HTTP on a loopback address, for a
// Prometheus on the same machine, until ctx ends.
func serveMetrics(ctx context.Context, log *slog.Logger, addr string, metrics *rpc.Metrics) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving metrics over plain HTTP on loopback", "address", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics listener", "address", addr, "err", err)
	}
}

// jobEvents logs jobs' starts and failures in the controller log, and
// raises an alarm for a recurring job whose last runs all failed.
type jobEvents struct {
	alarms *hosts.Alarms
	log    *slog.Logger
	engine atomic.Pointer[jobs.Service] // set once the engine that reports to it exists
}

// failuresToAlarm is how many runs of a recurring job in a row must fail
// for an alarm.
const failuresToAlarm = 3

func (e *jobEvents) JobStarted(j *jobs.Job, _ time.Duration) {
	e.alarms.Log(context.Background(), j.ClusterID, "", hosts.LogInfo, "Job", fmt.Sprintf("Job %d (%s) started by %s.", j.ID, j.Command, j.UserName))
}

func (e *jobEvents) JobEnded(j *jobs.Job, status jobs.Status, _ time.Duration) {
	ctx := context.Background()
	if status != jobs.StatusFinished {
		e.alarms.Log(ctx, j.ClusterID, "", hosts.LogWarning, "Job", fmt.Sprintf("Job %d (%s) ended %s.", j.ID, j.Command, status))
	}
	engine := e.engine.Load()
	if j.ParentJobID == 0 || engine == nil {
		return
	}
	subject := fmt.Sprintf("recurring job %d", j.ParentJobID)
	if status == jobs.StatusFinished {
		if err := e.alarms.Clear(ctx, j.ClusterID, 0, hosts.AlarmJobFailing, subject); err != nil {
			e.log.Warn("clear job alarm", "job_id", j.ParentJobID, "err", err)
		}
		return
	}
	runs, _, err := engine.List(ctx, jobs.Filter{ParentJobID: j.ParentJobID, Limit: failuresToAlarm})
	if err != nil || len(runs) < failuresToAlarm {
		return
	}
	for _, r := range runs {
		if r.Status != jobs.StatusFailed {
			return
		}
	}
	err = e.alarms.Raise(ctx, hosts.Alarm{ClusterID: j.ClusterID, Subject: subject, Type: hosts.AlarmJobFailing, Component: "Job",
		Severity: hosts.SeverityWarning, Title: fmt.Sprintf("Recurring job %d (%s) fails repeatedly", j.ParentJobID, j.Command),
		Message:        fmt.Sprintf("Its last %d runs failed; the latest is job %d.", failuresToAlarm, j.ID),
		Recommendation: "Read the failed runs' logs (getJobLog), fix the cause or pause the recurring job."})
	if err != nil {
		e.log.Warn("raise job alarm", "job_id", j.ParentJobID, "err", err)
	}
}

// hostname is this machine's name for the controller list; "" when the
// system does not tell.
func hostname() string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	return name
}
