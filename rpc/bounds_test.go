package rpc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
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

// testReply has a field of each kind replies carry.
type testReply struct {
	Envelope
	Text    string          `json:"text"`
	Number  int64           `json:"number"`
	Flag    bool            `json:"flag"`
	Strings []string        `json:"strings"`
	Nested  map[string]any  `json:"nested,omitempty"`
	Raw     json.RawMessage `json:"raw,omitempty"`
}

func TestReplyBufferIndentsAsEncodingJSON(t *testing.T) {
	tests := []struct {
		name  string
		reply Reply
	}{
		{name: "envelope alone", reply: &Envelope{RequestStatus: StatusOk}},
		{name: "scalars", reply: &testReply{Text: "a<b>&\"c\"\n zoë \u2028", Number: -3, Flag: true, Strings: []string{"x", "\\y"}}},
		{name: "nested", reply: &testReply{Strings: []string{}, Nested: map[string]any{"x": []int{1, 2}, "y": map[string]any{}},
			Raw: json.RawMessage(` 12 `)}},
	}
	b := newReplyBuffer()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.MarshalIndent(tt.reply, "", "    ")
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.encode(tt.reply)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append(want, '\n')) {
				t.Errorf("encode:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}

// TestReplyBufferKeepsDeepRepliesCompact: a reply whose indentation would
// multiply its size is written compact (deeply nested job_data once made a
// 6 MiB listing take 150 MiB).
func TestReplyBufferKeepsDeepRepliesCompact(t *testing.T) {
	nested := json.RawMessage(`{"x":[` + strings.TrimSuffix(strings.Repeat("[[0]],", 200000), ",") + `]}`)
	got, err := newReplyBuffer().encode(&testReply{Raw: nested})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got[:len(got)-1], []byte("\n")) {
		t.Fatal("a reply this nested was indented")
	}
	if !json.Valid(got) {
		t.Fatalf("not JSON: %.200s", got)
	}
}

// TestListedClustersAsEncodingJSON: a listing's clusters, encoded once and
// completed with each caller's privileges, are what encoding the clusters
// with those privileges gives.
func TestListedClustersAsEncodingJSON(t *testing.T) {
	tests := []struct {
		name     string
		clusters []*wireCluster
		privs    []rbac.Privileges
	}{
		{name: "none", clusters: []*wireCluster{}},
		{name: "one", clusters: []*wireCluster{{ClusterID: 1, ClusterName: "a", Tags: []string{}}}, privs: []rbac.Privileges{rbac.Read}},
		{name: "several", clusters: []*wireCluster{{ClusterID: 1, ClusterName: "a"}, {ClusterID: 2, ClusterName: "b<&>",
			Hosts: []wireHost{{Hostname: "h"}}}}, privs: []rbac.Privileges{rbac.Read, rbac.All}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fragments := map[int64][]byte{}
			visible := make([]*hosts.Cluster, len(tt.clusters))
			for i, c := range tt.clusters {
				fragments[c.ClusterID], _ = json.MarshalIndent(c, listedIndent, "    ")
				visible[i] = &hosts.Cluster{ID: c.ClusterID}
				c.EffectivePrivileges = tt.privs[i].String()
			}
			want, _ := json.MarshalIndent(struct {
				Envelope
				Total    int            `json:"total"`
				Clusters []*wireCluster `json:"clusters"`
			}{Total: len(tt.clusters), Clusters: tt.clusters}, "", "    ")
			got, err := newReplyBuffer().encode(listClusters(visible, tt.privs, fragments))
			if err != nil || string(got) != string(want)+"\n" {
				t.Errorf("listed (%v):\n%s\nwant:\n%s", err, got, want)
			}
		})
	}
}
