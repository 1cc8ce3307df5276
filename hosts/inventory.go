package hosts

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/rbac/names"
	"github.com/cmon-dev/cmon/sql"
)

// Cluster types cmon knows; requests name them in any case.
var ClusterTypes = []string{"GALERA", "REPLICATION", "POSTGRESQL_SINGLE", "MONGODB", "MYSQL_SINGLE", "REDIS", ClusterGeneric}

// ClusterGeneric is the type of a cluster of plain hosts, without a service
// of a known kind.
const ClusterGeneric = "GENERIC"

// Cluster states, derived from its hosts' statuses.
const (
	StateStarted  = "STARTED"
	StateDegraded = "DEGRADED"
	StateFailure  = "FAILURE"
	StateUnknown  = "UNKNOWN"
)

// Host statuses as the protocol names them; OffLine is spelt as the
// reference controller spells it, which its clients compare against.
const (
	HostOnline  = "CmonHostOnline"
	HostOffline = "CmonHostOffLine"
	HostUnknown = "CmonHostUnknown"
)

// Cluster is a managed cluster and how cmon reaches its nodes.
type Cluster struct {
	ID         int64
	Name       string
	Type       string
	Vendor     string
	Version    string
	Tags       []string
	SSHUser    string
	SSHKeyFile string
	SSHPort    int
	Sudo       bool
	// ServiceName and ServiceCommand start, stop and restart a node's service:
	// the command template's {action} and {service} are filled in.
	ServiceName    string
	ServiceCommand string
	// RebootCommand reboots a node (run as root, through sudo for other
	// users); "" is DefaultRebootCommand.
	RebootCommand string
	State         string
	StatusText    string
	Created       time.Time
	Hosts         []Host
	// Maintenance are the cluster's periods not ended when it was loaded.
	Maintenance []Maintenance
}

// InMaintenance tells whether a host of the cluster (or the cluster itself,
// hostname "") is in a maintenance period at t.
func (c *Cluster) InMaintenance(hostname string, t time.Time) bool {
	for _, m := range c.Maintenance {
		if (m.Hostname == "" || strings.EqualFold(m.Hostname, hostname)) && m.Active(t) {
			return true
		}
	}
	return false
}

// Host is one node of a cluster.
type Host struct {
	ID        int64
	ClusterID int64
	Hostname  string
	IP        string
	Port      int
	Role      string
	NodeType  string
	Tags      []string
	Status    string
	LastSeen  time.Time
	Message   string
	OS        string
	Kernel    string
	CPUs      int
	MemoryMB  int64
	Created   time.Time
}

// ErrClusterNotFound is returned for a cluster id or name that does not exist.
var ErrClusterNotFound = errors.New("cluster was not found")

// ErrClusterExists is returned when a cluster name is taken.
var ErrClusterExists = errors.New("a cluster with this name exists")

// DefaultServiceCommand is the service template when a cluster names none.
const DefaultServiceCommand = "systemctl {action} {service}"

// DefaultRebootCommand is the reboot command when a cluster names none.
const DefaultRebootCommand = "shutdown -r now"

var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// ValidHostname accepts an IP address or a DNS host name.
func ValidHostname(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	return len(h) <= 253 && hostnamePattern.MatchString(h)
}

// Validate checks a cluster before it is stored, with a message for each flaw.
func (c *Cluster) Validate() error {
	c.Type = strings.ToUpper(c.Type)
	if err := names.Check(names.Cluster, c.Name); err != nil {
		return fmt.Errorf("cluster_name: %w", err)
	}
	switch {
	case !slices.Contains(ClusterTypes, c.Type):
		return fmt.Errorf("cluster_type %q is not one of %s", c.Type, strings.Join(ClusterTypes, ", "))
	case c.SSHUser == "" || strings.ContainsAny(c.SSHUser, " \t\n'\"\\$`;"):
		return errors.New("ssh_user is required and must be a plain user name")
	case c.SSHPort < 1 || c.SSHPort > 65535:
		return fmt.Errorf("ssh_port %d is out of range 1-65535", c.SSHPort)
	case len(c.Hosts) == 0:
		return errors.New("nodes must list at least one node")
	}
	seen := map[string]bool{}
	for _, h := range c.Hosts {
		if !ValidHostname(h.Hostname) {
			return fmt.Errorf("node hostname %q is not a valid host name or IP address", h.Hostname)
		}
		if h.Port < 0 || h.Port > 65535 {
			return fmt.Errorf("node %s: port %d is out of range", h.Hostname, h.Port)
		}
		if seen[h.Hostname] {
			return fmt.Errorf("node %s is listed twice", h.Hostname)
		}
		seen[h.Hostname] = true
	}
	return nil
}

