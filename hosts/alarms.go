package hosts

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// Alarm severities as the protocol names them.
const (
	SeverityWarning  = "ALARM_WARNING"
	SeverityCritical = "ALARM_CRITICAL"
)

// Alarm types cmon raises from its own observations.
const (
	AlarmHostUnreachable = "HostUnreachable"
	AlarmSSHAuthFailed   = "SshAuthenticationFailed"
	AlarmHostKeyChanged  = "HostKeyChanged"
	AlarmSSHKeyUnusable  = "SshKeyUnusable"
	AlarmClusterDegraded = "ClusterDegraded"
	AlarmClusterFailure  = "ClusterFailure"
	AlarmJobFailing      = "JobFailingRepeatedly"
	AlarmDiskFull        = "DiskNearlyFull"
)

// Alarm is one raised condition: counted while it lasts, cleared when it
// ends.
type Alarm struct {
	ID        int64
	ClusterID int64
	HostID    int64
	Hostname  string
	// Subject tells apart alarms of one type on one host or cluster, such
	// as the recurring job that keeps failing ("" for host and cluster alarms).
	Subject        string
	Type           string
	Component      string
	Severity       string
	Title          string
	Message        string
	Recommendation string
	Counter        int
	Created        time.Time // first seen
	Reported       time.Time // last seen
	Cleared        time.Time // zero while it lasts
	Ignored        bool
	InMaintenance  bool // raised while its host or cluster was in maintenance
}

// ErrAlarmNotFound is an alarm id that does not exist.
var ErrAlarmNotFound = errors.New("alarm not found")

// Alarms keeps alarms, maintenance periods and the controller's event log.
type Alarms struct {
	db  *sql.DB
	now func() time.Time
	// retention is how long log entries, cleared alarms and ended
	// maintenance periods are kept.
	retention time.Duration
	// notify, when set, is told of each alarm raised or cleared outside
	// maintenance.
	notify func(event string, a Alarm)
}

// NewAlarms makes the store keeping history for retention; notify (may be
// nil) hears raised and cleared alarms.
func NewAlarms(db *sql.DB, retention time.Duration, notify func(event string, a Alarm)) *Alarms {
	return &Alarms{db: db, now: time.Now, retention: retention, notify: notify}
}

