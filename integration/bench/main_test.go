package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
)

var cmonBinary string

// TestMain serves "bare" like the bench program, since the bench re-runs its
// own executable as the bare server.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		if err := serveBare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench bare:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	bin, cleanup, err := services.CmonBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	cmonBinary = bin
	code := services.Main(m)
	cleanup()
	os.Exit(code)
}

// TestSmoke runs every part of the bench at a token size, so that make
// bench never rots: each part yields its figures, each with a measured value
// and baseline. No speed target is asserted here; make bench reports them.
func TestSmoke(t *testing.T) {
	results := filepath.Join(t.TempDir(), "results.json")
	var out bytes.Buffer
	if err := run(context.Background(), &out, cmonBinary, results, smoke, nil); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	data, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	var figures []figure
	if err := json.Unmarshal(data, &figures); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"rpc ping", "rpc getAllClusterInfo", "controller RSS", "password login",
		"dispatch to RUNNING", "queue", "dispatch to RUNNING p50 (galera", "queue drain", "history getJobInstances",
		"history getJobLog", "fan-out exec true on", "fleet: register", "fleet: health monitor", "fleet: fan-out"} {
		found := false
		for _, f := range figures {
			if strings.HasPrefix(f.Name, prefix) {
				found = true
				if f.Value <= 0 || f.Baseline <= 0 {
					t.Errorf("%s: value %v, baseline %v", f.Name, f.Value, f.Baseline)
				}
			}
		}
		if !found {
			t.Errorf("no figure %q in:\n%s", prefix, out.String())
		}
	}
	for line := range strings.Lines(out.String()) {
		if !strings.HasPrefix(line, "#") && !strings.Contains(line, "(baseline: ") {
			t.Errorf("a figure line without its baseline: %q", line)
		}
	}
}