// InventoryChanges names the change version of clusters and hosts.
const InventoryChanges = "inventory"

// Inventory stores clusters and their hosts, and serves them from memory
// while the inventory's change version stands.
type Inventory struct {
	db      *sql.DB
	now     func() time.Time
	current *sql.Cached[*Snapshot]
}

// NewInventory makes an Inventory over db.
func NewInventory(db *sql.DB) *Inventory {
	inv := &Inventory{db: db, now: time.Now}
	inv.current = sql.NewCached(db, InventoryChanges, inv.load)
	return inv
}

// Snapshot is the inventory at one change version. It is shared: callers
// read it and never change it.
type Snapshot struct {
	// Clusters are every cluster with its hosts, by id.
	Clusters []*Cluster
	byID     map[int64]*Cluster
	byName   map[string]*Cluster
}

// Snapshot returns the inventory as of ctx's change versions.
func (inv *Inventory) Snapshot(ctx context.Context) (*Snapshot, error) {
	return inv.current.Get(ctx)
}

func (inv *Inventory) load(ctx context.Context) (*Snapshot, error) {
	all, err := inv.list(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Clusters: all, byID: make(map[int64]*Cluster, len(all)), byName: make(map[string]*Cluster, len(all))}
	for _, c := range all {
		s.byID[c.ID], s.byName[c.Name] = c, c
	}
	// Periods that have not ended: whether one is active is decided when
	// read, and the monitor's rounds reload the snapshot often enough for
	// a period's start and end to show within a round.
	periods, err := listMaintenance(ctx, inv.db, "deadline > ?", sql.Millis(inv.now()))
	if err != nil {
		return nil, err
	}
	for _, m := range periods {
		if c := s.byID[m.ClusterID]; c != nil {
			c.Maintenance = append(c.Maintenance, m)
		}
	}
	return s, nil
}

// changed bumps the inventory's version through ex: the change's
// transaction, or the database once the change committed.
func (inv *Inventory) changed(ctx context.Context, ex sql.Execer) error {
	return inv.db.Bump(ctx, ex, InventoryChanges)
}

func tagsJSON(tags []string) string {
	if tags == nil {
		tags = []string{}
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

func parseTags(s string) []string {
	var tags []string
	_ = json.Unmarshal([]byte(s), &tags)
	return tags
}

// Create stores a validated cluster with its hosts in one transaction.
func (inv *Inventory) Create(ctx context.Context, c *Cluster) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.ServiceCommand == "" {
		c.ServiceCommand = DefaultServiceCommand
	}
	now := inv.now().UTC()
	c.Created = now
	return inv.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := names.Unlike(ctx, tx, names.Cluster, c.Name, "SELECT cluster_name FROM clusters"); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO clusters (cluster_name, cluster_type, vendor, version, tags,
			ssh_user, ssh_key_file, ssh_port, sudo, service_name, service_command, reboot_command,
			state, status_text, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Name, c.Type, c.Vendor, c.Version, tagsJSON(c.Tags), c.SSHUser,
			c.SSHKeyFile, c.SSHPort, c.Sudo, c.ServiceName, c.ServiceCommand, c.RebootCommand, c.State, c.StatusText, sql.Millis(now))
		if sql.IsUniqueViolation(err) {
			return ErrClusterExists
		}
		if err != nil {
			return fmt.Errorf("create cluster: %w", err)
		}
		if c.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create cluster: %w", err)
		}
		for i := range c.Hosts {
			if err := insertHost(ctx, tx, c.ID, &c.Hosts[i], now); err != nil {
				return err
			}
		}
		return inv.changed(ctx, tx)
	})
}

