package jobs

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"

	"github.com/cmon-dev/cmon/sql"
)

// fireDue starts the SCHEDULED jobs whose time has come: a one-off job becomes
// DEFINED; a recurring template creates a DEFINED child (parent_job_id = the
// template) unless its previous child has not finished, which is noted as a
// JOB_WARNING on the template. Each firing advances next_fire_at with a
// conditional update in the firing's transaction, so among controllers sharing
// the database exactly one makes it. Firings missed while no controller ran are
// not made up: a template fires once and moves to its next time after now.
func (s *Service) fireDue(ctx context.Context) (fired int, err error) {
	now := s.clock.Now()
	rows, err := s.db.QueryContext(ctx, `SELECT job_id FROM jobs WHERE status = ? AND next_fire_at > 0
		AND next_fire_at <= ? ORDER BY next_fire_at, job_id LIMIT 100`, StatusScheduled, sql.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("find due jobs: %w", err)
	}
	var due []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find due jobs: %w", err)
		}
		due = append(due, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find due jobs: %w", err)
	}
	var errs []error
	for _, id := range due {
		ok, err := s.fire(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			fired++
		}
	}
	if fired > 0 {
		s.poke()
	}
	return fired, errors.Join(errs...)
}

// fire makes one due job's firing; false when another controller made it first
// or the job changed meanwhile.
func (s *Service) fire(ctx context.Context, id int64) (bool, error) {
	now := s.clock.Now()
	if t, err := s.Get(ctx, id); err == nil && t.Recurring() {
		var refused *RefusedError
		if err := s.permit(ctx, t); errors.As(err, &refused) {
			s.pauseRefused(ctx, id, refused.Reason)
			return false, nil
		} else if err != nil {
			return false, err
		}
	}
	var fired bool
	var child int64
	var skippedFor int64
	err := s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		t, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if t.Status != StatusScheduled || t.NextFireAt.IsZero() || t.NextFireAt.After(now) {
			return nil
		}
		if !t.Recurring() {
			res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, status_text = ?, next_fire_at = 0
				WHERE job_id = ? AND status = ? AND next_fire_at = ?`,
				StatusDefined, TextDefined, id, StatusScheduled, sql.Millis(t.NextFireAt))
			if err != nil {
				return fmt.Errorf("start scheduled job %d: %w", id, err)
			}
			n, _ := res.RowsAffected()
			fired = n == 1
			return nil
		}
		sched, err := parseSchedule(t.Recurrence, t.TimeZone)
		if err != nil {
			// Stored schedules were valid at create; one that no longer parses
			// (a time zone gone from the system) pauses the template.
			_, uerr := tx.ExecContext(ctx, "UPDATE jobs SET status = ?, status_text = ? WHERE job_id = ? AND status = ?",
				StatusPaused, "Paused: "+err.Error(), id, StatusScheduled)
			return uerr
		}
		next := sched.next(now)
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET next_fire_at = ? WHERE job_id = ? AND status = ?
			AND next_fire_at = ?`, sql.Millis(next), id, StatusScheduled, sql.Millis(t.NextFireAt))
		if err != nil {
			return fmt.Errorf("advance recurring job %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another controller fired it
		}
		fired = true
		queued, args := sql.Placeholders(queuedStatuses)
		if err := tx.QueryRowContext(ctx, `SELECT job_id FROM jobs WHERE parent_job_id = ? AND status IN (`+queued+`)
			ORDER BY job_id DESC LIMIT 1`, append([]any{id}, args...)...).Scan(&skippedFor); err == nil {
			return insertMessage(ctx, tx, id, now, MessageWarning, fmt.Sprintf(
				"Skipped the run due at %s: the previous run (job %d) has not finished.", FormatTime(t.NextFireAt), skippedFor))
		} else if !errors.Is(err, stdsql.ErrNoRows) {
			return fmt.Errorf("check previous run of recurring job %d: %w", id, err)
		}
		c := &Job{
			ClusterID: t.ClusterID, Title: t.Title, Command: t.Command, JobData: t.JobData, Tags: t.Tags,
			Status: StatusDefined, StatusText: TextDefined, Created: now, Scheduled: t.NextFireAt,
			ParentJobID: id, Owner: t.Owner, Exclusive: t.Exclusive,
		}
		if cmd, ok := s.reg.Lookup(t.Command); ok {
			c.Exclusive = cmd.Exclusive
		}
		child, err = insertJob(ctx, tx, c)
		return err
	})
	if err != nil {
		return false, err
	}
	switch {
	case child != 0:
		s.log.Info("recurring job fired", "job_id", id, "child_job_id", child)
	case skippedFor != 0:
		s.log.Warn("recurring job firing skipped: previous run not finished", "job_id", id, "running_job_id", skippedFor)
	case fired:
		s.log.Info("scheduled job due", "job_id", id)
	}
	return fired, nil
}
