package sql

import (
	"slices"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{name: "empty", body: "", want: nil},
		{name: "comments only", body: "-- a\n  -- b\n", want: nil},
		{name: "two statements", body: "CREATE TABLE a (x INT);\n-- note\nCREATE TABLE b (\n  y INT\n);\n",
			want: []string{"CREATE TABLE a (x INT)", "CREATE TABLE b (\n  y INT\n)"}},
		{name: "no final semicolon", body: "SELECT 1", want: []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.body); !slices.Equal(got, tt.want) {
				t.Fatalf("splitStatements = %q, want %q", got, tt.want)
			}
		})
	}
}
