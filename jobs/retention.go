package jobs

import (
	"context"
	"fmt"

	"github.com/cmon-dev/cmon/sql"
)

// retain deletes ended jobs older than Retention.MaxAge and those beyond the
// newest Retention.MaxCount, with their messages and tags, in batches of at most
// BatchSize rows and at most MaxBatches batches a pass, so that a large backlog
// never holds the database for long. It returns how many jobs it deleted.
func (s *Service) retain(ctx context.Context) (int, error) {
	r := *s.retention.Load()
	st, stArgs := sql.Placeholders(endedStatuses)
	deleted := 0
	for batch := 0; batch < r.MaxBatches; batch++ {
		var ids []int64
		var err error
		if r.MaxAge > 0 {
			cutoff := sql.Millis(s.clock.Now().Add(-r.MaxAge))
			ids, err = s.ids(ctx, "SELECT job_id FROM jobs WHERE status IN ("+st+") AND ended > 0 AND ended < ?"+
				" ORDER BY job_id LIMIT ?", append(stArgs, cutoff, r.BatchSize)...)
			if err != nil {
				return deleted, err
			}
		}
		if len(ids) == 0 && r.MaxCount > 0 {
			// The newest ended job beyond the newest MaxCount, then the oldest up to it.
			newest, err := s.ids(ctx, "SELECT job_id FROM jobs WHERE status IN ("+st+") ORDER BY job_id DESC LIMIT 1 OFFSET ?",
				append(stArgs, r.MaxCount)...)
			if err != nil {
				return deleted, err
			}
			if len(newest) == 1 {
				ids, err = s.ids(ctx, "SELECT job_id FROM jobs WHERE status IN ("+st+") AND job_id <= ? ORDER BY job_id LIMIT ?",
					append(stArgs, newest[0], r.BatchSize)...)
				if err != nil {
					return deleted, err
				}
			}
		}
		if len(ids) == 0 {
			break
		}
		n, err := deleteJobRows(ctx, s.db, ids, endedStatuses, r.BatchSize)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	if deleted > 0 {
		s.log.Info("old jobs deleted", "jobs", deleted)
	}
	return deleted, nil
}

func (s *Service) ids(ctx context.Context, query string, args ...any) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("select old jobs: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("select old jobs: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
