package jobs

import (
	"context"
	"fmt"
)

// CountByState counts a cluster's jobs per status, for the cluster's
// job_statistics; one grouped query over the (cluster_id, status) index.
func (s *Service) CountByState(ctx context.Context, clusterID int64) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT status, COUNT(*) FROM jobs WHERE cluster_id = ? GROUP BY status", clusterID)
	if err != nil {
		return nil, fmt.Errorf("count jobs of cluster %d: %w", clusterID, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count jobs of cluster %d: %w", clusterID, err)
		}
		out[status] = n
	}
	return out, rows.Err()
}
