package rpc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONDepth(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{name: "flat", in: `{"a":1}`, want: 1},
		{name: "nested", in: `{"a":[[1],{"b":[]}]}`, want: 4},
		{name: "brackets in strings", in: `{"a":"[[[{{{"}`, want: 1},
		{name: "escaped quote", in: `{"a":"\"[[[","b":[1]}`, want: 2},
		{name: "escaped backslash", in: `{"a":"\\","b":[[1]]}`, want: 3},
		{name: "stops past the limit", in: strings.Repeat("[", 1000), want: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsonDepth([]byte(tt.in), 10); got != tt.want {
				t.Errorf("jsonDepth(%s) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestIndentedSizeBoundsIndent(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{name: "object", v: map[string]any{"a": []any{1, "x,y:[z]", map[string]any{"b": nil}}, "c": []any{}}},
		{name: "deep", v: []any{[]any{[]any{[]any{1, 2}, 3}}}},
		{name: "scalar", v: "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compact, _ := json.Marshal(tt.v)
			var out bytes.Buffer
			if err := json.Indent(&out, compact, "", "    "); err != nil {
				t.Fatal(err)
			}
			if got := indentedSize(compact); got < out.Len() {
				t.Errorf("indentedSize = %d, below the real %d", got, out.Len())
			}
		})
	}
}
