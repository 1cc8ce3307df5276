package jobs

import (
	"context"
	"fmt"

	"github.com/cmon-dev/cmon/sql"
)

// CountByState counts the jobs of each of clusterIDs per status, for the
// clusters' job_statistics: one grouped query over the (cluster_id, status)
// index, however many clusters a listing shows.
func (s *Service) CountByState(ctx context.Context, clusterIDs ...int64) (map[int64]map[string]int, error) {
	out := map[int64]map[string]int{}
	if len(clusterIDs) == 0 {
		return out, nil
	}
	for _, id := range clusterIDs {
		out[id] = map[string]int{}
	}
	list, args := sql.Placeholders(clusterIDs)
	rows, err := s.db.QueryContext(ctx, "SELECT cluster_id, status, COUNT(*) FROM jobs WHERE cluster_id IN ("+list+
		") GROUP BY cluster_id, status", args...)
	if err != nil {
		return nil, fmt.Errorf("count jobs of clusters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var status string
		var n int
		if err := rows.Scan(&id, &status, &n); err != nil {
			return nil, fmt.Errorf("count jobs of clusters: %w", err)
		}
		out[id][status] = n
	}
	return out, rows.Err()
}

// Active counts the jobs not ended yet, by status: DEFINED is the queue.
func (s *Service) Active(ctx context.Context) (map[Status]int, error) {
	open, args := sql.Placeholders(openStatuses)
	rows, err := s.db.QueryContext(ctx, "SELECT status, COUNT(*) FROM jobs WHERE status IN ("+open+") GROUP BY status", args...)
	if err != nil {
		return nil, fmt.Errorf("count active jobs: %w", err)
	}
	defer rows.Close()
	out := map[Status]int{}
	for rows.Next() {
		var st Status
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count active jobs: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}
