package jobs

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// querier is what *stdsql.DB and *stdsql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *stdsql.Row
}

const jobColumns = `job_id, cluster_id, title, command, job_data, tags, status, status_text,
	exit_code, has_progress, progress_percent, created, started, ended, scheduled, recurrence,
	time_zone, next_fire_at, user_id, user_name, group_id, group_name, ip_address,
	parent_job_id, result, is_exclusive, controller_id, kill_requested, killed_by, exit_signal`

type rowScanner interface{ Scan(dest ...any) error }

func scanJob(r rowScanner) (*Job, error) {
	var (
		j                                              Job
		jobData, tags, result                          string
		hasProgress, exclusive, killRequested          int
		created, started, ended, scheduled, nextFireAt int64
	)
	err := r.Scan(&j.ID, &j.ClusterID, &j.Title, &j.Command, &jobData, &tags, &j.Status, &j.StatusText,
		&j.ExitCode, &hasProgress, &j.Progress, &created, &started, &ended, &scheduled, &j.Recurrence,
		&j.TimeZone, &nextFireAt, &j.UserID, &j.UserName, &j.GroupID, &j.GroupName, &j.IPAddress,
		&j.ParentJobID, &result, &exclusive, &j.ControllerID, &killRequested, &j.KilledBy, &j.ExitSignal)
	if err != nil {
		return nil, err
	}
	j.JobData = json.RawMessage(jobData)
	if result != "" {
		j.Result = json.RawMessage(result)
	}
	if err := json.Unmarshal([]byte(tags), &j.Tags); err != nil || len(j.Tags) == 0 {
		j.Tags = nil
	}
	j.HasProgress, j.Exclusive, j.KillRequested = hasProgress != 0, exclusive != 0, killRequested != 0
	j.Created, j.Started, j.Ended = sql.Time(created), sql.Time(started), sql.Time(ended)
	j.Scheduled, j.NextFireAt = sql.Time(scheduled), sql.Time(nextFireAt)
	return &j, nil
}

func getJob(ctx context.Context, q querier, id int64) (*Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM jobs WHERE job_id = ?", id))
	if errors.Is(err, stdsql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", id, err)
	}
	return j, nil
}

