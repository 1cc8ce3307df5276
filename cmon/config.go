package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/sql"
	"github.com/spf13/pflag"
)

// Config is the daemon's configuration after every source has been applied.
type Config struct {
	BindAddresses []string
	Port          int
	DataDir       string
	MySQLDSN      string
	TLSCert       string
	TLSKey        string
	// TLSNames are extra names for the generated certificate.
	TLSNames []string
	// AllowedOrigins are the browser origins, besides the controller's own,
	// whose pages may call the API.
	AllowedOrigins []string
	// MaxConnections bounds open client connections, in all and per client
	// address (0: no bound; the total is bounded by the open-files limit anyway).
	MaxConnections           int
	MaxConnectionsPerAddress int
	AdminPassword            string
	MinPasswordLength        int
	LogLevel                 string
	ShutdownGrace            time.Duration
	SessionIdle              time.Duration
	SessionMax               time.Duration
	// LoginMaxFailures failed logins within LoginLockout lock a user name out
	// from that client address for LoginLockout; an address trying five
	// times as many over all names is locked out for all of them.
	LoginMaxFailures  int
	LoginLockout      time.Duration
	JobWorkers        int
	JobMaxRuntime     time.Duration
	JobRetention      time.Duration
	AuditRetention    time.Duration
	MetricsAddress    string
	ControllerTimeout time.Duration
	LogRetention      time.Duration
	WebhookURL        string
	WebhookSecret     string
	JobRetentionMax   int
	MonitorInterval   time.Duration
	// HostOfflineAfter is how many health checks of a host fail in a row
	// before it counts as offline.
	HostOfflineAfter int
	SSHKeyFile       string
	// ExecAllow and ExecDeny are regular expressions commands sent to nodes
	// must match, or must not match, in ExecOrder.
	ExecAllow, ExecDeny, ExecOrder string
	LogFormat                      string

	// raw holds each key's value as last applied, from whichever source, so
	// that a reload can tell which keys changed.
	raw map[string]string
}

