package rbac

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// AuditEntry is one recorded change or refusal: who (user, address,
// controller), what (module, operation, object, cluster, job, the job's
// command with its secrets redacted), when, and how it ended.
type AuditEntry struct {
	ID         int64
	At         time.Time
	Controller string
	UserID     int64
	UserName   string
	Address    string
	Module     string
	Operation  string
	Object     string
	ClusterID  int64
	JobID      int64
	Command    string
	Outcome    string
	Detail     string
}

// AuditFilter selects entries; zero fields select everything.
type AuditFilter struct {
	UserName string
	// ClusterIDs select entries of any of these clusters.
	ClusterIDs []int64
	Operation  string
	From, To   time.Time
	Limit      int
	Offset     int
	// Ascending lists the oldest first.
	Ascending bool
}

// AuditLog keeps the audit trail in the database, shared by every
// controller on it, for its retention time.
type AuditLog struct {
	db        *sql.DB
	retention atomic.Int64 // a time.Duration
	now       func() time.Time
}

// NewAuditLog makes an AuditLog over db keeping entries for retention.
func NewAuditLog(db *sql.DB, retention time.Duration) *AuditLog {
	a := &AuditLog{db: db, now: time.Now}
	a.SetRetention(retention)
	return a
}

// SetRetention changes how long entries are kept, from the next purge on.
func (a *AuditLog) SetRetention(d time.Duration) { a.retention.Store(int64(d)) }

// Bounds of what one entry stores.
const (
	maxAuditText   = 4096
	maxAuditObject = 1024
)

// Record stores an entry.
func (a *AuditLog) Record(ctx context.Context, e AuditEntry) error {
	_, err := a.db.ExecContext(ctx, `INSERT INTO audit_log (at, controller, user_id, user_name, address, module, operation,
		object, cluster_id, job_id, command, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sql.Millis(e.At), sql.Clip(e.Controller, 255), e.UserID, sql.Clip(e.UserName, 255), sql.Clip(e.Address, 64), sql.Clip(e.Module, 32),
		sql.Clip(e.Operation, 64), sql.Clip(e.Object, maxAuditObject), e.ClusterID, e.JobID, sql.Clip(e.Command, maxAuditText),
		sql.Clip(e.Outcome, 32), sql.Clip(e.Detail, maxAuditText))
	if err != nil {
		return fmt.Errorf("record audit entry: %w", err)
	}
	return nil
}

// List returns a page of the entries f selects, newest first unless
// Ascending, and how many it selects in all.
func (a *AuditLog) List(ctx context.Context, f AuditFilter) ([]AuditEntry, int, error) {
	var w sql.Where
	w.Equal("user_name", f.UserName)
	w.In("cluster_id", f.ClusterIDs)
	w.Equal("operation", f.Operation)
	w.Between("at", f.From, f.To)
	where, args := w.Clause()
	order := "DESC"
	if f.Ascending {
		order = "ASC"
	}
	var total int
	if err := a.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_log"+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count audit entries: %w", err)
	}
	rows, err := a.db.QueryContext(ctx, `SELECT entry_id, at, controller, user_id, user_name, address, module, operation,
		object, cluster_id, job_id, command, outcome, detail FROM audit_log`+where+" ORDER BY entry_id "+order+" LIMIT ? OFFSET ?",
		append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Controller, &e.UserID, &e.UserName, &e.Address, &e.Module, &e.Operation,
			&e.Object, &e.ClusterID, &e.JobID, &e.Command, &e.Outcome, &e.Detail); err != nil {
			return nil, 0, fmt.Errorf("list audit entries: %w", err)
		}
		e.At = sql.Time(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list audit entries: %w", err)
	}
	return out, total, nil
}

// Purge deletes the entries older than the retention time.
func (a *AuditLog) Purge(ctx context.Context) (int64, error) {
	res, err := a.db.ExecContext(ctx, "DELETE FROM audit_log WHERE at < ?", sql.Millis(a.now().Add(-time.Duration(a.retention.Load()))))
	if err != nil {
		return 0, fmt.Errorf("purge audit entries: %w", err)
	}
	return res.RowsAffected()
}
