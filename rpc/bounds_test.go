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
			if got := indentedSize(compact, 0); got < out.Len() {
				t.Errorf("indentedSize = %d, below the real %d", got, out.Len())
			}
		})
	}
}

func TestEncodeReplyMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		out  map[string]any
	}{
		{name: "empty", out: map[string]any{}},
		{name: "scalars", out: map[string]any{"b": true, "i": 7, "j": int64(-3), "s": "a<b>&\"c\"\n", "st": StatusOk, "n": nil,
			"plain": "plain text", "utf8": "zoë \u2028", "strs": []string{"x", "\\y"}, "nostrs": []string{}}},
		{name: "nested", out: map[string]any{"list": []any{}, "obj": map[string]any{"x": []int{1, 2}, "y": map[string]any{}},
			"strs": []string{"one"}, "raw": json.RawMessage(` 12 `)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.MarshalIndent(tt.out, "", "    ")
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeReply(nil, tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encodeReply:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}

func TestEncodeReplyCopiesIndentedValues(t *testing.T) {
	list := map[string]any{"a": 1, "b": []any{map[string]any{"x": "y"}}}
	want, _ := json.MarshalIndent(map[string]any{"total": 1, "clusters": list}, "", "    ")
	inner, _ := json.MarshalIndent(list, "    ", "    ")
	got, err := encodeReply(nil, map[string]any{"total": 1, "clusters": indented{inner[:5], inner[5:]}})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("encodeReply (%v):\n%s\nwant:\n%s", err, got, want)
	}
}

// TestEncodeReplyReservesWhatItWrites: a reply too large to indent is
// written compact, and only its compact size is reserved (the indented size
// of deeply nested job_data is many times larger: one listing once took
// 150 MiB for a 6 MiB reply).
func TestEncodeReplyReservesWhatItWrites(t *testing.T) {
	nested := json.RawMessage(`{"x":[` + strings.TrimSuffix(strings.Repeat("[[0]],", 100000), ",") + `]}`)
	got, err := encodeReply(nil, map[string]any{"job_data": nested, "total": 1})
	if err != nil {
		t.Fatal(err)
	}
	if got[1] == '\n' {
		t.Fatal("a reply this nested was indented")
	}
	if cap(got) > 2*len(got) {
		t.Fatalf("reserved %d bytes for a %d-byte reply", cap(got), len(got))
	}
}