// changed lists the keys whose value differs between c and next.
func (c *Config) changed(next *Config) []string {
	var keys []string
	for _, s := range settings() {
		if c.raw[s.key] != next.raw[s.key] {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// setting is one configuration key: its name in files and the environment, its
// flag, default, and how a value is applied. Every source goes through set, so
// a value is checked the same way wherever it comes from.
type setting struct {
	key, flag, def, usage string
	// secret settings are never echoed back in errors or logs.
	secret bool
	set    func(c *Config, v string) error
}

// kind is the type --help shows for a setting, read off its default and
// usage: every value is checked by set whatever its source.
func (s setting) kind() string {
	switch {
	case strings.HasPrefix(s.usage, "comma-separated"):
		return "list"
	case s.def == "":
		return "string"
	}
	if _, err := strconv.Atoi(s.def); err == nil {
		return "int"
	}
	if _, err := time.ParseDuration(s.def); err == nil {
		return "duration"
	}
	return "string"
}

// flagValue is a flag kept as the text given, so that flags go through the
// same set as every other source; its kind is what --help shows.
type flagValue struct{ value, kind string }

func (v *flagValue) String() string     { return v.value }
func (v *flagValue) Set(s string) error { v.value = s; return nil }
func (v *flagValue) Type() string       { return v.kind }

func settings() []setting {
	return []setting{
		{key: "RPC_BIND_ADDRESSES", flag: "rpc-bind-addresses", def: "127.0.0.1",
			usage: "comma-separated IP addresses to serve RPC v2 on (IPv6 too)", set: setBindAddresses},
		{key: "RPC_PORT", flag: "rpc-port", def: "9501", usage: "TLS port for RPC v2",
			set: func(c *Config, v string) error {
				p, err := strconv.Atoi(v)
				if err != nil || p < 1 || p > 65535 {
					return fmt.Errorf("%q is not a port number from 1 to 65535", v)
				}
				c.Port = p
				return nil
			}},
		{key: "CMON_DATA_DIR", flag: "data-dir", def: defaultDataDir(),
			usage: "directory for the embedded database, generated certificate and initial password",
			set: func(c *Config, v string) error {
				if v == "" {
					return errors.New("must not be empty")
				}
				c.DataDir = v
				return nil
			}},
		{key: "CMON_MYSQL_DSN", flag: "mysql-dsn", secret: true,
			usage: "MySQL/MariaDB DSN user:password@tcp(host:port)/db, or tcp(host1:port,host2:port,...) for the nodes of a Galera cluster; empty uses SQLite in the data directory (prefer the file or environment: flags show in the process list)",
			set: func(c *Config, v string) error {
				if v != "" {
					if err := sql.CheckMySQLDSN(v); err != nil {
						return valueFree{err}
					}
				}
				c.MySQLDSN = v
				return nil
			}},
		{key: "CMON_TLS_CERT", flag: "tls-cert", usage: "PEM certificate; empty generates a self-signed one in the data directory",
			set: func(c *Config, v string) error { c.TLSCert = v; return nil }},
		{key: "CMON_TLS_KEY", flag: "tls-key", usage: "PEM private key of --tls-cert",
			set: func(c *Config, v string) error { c.TLSKey = v; return nil }},
		{key: "CMON_TLS_NAMES", flag: "tls-names",
			usage: "comma-separated extra host names and addresses for the generated certificate (it always names the bind addresses, localhost and the host name)",
			set:   func(c *Config, v string) error { c.TLSNames = splitList(v); return nil }},
		{key: "CMON_ALLOWED_ORIGINS", flag: "allowed-origins",
			usage: "comma-separated browser origins (https://ui.example:8443) besides the controller's own whose pages may call the API; requests without an Origin header (curl, CLIs) are unaffected",
			set: func(c *Config, v string) error {
				c.AllowedOrigins = splitList(v)
				for _, o := range c.AllowedOrigins {
					if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
						return fmt.Errorf("%q is not an origin such as https://ui.example:8443", o)
					}
				}
				return nil
			}},
		{key: "CMON_MAX_CONNECTIONS", flag: "max-connections", def: "2000",
			usage: "client connections held open at most, in all (0, or more than the open-files limit leaves after a reserve: what it leaves)",
			set:   intSetter(0, 1_000_000, func(c *Config) *int { return &c.MaxConnections })},
		{key: "CMON_MAX_CONNECTIONS_PER_ADDRESS", flag: "max-connections-per-address", def: "200",
			usage: "client connections held open at most from one client address (0: no bound)",
			set:   intSetter(0, 1_000_000, func(c *Config) *int { return &c.MaxConnectionsPerAddress })},
		{key: "CMON_ADMIN_PASSWORD", flag: "admin-password", secret: true,
			usage: "password of the admin user created on first start; empty generates one (prefer the file or environment: flags show in the process list)",
			set:   func(c *Config, v string) error { c.AdminPassword = v; return nil }},
		{key: "CMON_MIN_PASSWORD_LENGTH", flag: "min-password-length", def: "8",
			usage: "fewest characters a new password may have; passwords already set keep working",
			set:   intSetter(1, rbac.MaxPasswordLen, func(c *Config) *int { return &c.MinPasswordLength })},
		{key: "CMON_LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error",
			set: func(c *Config, v string) error {
				switch strings.ToLower(v) {
				case "debug", "info", "warn", "error":
					c.LogLevel = strings.ToLower(v)
					return nil
				}
				return fmt.Errorf("%q is not one of debug, info, warn, error", v)
			}},
		{key: "CMON_LOG_FORMAT", flag: "log-format", def: "text", usage: "text (logfmt) or json",
			set: func(c *Config, v string) error {
				switch strings.ToLower(v) {
				case "text", "json":
					c.LogFormat = strings.ToLower(v)
					return nil
				}
				return errors.New("must be text or json")
			}},
		{key: "CMON_SHUTDOWN_GRACE", flag: "shutdown-grace", def: "10s",
			usage: "how long a stop waits for in-flight requests", set: durationSetter(func(c *Config) *time.Duration { return &c.ShutdownGrace })},
		{key: "CMON_SESSION_IDLE_TIMEOUT", flag: "session-idle-timeout", def: "1h",
			usage: "a session unused this long ends", set: durationSetter(func(c *Config) *time.Duration { return &c.SessionIdle })},
		{key: "CMON_SESSION_MAX_LIFETIME", flag: "session-max-lifetime", def: "24h",
			usage: "a session ends this long after login however used", set: durationSetter(func(c *Config) *time.Duration { return &c.SessionMax })},
		{key: "CMON_LOGIN_MAX_FAILURES", flag: "login-max-failures", def: "10",
			usage: "failed logins of a user name from one client address before a lockout (five times as many per address over all names)",
			set:   intSetter(2, 1000, func(c *Config) *int { return &c.LoginMaxFailures })},
		{key: "CMON_JOB_WORKERS", flag: "job-workers", def: "4", usage: "jobs this controller runs at once",
			set: intSetter(0, 256, func(c *Config) *int { return &c.JobWorkers })},
		{key: "CMON_JOB_MAX_RUNTIME", flag: "job-max-runtime", def: "24h", usage: "no job runs longer, whatever its timeout_sec",
			set: durationSetter(func(c *Config) *time.Duration { return &c.JobMaxRuntime })},
		{key: "CMON_JOB_RETENTION", flag: "job-retention", def: "720h", usage: "ended jobs older than this are deleted with their logs",
			set: durationSetter(func(c *Config) *time.Duration { return &c.JobRetention })},
		{key: "CMON_METRICS_ADDRESS", flag: "metrics-address", usage: "loopback host:port to serve /metrics on over plain HTTP (empty: only on the TLS port)",
			set: func(c *Config, v string) error {
				if v == "" {
					c.MetricsAddress = ""
					return nil
				}
				host, port, err := net.SplitHostPort(v)
				if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || port == "" {
					return fmt.Errorf("must be a loopback address with a port, such as 127.0.0.1:9502")
				}
				c.MetricsAddress = v
				return nil
			}},
		{key: "CMON_CONTROLLER_TIMEOUT", flag: "controller-timeout", def: "30s",
			usage: "a controller silent this long is dead: its jobs fail, it leaves getControllers and another takes over the monitor",
			set:   durationSetter(func(c *Config) *time.Duration { return &c.ControllerTimeout })},
		{key: "CMON_LOG_RETENTION", flag: "log-retention", def: "720h", usage: "the controller log, cleared alarms and ended maintenance periods older than this are deleted",
			set: durationSetter(func(c *Config) *time.Duration { return &c.LogRetention })},
		{key: "CMON_WEBHOOK_URL", flag: "webhook-url", secret: true, usage: "http(s) URL that receives alarms raised and cleared as signed JSON POSTs (empty: none)",
			set: func(c *Config, v string) error {
				if v == "" {
					c.WebhookURL = ""
					return nil
				}
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return errors.New("must be an http or https URL")
				}
				c.WebhookURL = v
				return nil
			}},
		{key: "CMON_WEBHOOK_SECRET", flag: "webhook-secret", secret: true, usage: "key of the webhook's HMAC-SHA256 signature (X-Cmon-Signature)",
			set: func(c *Config, v string) error { c.WebhookSecret = v; return nil }},
		{key: "CMON_AUDIT_RETENTION", flag: "audit-retention", def: "8760h", usage: "audit entries older than this are deleted",
			set: durationSetter(func(c *Config) *time.Duration { return &c.AuditRetention })},
		{key: "CMON_JOB_RETENTION_COUNT", flag: "job-retention-count", def: "0", usage: "keep at most this many ended jobs (0: no limit)",
			set: intSetter(0, 100_000_000, func(c *Config) *int { return &c.JobRetentionMax })},
		{key: "CMON_MONITOR_INTERVAL", flag: "monitor-interval", def: "30s", usage: "how often every host of every cluster is checked",
			set: durationSetter(func(c *Config) *time.Duration { return &c.MonitorInterval })},
		{key: "CMON_HOST_OFFLINE_AFTER", flag: "host-offline-after", def: strconv.Itoa(hosts.DefaultOfflineAfter),
			usage: "health checks of a host that fail in a row, each tried twice, before it counts as offline",
			set:   intSetter(1, 100, func(c *Config) *int { return &c.HostOfflineAfter })},
		{key: "CMON_SSH_KEY_FILE", flag: "ssh-key-file", usage: "private key for nodes whose cluster names none (else $SSH_AUTH_SOCK)",
			set: func(c *Config, v string) error { c.SSHKeyFile = v; return nil }},
		{key: "CMON_EXEC_ALLOW", flag: "exec-allow", usage: "regular expression every command sent to nodes must match (empty: all)",
			set: func(c *Config, v string) error { c.ExecAllow = v; return nil }},
		{key: "CMON_EXEC_DENY", flag: "exec-deny", usage: "regular expression no command sent to nodes may match (empty: none)",
			set: func(c *Config, v string) error { c.ExecDeny = v; return nil }},
		{key: "CMON_EXEC_ORDER", flag: "exec-order", def: "allow,deny", usage: "allow,deny or deny,allow: which filter decides when both match",
			set: func(c *Config, v string) error {
				if v != "allow,deny" && v != "deny,allow" {
					return fmt.Errorf("%q is not allow,deny or deny,allow", v)
				}
				c.ExecOrder = v
				return nil
			}},
		{key: "CMON_LOGIN_LOCKOUT", flag: "login-lockout", def: "15m",
			usage: "how long a locked-out user name or address is refused", set: durationSetter(func(c *Config) *time.Duration { return &c.LoginLockout })},
	}
}

func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration such as 30s or 5m", v)
		}
		*field(c) = d
		return nil
	}
}