func insertHost(ctx context.Context, tx *stdsql.Tx, clusterID int64, h *Host, now time.Time) error {
	h.ClusterID, h.Created = clusterID, now
	if h.Status == "" {
		h.Status = HostUnknown
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO cluster_hosts (cluster_id, hostname, ip, port, role, nodetype, tags,
		status, last_seen, message, os, kernel, cpus, memory_mb, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		clusterID, h.Hostname, h.IP, h.Port, h.Role, h.NodeType, tagsJSON(h.Tags), h.Status, sql.Millis(h.LastSeen),
		h.Message, h.OS, h.Kernel, h.CPUs, h.MemoryMB, sql.Millis(now))
	if sql.IsUniqueViolation(err) {
		return fmt.Errorf("host %s is already in the cluster", h.Hostname)
	}
	if err != nil {
		return fmt.Errorf("add host %s: %w", h.Hostname, err)
	}
	h.ID, err = res.LastInsertId()
	return err
}

// AddHost adds one node to an existing cluster.
func (inv *Inventory) AddHost(ctx context.Context, clusterID int64, h *Host) error {
	if !ValidHostname(h.Hostname) {
		return fmt.Errorf("node hostname %q is not a valid host name or IP address", h.Hostname)
	}
	return inv.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := insertHost(ctx, tx, clusterID, h, inv.now().UTC()); err != nil {
			return err
		}
		return inv.changed(ctx, tx)
	})
}

// RemoveHost removes one node from a cluster.
func (inv *Inventory) RemoveHost(ctx context.Context, clusterID int64, hostname string) error {
	res, err := inv.db.ExecContext(ctx, "DELETE FROM cluster_hosts WHERE cluster_id = ? AND hostname = ?", clusterID, hostname)
	if err != nil {
		return fmt.Errorf("remove host %s: %w", hostname, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("host %s is not in cluster %d", hostname, clusterID)
	}
	return inv.changed(ctx, inv.db)
}

// Delete removes a cluster and its hosts.
func (inv *Inventory) Delete(ctx context.Context, id int64) error {
	return inv.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM cluster_hosts WHERE cluster_id = ?", id); err != nil {
			return fmt.Errorf("delete hosts of cluster %d: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM clusters WHERE cluster_id = ?", id)
		if err != nil {
			return fmt.Errorf("delete cluster %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrClusterNotFound
		}
		return inv.changed(ctx, tx)
	})
}

const clusterColumns = `cluster_id, cluster_name, cluster_type, vendor, version, tags, ssh_user, ssh_key_file, ssh_port, sudo, service_name, service_command, reboot_command, state, status_text, created`

// Get returns a cluster with its hosts by id, shared and read-only.
func (inv *Inventory) Get(ctx context.Context, id int64) (*Cluster, error) {
	s, err := inv.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return found(s.byID[id])
}

// GetByName returns a cluster with its hosts by name, shared and read-only.
func (inv *Inventory) GetByName(ctx context.Context, name string) (*Cluster, error) {
	s, err := inv.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return found(s.byName[name])
}

// Unlike refuses a new cluster name that is taken (ErrClusterExists) or
// looks like a taken one (*names.LookalikeError), as the inventory in memory
// has them: a check that spares work before Create, which settles races.
func (inv *Inventory) Unlike(ctx context.Context, name string) error {
	s, err := inv.Snapshot(ctx)
	if err != nil {
		return err
	}
	if s.byName[name] != nil {
		return ErrClusterExists
	}
	taken := make([]string, len(s.Clusters))
	for i, c := range s.Clusters {
		taken[i] = c.Name
	}
	return names.Lookalike(names.Cluster, name, taken)
}

func found(c *Cluster) (*Cluster, error) {
	if c == nil {
		return nil, ErrClusterNotFound
	}
	return c, nil
}

// List returns every cluster with its hosts, by id, shared and read-only.
func (inv *Inventory) List(ctx context.Context) ([]*Cluster, error) {
	s, err := inv.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s.Clusters, nil
}