// Purge deletes log entries, cleared alarms and maintenance periods that
// ended longer ago than the retention time.
func (s *Alarms) Purge(ctx context.Context) (int64, error) {
	cutoff := sql.Millis(s.now().Add(-s.retention))
	var total int64
	for _, q := range []string{"DELETE FROM log_entries WHERE created < ?", "DELETE FROM alarms WHERE cleared > 0 AND cleared < ?",
		"DELETE FROM maintenance WHERE deadline < ?"} {
		res, err := s.db.ExecContext(ctx, q, cutoff)
		if err != nil {
			return total, fmt.Errorf("purge alarm history: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

const alarmColumns = `alarm_id, cluster_id, host_id, hostname, subject, type_name, component, severity, title, message, recommendation,
	counter, created, reported, cleared, ignored, in_maintenance`

func scanAlarm(row interface{ Scan(...any) error }) (Alarm, error) {
	var a Alarm
	var created, reported, cleared int64
	err := row.Scan(&a.ID, &a.ClusterID, &a.HostID, &a.Hostname, &a.Subject, &a.Type, &a.Component, &a.Severity, &a.Title, &a.Message,
		&a.Recommendation, &a.Counter, &created, &reported, &cleared, &a.Ignored, &a.InMaintenance)
	a.Created, a.Reported, a.Cleared = sql.Time(created), sql.Time(reported), sql.Time(cleared)
	return a, err
}

// Raise records that a's condition holds now: a new alarm the first time,
// a count on the open one after that.
func (s *Alarms) Raise(ctx context.Context, a Alarm) error {
	now := s.now()
	inMaintenance, err := s.InMaintenance(ctx, a.ClusterID, a.Hostname, now)
	if err != nil {
		return err
	}
	var raised bool
	err = s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT alarm_id FROM alarms WHERE cluster_id = ? AND host_id = ? AND type_name = ? AND subject = ?
			AND cleared = 0`+s.db.ForUpdate(), a.ClusterID, a.HostID, a.Type, a.Subject).Scan(&id)
		switch {
		case err == nil:
			_, err = tx.ExecContext(ctx, "UPDATE alarms SET counter = counter + 1, reported = ?, message = ? WHERE alarm_id = ?",
				sql.Millis(now), sql.Clip(a.Message, 4096), id)
			return err
		case !errors.Is(err, stdsql.ErrNoRows):
			return err
		}
		raised = true
		_, err = tx.ExecContext(ctx, `INSERT INTO alarms (cluster_id, host_id, hostname, subject, type_name, component, severity, title,
			message, recommendation, counter, created, reported, in_maintenance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
			a.ClusterID, a.HostID, a.Hostname, sql.Clip(a.Subject, 255), a.Type, a.Component, a.Severity, sql.Clip(a.Title, 255), sql.Clip(a.Message, 4096),
			sql.Clip(a.Recommendation, 4096), sql.Millis(now), sql.Millis(now), inMaintenance)
		return err
	})
	if err != nil {
		return fmt.Errorf("raise alarm %s: %w", a.Type, err)
	}
	if raised {
		a.Created, a.Reported, a.Counter, a.InMaintenance = now, now, 1, inMaintenance
		s.event(ctx, a, "raised")
	}
	return nil
}

// Open lists the types of a cluster's open alarms by host id (0: the
// cluster's own), so that a round clears only what is open.
func (s *Alarms) Open(ctx context.Context, clusterID int64) (map[int64]map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT host_id, type_name FROM alarms WHERE cluster_id = ? AND cleared = 0", clusterID)
	if err != nil {
		return nil, fmt.Errorf("list open alarms: %w", err)
	}
	defer rows.Close()
	out := map[int64]map[string]bool{}
	for rows.Next() {
		var host int64
		var typ string
		if err := rows.Scan(&host, &typ); err != nil {
			return nil, fmt.Errorf("list open alarms: %w", err)
		}
		if out[host] == nil {
			out[host] = map[string]bool{}
		}
		out[host][typ] = true
	}
	return out, rows.Err()
}

// Clear ends the open alarm of a type and subject on a cluster's host (host
// 0: the cluster itself), if there is one.
func (s *Alarms) Clear(ctx context.Context, clusterID, hostID int64, typ, subject string) error {
	var a Alarm
	found := false
	err := s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		var err error
		a, err = scanAlarm(tx.QueryRowContext(ctx, "SELECT "+alarmColumns+
			" FROM alarms WHERE cluster_id = ? AND host_id = ? AND type_name = ? AND subject = ? AND cleared = 0"+s.db.ForUpdate(),
			clusterID, hostID, typ, subject))
		if errors.Is(err, stdsql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		a.Cleared = s.now()
		_, err = tx.ExecContext(ctx, "UPDATE alarms SET cleared = ? WHERE alarm_id = ?", sql.Millis(a.Cleared), a.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("clear alarm %s: %w", typ, err)
	}
	if found {
		s.event(ctx, a, "cleared")
	}
	return nil
}

// event logs an alarm's raise or clear and tells the notifier, unless it
// belongs to a maintenance period.
func (s *Alarms) event(ctx context.Context, a Alarm, what string) {
	severity := LogWarning
	if what == "cleared" {
		severity = LogInfo
	} else if a.Severity == SeverityCritical {
		severity = LogCritical
	}
	text := fmt.Sprintf("Alarm %s: %s", what, a.Title)
	if a.InMaintenance {
		text += " (during maintenance)"
	}
	s.Log(ctx, a.ClusterID, a.Hostname, severity, "Alarm", text)
	if s.notify != nil && !a.InMaintenance {
		s.notify("alarm."+what, a)
	}
}

// AlarmFilter selects alarms: those of ClusterIDs (none: all), open ones
// unless WithCleared, not ignored or raised in maintenance unless asked.
type AlarmFilter struct {
	ClusterIDs        []int64
	WithCleared       bool
	WithIgnored       bool
	WithInMaintenance bool
}

// List returns the alarms f selects, newest first.
func (s *Alarms) List(ctx context.Context, f AlarmFilter) ([]Alarm, error) {
	var w sql.Where
	w.In("cluster_id", f.ClusterIDs)
	for _, c := range []struct {
		with bool
		cond string
	}{{f.WithCleared, "cleared = 0"}, {f.WithIgnored, "ignored = 0"}, {f.WithInMaintenance, "in_maintenance = 0"}} {
		if !c.with {
			w.Add(c.cond)
		}
	}
	where, args := w.Clause()
	rows, err := s.db.QueryContext(ctx, "SELECT "+alarmColumns+" FROM alarms"+where+" ORDER BY alarm_id DESC LIMIT 1000", args...)
	if err != nil {
		return nil, fmt.Errorf("list alarms: %w", err)
	}
	defer rows.Close()
	out := []Alarm{}
	for rows.Next() {
		a, err := scanAlarm(rows)
		if err != nil {
			return nil, fmt.Errorf("list alarms: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Get returns one alarm.
func (s *Alarms) Get(ctx context.Context, id int64) (Alarm, error) {
	a, err := scanAlarm(s.db.QueryRowContext(ctx, "SELECT "+alarmColumns+" FROM alarms WHERE alarm_id = ?", id))
	if errors.Is(err, stdsql.ErrNoRows) {
		return a, ErrAlarmNotFound
	}
	if err != nil {
		return a, fmt.Errorf("get alarm %d: %w", id, err)
	}
	return a, nil
}

// Ignore hides an alarm from listings, or shows it again.
func (s *Alarms) Ignore(ctx context.Context, id int64, ignore bool) error {
	res, err := s.db.ExecContext(ctx, "UPDATE alarms SET ignored = ? WHERE alarm_id = ?", ignore, id)
	if err != nil {
		return fmt.Errorf("ignore alarm %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Get(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Maintenance is a period during which a host's (or with no hostname, a
// whole cluster's) alarms are recorded but not raised to anyone.
type Maintenance struct {
	UUID      string
	ClusterID int64
	Hostname  string
	Initiate  time.Time
	Deadline  time.Time
	Reason    string
	UserName  string
	Created   time.Time
}

// Active tells whether the period covers t.
func (m Maintenance) Active(t time.Time) bool { return !t.Before(m.Initiate) && t.Before(m.Deadline) }

// AddMaintenance stores a period.
func (s *Alarms) AddMaintenance(ctx context.Context, m Maintenance) error {
	m.Created = s.now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO maintenance (uuid, cluster_id, hostname, initiate, deadline, reason, user_name, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.UUID, m.ClusterID, m.Hostname, sql.Millis(m.Initiate), sql.Millis(m.Deadline),
		sql.Clip(m.Reason, 4096), m.UserName, sql.Millis(m.Created)); err != nil {
		return fmt.Errorf("add maintenance: %w", err)
	}
	if err := s.db.Bump(ctx, s.db, InventoryChanges); err != nil { // clusters show their periods
		return err
	}
	what := "the cluster"
	if m.Hostname != "" {
		what = m.Hostname
	}
	s.Log(ctx, m.ClusterID, m.Hostname, LogInfo, "Maintenance", fmt.Sprintf("Maintenance of %s scheduled from %s to %s by %s: %s",
		what, m.Initiate.UTC().Format(time.RFC3339), m.Deadline.UTC().Format(time.RFC3339), m.UserName, m.Reason))
	return nil
}

// ErrMaintenanceNotFound is a maintenance UUID that does not exist.
var ErrMaintenanceNotFound = errors.New("maintenance period not found")

// RemoveMaintenance deletes a period by UUID and returns it.
func (s *Alarms) RemoveMaintenance(ctx context.Context, uuid string) (Maintenance, error) {
	list, err := s.maintenance(ctx, "uuid = ?", uuid)
	if err != nil {
		return Maintenance{}, err
	}
	if len(list) == 0 {
		return Maintenance{}, ErrMaintenanceNotFound
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM maintenance WHERE uuid = ?", uuid); err != nil {
		return Maintenance{}, fmt.Errorf("remove maintenance: %w", err)
	}
	if err := s.db.Bump(ctx, s.db, InventoryChanges); err != nil {
		return Maintenance{}, err
	}
	m := list[0]
	s.Log(ctx, m.ClusterID, m.Hostname, LogInfo, "Maintenance", "Maintenance "+m.UUID+" removed.")
	return m, nil
}

// Maintenances lists a cluster's periods (0: every cluster's), by start.
func (s *Alarms) Maintenances(ctx context.Context, clusterID int64) ([]Maintenance, error) {
	if clusterID == 0 {
		return s.maintenance(ctx, "1 = 1")
	}
	return s.maintenance(ctx, "cluster_id = ?", clusterID)
}

func (s *Alarms) maintenance(ctx context.Context, where string, args ...any) ([]Maintenance, error) {
	return listMaintenance(ctx, s.db, where, args...)
}

func listMaintenance(ctx context.Context, db *sql.DB, where string, args ...any) ([]Maintenance, error) {
	rows, err := db.QueryContext(ctx, `SELECT uuid, cluster_id, hostname, initiate, deadline, reason, user_name, created
		FROM maintenance WHERE `+where+" ORDER BY initiate, uuid", args...)
	if err != nil {
		return nil, fmt.Errorf("list maintenance: %w", err)
	}
	defer rows.Close()
	out := []Maintenance{}
	for rows.Next() {
		var m Maintenance
		var initiate, deadline, created int64
		if err := rows.Scan(&m.UUID, &m.ClusterID, &m.Hostname, &initiate, &deadline, &m.Reason, &m.UserName, &created); err != nil {
			return nil, fmt.Errorf("list maintenance: %w", err)
		}
		m.Initiate, m.Deadline, m.Created = sql.Time(initiate), sql.Time(deadline), sql.Time(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// LogTransitions logs the maintenance periods that began or ended in
// (since, until]; the monitor's leader calls it each round.
func (s *Alarms) LogTransitions(ctx context.Context, since, until time.Time) error {
	from, to := sql.Millis(since), sql.Millis(until)
	list, err := s.maintenance(ctx, "(initiate > ? AND initiate <= ?) OR (deadline > ? AND deadline <= ?)", from, to, from, to)
	if err != nil {
		return err
	}
	for _, m := range list {
		what := "the cluster"
		if m.Hostname != "" {
			what = m.Hostname
		}
		if t := m.Initiate; t.After(since) && !t.After(until) {
			s.Log(ctx, m.ClusterID, m.Hostname, LogInfo, "Maintenance", fmt.Sprintf("Maintenance of %s began: %s", what, m.Reason))
		}
		if t := m.Deadline; t.After(since) && !t.After(until) {
			s.Log(ctx, m.ClusterID, m.Hostname, LogInfo, "Maintenance", fmt.Sprintf("Maintenance of %s ended.", what))
		}
	}
	return nil
}

// InMaintenance tells whether a host of a cluster (or the cluster itself,
// hostname "") is in a maintenance period at t.
func (s *Alarms) InMaintenance(ctx context.Context, clusterID int64, hostname string, t time.Time) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM maintenance WHERE cluster_id = ? AND (hostname = '' OR hostname = ?)
		AND initiate <= ? AND deadline > ?`, clusterID, hostname, sql.Millis(t), sql.Millis(t)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up maintenance: %w", err)
	}
	return n > 0, nil
}

// Log severities of the controller's event log, as the protocol names them.
const (
	LogInfo     = "LOG_INFO"
	LogWarning  = "LOG_WARNING"
	LogCritical = "LOG_CRIT"
)

// LogEntry is one event of the controller's log.
type LogEntry struct {
	ID        int64
	ClusterID int64
	Hostname  string
	Severity  string
	Component string
	Message   string
	Created   time.Time
}

// Log records an event. It returns nothing: the event happened whether or
// not it could be recorded.
func (s *Alarms) Log(ctx context.Context, clusterID int64, hostname, severity, component, message string) {
	_, _ = s.db.ExecContext(context.WithoutCancel(ctx), `INSERT INTO log_entries (cluster_id, hostname, severity, component, message, created)
		VALUES (?, ?, ?, ?, ?, ?)`, clusterID, hostname, severity, component, sql.Clip(message, 4096), sql.Millis(s.now()))
}

// LogFilter selects log entries.
type LogFilter struct {
	ClusterIDs []int64
	Severity   string
	From, To   time.Time
	Limit      int
	Offset     int
}

// Entries returns a page of the log entries f selects, newest first, and
// how many it selects in all.
func (s *Alarms) Entries(ctx context.Context, f LogFilter) ([]LogEntry, int, error) {
	var w sql.Where
	w.In("cluster_id", f.ClusterIDs)
	w.Equal("severity", f.Severity)
	w.Between("created", f.From, f.To)
	where, args := w.Clause()
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM log_entries"+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count log entries: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT entry_id, cluster_id, hostname, severity, component, message, created FROM log_entries"+
		where+" ORDER BY entry_id DESC LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list log entries: %w", err)
	}
	defer rows.Close()
	out := []LogEntry{}
	for rows.Next() {
		var e LogEntry
		var created int64
		if err := rows.Scan(&e.ID, &e.ClusterID, &e.Hostname, &e.Severity, &e.Component, &e.Message, &created); err != nil {
			return nil, 0, fmt.Errorf("list log entries: %w", err)
		}
		e.Created = sql.Time(created)
		out = append(out, e)
	}
	return out, total, rows.Err()
}