func intSetter(lo, hi int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%q is not a number from %d to %d", v, lo, hi)
		}
		*field(c) = n
		return nil
	}
}

// splitList reads a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func setBindAddresses(c *Config, v string) error {
	var addrs []string
	for a := range strings.SplitSeq(v, ",") {
		a = strings.Trim(strings.TrimSpace(a), "[]")
		if a == "" {
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("%q is not an IP address", a)
		}
		addrs = append(addrs, ip.String())
	}
	if len(addrs) == 0 {
		return errors.New("no address given")
	}
	c.BindAddresses = addrs
	return nil
}

// defaultDataDir is /var/lib/cmon for root, else the user's state directory;
// "" when there is none (no HOME): loadConfig then asks for --data-dir
// rather than guessing a directory relative to wherever cmon was started.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/cmon"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "cmon")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "cmon")
	}
	return ""
}

// valueFree is a secret setting's error that quotes nothing of the value,
// so configError may show it.
type valueFree struct{ error }

// configError names the key and the source, and never the value of a secret.
func configError(s setting, source string, err error) error {
	var shown valueFree
	if s.secret && !errors.As(err, &shown) {
		return fmt.Errorf("config: %s (%s): invalid value", s.key, source)
	}
	return fmt.Errorf("config: %s (%s): %w", s.key, source, err)
}