// list loads every cluster with its hosts from the database, in two queries.
func (inv *Inventory) list(ctx context.Context) ([]*Cluster, error) {
	rows, err := inv.db.QueryContext(ctx, "SELECT "+clusterColumns+" FROM clusters ORDER BY cluster_id")
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	var out []*Cluster
	byID := map[int64]*Cluster{}
	for rows.Next() {
		var c Cluster
		var tags string
		var created int64
		if err := rows.Scan(&c.ID, &c.Name, &c.Type, &c.Vendor, &c.Version, &tags,
			&c.SSHUser, &c.SSHKeyFile, &c.SSHPort, &c.Sudo, &c.ServiceName, &c.ServiceCommand, &c.RebootCommand, &c.State, &c.StatusText, &created); err != nil {
			return nil, fmt.Errorf("scan cluster: %w", err)
		}
		c.Tags, c.Created = parseTags(tags), sql.Time(created)
		out = append(out, &c)
		byID[c.ID] = &c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	hrows, err := inv.db.QueryContext(ctx, `SELECT host_id, cluster_id, hostname, ip, port, role, nodetype, tags, status,
		last_seen, message, os, kernel, cpus, memory_mb, created FROM cluster_hosts ORDER BY host_id`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer hrows.Close()
	for hrows.Next() {
		var h Host
		var tags string
		var lastSeen, created int64
		if err := hrows.Scan(&h.ID, &h.ClusterID, &h.Hostname, &h.IP, &h.Port, &h.Role, &h.NodeType, &tags, &h.Status,
			&lastSeen, &h.Message, &h.OS, &h.Kernel, &h.CPUs, &h.MemoryMB, &created); err != nil {
			return nil, fmt.Errorf("scan host: %w", err)
		}
		h.Tags, h.LastSeen, h.Created = parseTags(tags), sql.Time(lastSeen), sql.Time(created)
		if c := byID[h.ClusterID]; c != nil {
			c.Hosts = append(c.Hosts, h)
		}
	}
	return out, hrows.Err()
}

// HostCheck is what one health check found out about a host.
type HostCheck struct {
	HostID  int64
	Online  bool
	Message string
	At      time.Time
}

// RecordChecks stores host check results and the cluster state they imply,
// and returns the cluster's state before and after.
func (inv *Inventory) RecordChecks(ctx context.Context, clusterID int64, checks []HostCheck) (before, after string, err error) {
	err = inv.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT state FROM clusters WHERE cluster_id = ?", clusterID).Scan(&before); err != nil {
			if errors.Is(err, stdsql.ErrNoRows) {
				return ErrClusterNotFound
			}
			return fmt.Errorf("read cluster state: %w", err)
		}
		for _, c := range checks {
			status, q := HostOffline, "UPDATE cluster_hosts SET status = ?, message = ? WHERE host_id = ?"
			args := []any{status, c.Message, c.HostID}
			if c.Online {
				q = "UPDATE cluster_hosts SET status = ?, message = ?, last_seen = ? WHERE host_id = ?"
				args = []any{HostOnline, c.Message, sql.Millis(c.At), c.HostID}
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("record host check: %w", err)
			}
		}
		var online, total int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0), COUNT(*)
			FROM cluster_hosts WHERE cluster_id = ?`, HostOnline, clusterID).Scan(&online, &total); err != nil {
			return fmt.Errorf("count online hosts: %w", err)
		}
		var text string
		after, text = DeriveState(online, total)
		if _, err := tx.ExecContext(ctx, "UPDATE clusters SET state = ?, status_text = ? WHERE cluster_id = ?", after, text, clusterID); err != nil {
			return fmt.Errorf("update cluster state: %w", err)
		}
		return inv.changed(ctx, tx)
	})
	return before, after, err
}

// DeriveState is a cluster's state from how many of its hosts are online.
func DeriveState(online, total int) (state, text string) {
	switch {
	case total == 0:
		return StateUnknown, "The cluster has no hosts."
	case online == total:
		return StateStarted, fmt.Sprintf("All %d nodes are online.", total)
	case online == 0:
		return StateFailure, fmt.Sprintf("All %d nodes are offline.", total)
	default:
		return StateDegraded, fmt.Sprintf("%d of %d nodes are offline.", total-online, total)
	}
}

// TargetOf is how cmon reaches host h of cluster c: with the cluster's SSH
// user, key and port, under the cluster's name for its command filter.
func TargetOf(c *Cluster, h Host) remote.Target {
	return remote.Target{Host: h.Hostname, Port: c.SSHPort, User: c.SSHUser, KeyFile: c.SSHKeyFile, Cluster: c.Name}
}
