package jobs

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

type lenientBase struct {
	Retries uint8 `json:"retries"`
}

type lenientNode struct {
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
}

type lenientTarget struct {
	lenientBase
	SSHPort   int                `json:"ssh_port"`
	Sudo      bool               `json:"sudo"`
	Ratio     float64            `json:"ratio"`
	Name      string             `json:"name"`
	Limit     *int64             `json:"limit"`
	Nodes     []lenientNode      `json:"nodes"`
	Node      *lenientNode       `json:"node"`
	Weights   map[string]int     `json:"weights"`
	Raw       json.RawMessage    `json:"raw"`
	Any       any                `json:"any"`
	When      time.Time          `json:"when"`
	Untagged  int                // matched by field name, case-insensitively
	Nested    map[string][]int32 `json:"nested"`
	NotShared int                `json:"-"`
}

func TestUnmarshalTakesScalarsWrittenAsStrings(t *testing.T) {
	limit := int64(-7)
	tests := []struct {
		name string
		in   string
		want lenientTarget
		// bad is the field of the type error left, "" when none.
		bad string
	}{
		{name: "typed values as they are", in: `{"ssh_port":22,"sudo":true,"name":"22"}`,
			want: lenientTarget{SSHPort: 22, Sudo: true, Name: "22"}},
		{name: "reference client ports", in: `{"ssh_port":"22","nodes":[{"hostname":"a","port":"5432"},{"hostname":"b","port":5433}]}`,
			want: lenientTarget{SSHPort: 22, Nodes: []lenientNode{{"a", 5432}, {"b", 5433}}}},
		{name: "booleans any case", in: `{"sudo":"True"}`, want: lenientTarget{Sudo: true}},
		{name: "false", in: `{"sudo":"false","ssh_port":1}`, want: lenientTarget{SSHPort: 1}},
		{name: "float", in: `{"ratio":"-1.5e2"}`, want: lenientTarget{Ratio: -150}},
		{name: "pointer and embedded", in: `{"limit":"-7","retries":"3","node":{"hostname":"h","port":"2"}}`,
			want: lenientTarget{Limit: &limit, lenientBase: lenientBase{Retries: 3}, Node: &lenientNode{"h", 2}}},
		{name: "map values and case-folded names", in: `{"weights":{"x":"1"},"UNTAGGED":"4","Nested":{"k":["5","6"]}}`,
			want: lenientTarget{Weights: map[string]int{"x": 1}, Untagged: 4, Nested: map[string][]int32{"k": {5, 6}}}},
		{name: "strings where strings go stay", in: `{"name":"true","ssh_port":"2","any":"3","raw":"4"}`,
			want: lenientTarget{Name: "true", SSHPort: 2, Any: "3", Raw: json.RawMessage(`"4"`)}},
		{name: "not a number", in: `{"ssh_port":"twenty-two"}`, bad: "ssh_port"},
		{name: "fraction for an integer", in: `{"ssh_port":"22.0"}`, bad: "ssh_port"},
		{name: "spaces", in: `{"ssh_port":" 22"}`, bad: "ssh_port"},
		{name: "out of range", in: `{"retries":"300"}`, bad: "lenientBase.retries"},
		{name: "negative unsigned", in: `{"retries":"-1"}`, bad: "lenientBase.retries"},
		{name: "not JSON number", in: `{"ratio":"NaN"}`, bad: "ratio"},
		{name: "hex", in: `{"ratio":"0x10"}`, bad: "ratio"},
		{name: "yes is not a boolean", in: `{"sudo":"yes"}`, bad: "sudo"},
		{name: "one is not a boolean", in: `{"sudo":"1"}`, bad: "sudo"},
		{name: "a string for an object", in: `{"node":"h"}`, bad: "node"},
		{name: "an ignored field is not read", in: `{"NotShared":"x","ssh_port":"5"}`, want: lenientTarget{SSHPort: 5}},
		{name: "one bad field among good ones", in: `{"ssh_port":"5","nodes":[{"port":"x"}]}`, bad: "nodes.port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got lenientTarget
			err := Unmarshal([]byte(tc.in), &got)
			if tc.bad != "" {
				var te *json.UnmarshalTypeError
				if !errors.As(err, &te) || te.Field != tc.bad {
					t.Fatalf("Unmarshal(%s) = %v, want a type error on %q", tc.in, err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Unmarshal(%s) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestUnmarshalTopLevelScalar(t *testing.T) {
	var id int64
	if err := Unmarshal([]byte(`"12"`), &id); err != nil || id != 12 {
		t.Fatalf("Unmarshal(\"12\") = %d, %v; want 12", id, err)
	}
	var when time.Time
	if err := Unmarshal([]byte(`"2026-01-02T03:04:05Z"`), &when); err != nil || when.Year() != 2026 {
		t.Fatalf("a time keeps its own decoding: %v, %v", when, err)
	}
}

func TestDraftReadsTimeoutWrittenAsString(t *testing.T) {
	reg, err := NewRegistry(testCommands()...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.Draft("success", json.RawMessage(`{"timeout_sec":"2.5"}`), 0)
	if err != nil || d.Timeout != 2500*time.Millisecond {
		t.Fatalf("Draft: timeout %v, %v; want 2.5s", d, err)
	}
}