// loadConfig applies, lowest to highest precedence: defaults, the --config
// file, the environment, and flags. lookupEnv is os.LookupEnv's shape: a
// variable set to "" is a value, which clears what the file set.
func loadConfig(args []string, lookupEnv func(string) (string, bool)) (*Config, *pflag.FlagSet, error) {
	fs := pflag.NewFlagSet("cmon", pflag.ContinueOnError)
	fs.SortFlags = false
	all := settings()
	fs.Usage = func() {} // run prints --help to stdout: it was asked for
	flagValues := map[string]*string{}
	for _, s := range all {
		v := &flagValue{value: s.def, kind: s.kind()}
		fs.Var(v, s.flag, s.usage+" ["+s.key+"]")
		fs.Lookup(s.flag).DefValue = s.def
		flagValues[s.key] = &v.value
	}
	configFile := fs.String("config", "", "etc/default/cmon-style file of KEY=\"value\" lines")
	fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, fs, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("flags: unexpected argument %q", fs.Arg(0))
	}

	c := &Config{raw: map[string]string{}}
	apply := func(s setting, v string) error {
		if err := s.set(c, v); err != nil {
			return err
		}
		c.raw[s.key] = v
		return nil
	}
	for _, s := range all {
		if err := apply(s, s.def); err != nil && s.def != "" {
			return nil, fs, configError(s, "default", err)
		}
	}
	if *configFile != "" {
		values, err := readConfigFile(*configFile)
		if err != nil {
			return nil, fs, err
		}
		for _, s := range all {
			if v, ok := values[s.key]; ok {
				if err := apply(s, v); err != nil {
					return nil, fs, configError(s, *configFile, err)
				}
			}
		}
	}
	for _, s := range all {
		if v, ok := lookupEnv(s.key); ok {
			if err := apply(s, v); err != nil {
				return nil, fs, configError(s, "environment", err)
			}
		}
	}
	for _, s := range all {
		if fs.Changed(s.flag) {
			if err := apply(s, *flagValues[s.key]); err != nil {
				return nil, fs, configError(s, "--"+s.flag, err)
			}
		}
	}
	if err := c.validate(); err != nil {
		return nil, fs, err
	}
	return c, fs, nil
}

// validate checks what no single key can: keys that only hold together, and
// the files and expressions they name. Start-up binds its ports only after
// this, so a bad setting is reported as such even when the port is taken.
func (c *Config) validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("config: CMON_TLS_CERT and CMON_TLS_KEY must be set together")
	}
	if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("config: CMON_TLS_CERT/CMON_TLS_KEY: %w", err)
		}
	}
	if c.AdminPassword != "" {
		// Its error names the rule broken, never the password.
		if err := (&rbac.Hasher{MinLength: c.MinPasswordLength}).CheckNew(c.AdminPassword); err != nil {
			return fmt.Errorf("config: CMON_ADMIN_PASSWORD: %w", err)
		}
	}
	_, err := execFilter(c)
	return err
}

// readConfigFile reads KEY="value" lines; '#' starts a comment line. Unknown
// keys are errors, so a typo never silently falls back to a default.
func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: cannot read %s: %w", path, err)
	}
	defer f.Close()
	return parseConfig(f, path)
}

func parseConfig(r io.Reader, name string) (map[string]string, error) {
	known := map[string]bool{}
	for _, s := range settings() {
		known[s.key] = true
	}
	values := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("config: %s line %d: expected KEY=\"value\"", name, n)
		}
		if !known[key] {
			return nil, fmt.Errorf("config: %s line %d: unknown key %s", name, n, key)
		}
		value, err := unquote(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("config: %s line %d: %s: %w", name, n, key, err)
		}
		values[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config: cannot read %s: %w", name, err)
	}
	return values, nil
}

func unquote(v string) (string, error) {
	if len(v) >= 1 && (v[0] == '"' || v[0] == '\'') {
		if len(v) < 2 || v[len(v)-1] != v[0] {
			return "", errors.New("unterminated quote")
		}
		return v[1 : len(v)-1], nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}
