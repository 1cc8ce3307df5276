package sql_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

func TestWhereAddsOnlyWhatSelects(t *testing.T) {
	from := time.UnixMilli(1000)
	tests := []struct {
		name       string
		build      func(w *sql.Where)
		wantClause string
		wantArgs   []any
	}{
		{name: "nothing", build: func(w *sql.Where) { w.Equal("a", ""); w.In("b", nil); w.Between("c", time.Time{}, time.Time{}) }},
		{name: "equal", build: func(w *sql.Where) { w.Equal("a", "x") }, wantClause: " WHERE a = ?", wantArgs: []any{"x"}},
		{name: "in and since", build: func(w *sql.Where) { w.In("b", []int64{1, 2}); w.Between("c", from, time.Time{}) },
			wantClause: " WHERE b IN (?, ?) AND c >= ?", wantArgs: []any{int64(1), int64(2), int64(1000)}},
		{name: "fixed", build: func(w *sql.Where) { w.Add("d = 0"); w.Between("c", time.Time{}, from) },
			wantClause: " WHERE d = 0 AND c < ?", wantArgs: []any{int64(1000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w sql.Where
			tt.build(&w)
			clause, args := w.Clause()
			if clause != tt.wantClause || !reflect.DeepEqual(args, tt.wantArgs) {
				t.Errorf("Clause() = %q %v, want %q %v", clause, args, tt.wantClause, tt.wantArgs)
			}
		})
	}
}