// insertJob stores a new job and its tags and returns its id.
func insertJob(ctx context.Context, tx *stdsql.Tx, j *Job) (int64, error) {
	tags, err := json.Marshal(j.Tags)
	if err != nil {
		return 0, fmt.Errorf("encode tags: %w", err)
	}
	if j.Tags == nil {
		tags = []byte("[]")
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO jobs (cluster_id, title, command, job_data, tags, status,
		status_text, created, scheduled, recurrence, time_zone, next_fire_at, user_id, user_name, group_id,
		group_name, ip_address, parent_job_id, result, is_exclusive)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?)`,
		j.ClusterID, j.Title, j.Command, string(j.JobData), string(tags), j.Status,
		j.StatusText, sql.Millis(j.Created), sql.Millis(j.Scheduled), j.Recurrence, j.TimeZone,
		sql.Millis(j.NextFireAt), j.UserID, j.UserName, j.GroupID,
		j.GroupName, j.IPAddress, j.ParentJobID, boolInt(j.Exclusive))
	if err != nil {
		return 0, fmt.Errorf("insert job: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert job: %w", err)
	}
	for _, t := range j.Tags {
		if _, err := tx.ExecContext(ctx, "INSERT INTO job_tags (job_id, tag) VALUES (?, ?)", id, t); err != nil {
			return 0, fmt.Errorf("insert job tag: %w", err)
		}
	}
	return id, nil
}

func insertMessage(ctx context.Context, q querier, jobID int64, at time.Time, st MessageStatus, text string) error {
	_, err := q.ExecContext(ctx, "INSERT INTO job_messages (job_id, created, message_status, message_text) VALUES (?, ?, ?, ?)",
		jobID, sql.Millis(at), st, text)
	if err != nil {
		return fmt.Errorf("insert message for job %d: %w", jobID, err)
	}
	return nil
}

// maxRowsPerInsert bounds one multi-row insert of job messages.
const maxRowsPerInsert = 200

// insertMessages appends lines to a job's log, a statement per
// maxRowsPerInsert lines.
func insertMessages(ctx context.Context, q querier, jobID int64, at time.Time, lines []LogLine) error {
	for len(lines) > 0 {
		n := min(len(lines), maxRowsPerInsert)
		args := make([]any, 0, 4*n)
		for _, l := range lines[:n] {
			args = append(args, jobID, sql.Millis(at), l.Status, l.Text)
		}
		query := "INSERT INTO job_messages (job_id, created, message_status, message_text) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", n), ", ")
		if _, err := q.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("insert messages for job %d: %w", jobID, err)
		}
		lines = lines[n:]
	}
	return nil
}

// Filter selects jobs for List. Empty sets match everything.
type Filter struct {
	ClusterIDs  []int64
	Statuses    []Status
	Tags        []string // a job matches when it has at least one of them
	ParentJobID int64    // 0: any
	// Limit and Offset page the newest-first list; Limit <= 0 means all and
	// Offset < 0 means from the start.
	Limit, Offset int
	// WithResult reads each job's result too: per-node output, up to a few
	// MiB a job, which listings leave out unless asked.
	WithResult bool
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if len(f.ClusterIDs) > 0 {
		list, ids := sql.Placeholders(f.ClusterIDs)
		conds, args = append(conds, "j.cluster_id IN ("+list+")"), append(args, ids...)
	}
	if len(f.Statuses) > 0 {
		list, statuses := sql.Placeholders(f.Statuses)
		conds, args = append(conds, "j.status IN ("+list+")"), append(args, statuses...)
	}
	if len(f.Tags) > 0 {
		list, tags := sql.Placeholders(f.Tags)
		conds, args = append(conds, "EXISTS (SELECT 1 FROM job_tags t WHERE t.job_id = j.job_id AND t.tag IN ("+list+"))"), append(args, tags...)
	}
	if f.ParentJobID != 0 {
		conds = append(conds, "j.parent_job_id = ?")
		args = append(args, f.ParentJobID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// page renders LIMIT/OFFSET: limit <= 0 is all rows, offset < 0 the start.
func page(limit, offset int) (string, []any) {
	offset = max(offset, 0)
	if limit <= 0 && offset == 0 {
		return "", nil
	}
	l := int64(limit)
	if limit <= 0 {
		l = math.MaxInt64 // both backends need a LIMIT before an OFFSET
	}
	return " LIMIT ? OFFSET ?", []any{l, offset}
}

// countBeside starts counting on its own connection while the caller reads
// a page: on a networked database the two round trips overlap. The result
// waits in the returned function.
func countBeside(ctx context.Context, db *sql.DB, what, query string, args ...any) func() (int, error) {
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		if err = db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			err = fmt.Errorf("count %s: %w", what, err)
		}
	}()
	return func() (int, error) {
		<-done
		return n, err
	}
}

func listJobs(ctx context.Context, db *sql.DB, f Filter) ([]*Job, int, error) {
	where, args := f.where()
	total := countBeside(ctx, db, "jobs", "SELECT COUNT(*) FROM jobs j"+where, args...)
	out, err := pageOfJobs(ctx, db, f, where, args)
	n, cerr := total()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return nil, 0, err
	}
	return out, n, nil
}

func pageOfJobs(ctx context.Context, q querier, f Filter, where string, args []any) ([]*Job, error) {
	pg, pargs := page(f.Limit, f.Offset)
	columns := prefixed("j.", jobColumns)
	if !f.WithResult {
		columns = strings.Replace(columns, "j.result", "''", 1)
	}
	rows, err := q.QueryContext(ctx, "SELECT "+columns+" FROM jobs j"+where+
		" ORDER BY j.job_id DESC"+pg, append(args, pargs...)...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// prefixed qualifies a comma list of columns with a table alias.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// MessageQuery pages a job's messages. Limit <= 0 means all and Offset < 0 from
// the start; Ascending is oldest first.
type MessageQuery struct {
	Ascending     bool
	Limit, Offset int
}

func pageOfMessages(ctx context.Context, q querier, jobID int64, mq MessageQuery) ([]Message, error) {
	order := " ORDER BY message_id DESC"
	if mq.Ascending {
		order = " ORDER BY message_id ASC"
	}
	pg, pargs := page(mq.Limit, mq.Offset)
	rows, err := q.QueryContext(ctx, "SELECT message_id, job_id, created, message_status, message_text"+
		" FROM job_messages WHERE job_id = ?"+order+pg, append([]any{jobID}, pargs...)...)
	if err != nil {
		return nil, fmt.Errorf("read messages of job %d: %w", jobID, err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		var m Message
		var created int64
		if err := rows.Scan(&m.ID, &m.JobID, &created, &m.Status, &m.Text); err != nil {
			return nil, fmt.Errorf("read messages of job %d: %w", jobID, err)
		}
		m.Created = sql.Time(created)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read messages of job %d: %w", jobID, err)
	}
	return out, nil
}

// deleteJobRows removes jobs' messages, tags and rows, in statements of at most
// batch rows each. Messages go first so that a crash halfway leaves a job whose
// remaining messages are still reachable (and deleted next time).
func deleteJobRows(ctx context.Context, q querier, ids []int64, statuses []Status, batch int) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	idList, idArgs := sql.Placeholders(ids)
	for {
		rows, err := q.QueryContext(ctx, "SELECT message_id FROM job_messages WHERE job_id IN ("+idList+
			") ORDER BY message_id LIMIT ?", append(idArgs, batch)...)
		if err != nil {
			return 0, fmt.Errorf("select job messages to delete: %w", err)
		}
		var msgIDs []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, fmt.Errorf("select job messages to delete: %w", err)
			}
			msgIDs = append(msgIDs, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("select job messages to delete: %w", err)
		}
		if len(msgIDs) == 0 {
			break
		}
		ml, margs := sql.Placeholders(msgIDs)
		if _, err := q.ExecContext(ctx, "DELETE FROM job_messages WHERE message_id IN ("+ml+")", margs...); err != nil {
			return 0, fmt.Errorf("delete job messages: %w", err)
		}
		if len(msgIDs) < batch {
			break
		}
	}
	for _, table := range []string{"job_tags", "job_processes"} {
		if _, err := q.ExecContext(ctx, "DELETE FROM "+table+" WHERE job_id IN ("+idList+")", idArgs...); err != nil {
			return 0, fmt.Errorf("delete from %s: %w", table, err)
		}
	}
	stList, stArgs := sql.Placeholders(statuses)
	res, err := q.ExecContext(ctx, "DELETE FROM jobs WHERE job_id IN ("+idList+") AND status IN ("+stList+")",
		append(idArgs, stArgs...)...)
	if err != nil {
		return 0, fmt.Errorf("delete jobs: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
