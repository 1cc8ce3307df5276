package jobs

import (
	"context"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/sql"
)

func TestCountByState(t *testing.T) {
	services.ForEach(t, func(t *testing.T, db *sql.DB) {
		s := newService(t, db, testConfig("c1"), false)
		for _, cluster := range []int64{1, 1, 2} {
			create(t, s, CreateRequest{ClusterID: cluster, Command: "success"})
		}
		create(t, s, CreateRequest{ClusterID: 2, Command: "success", Recurrence: "@daily"})
		got, err := s.CountByState(context.Background(), 1, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]map[string]int{1: {"DEFINED": 2}, 2: {"DEFINED": 1, "SCHEDULED": 1}, 3: {}}
		for id, states := range want {
			if len(got[id]) != len(states) {
				t.Errorf("cluster %d: %v, want %v", id, got[id], states)
			}
			for st, n := range states {
				if got[id][st] != n {
					t.Errorf("cluster %d %s: %d, want %d", id, st, got[id][st], n)
				}
			}
		}
	})
}
