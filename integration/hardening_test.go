package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// nested is value wrapped in depth JSON arrays.
func nested(depth int, value string) string {
	return strings.Repeat("[", depth) + value + strings.Repeat("]", depth)
}

// TestRepliesStayBounded sends what made replies grow with the square of a
// request's nesting (finding 1 of the hardening issue): every reply stays
// small, and what is stored is replayed at its own size.
func TestRepliesStayBounded(t *testing.T) {
	c := startController(t, controllerOptions{})
	admin := c.session(t, "admin", adminPassword)
	tests := []struct {
		name, module, body, wantStatus, wantError string
	}{
		{name: "deep request_id, no login", module: "controller",
			body:       fmt.Sprintf(`{"operation":"x","request_id":%s}`, nested(9990, "1")),
			wantStatus: "InvalidRequest", wantError: "nests deeper than 64 levels"},
		{name: "request_id an object", module: "controller", body: `{"operation":"ping","request_id":{"a":[1,2]}}`,
			wantStatus: "InvalidRequest", wantError: "Field 'request_id' must be a string or a number."},
		{name: "request_created an array", module: "auth", body: `{"operation":"authenticate","request_created":[1]}`,
			wantStatus: "InvalidRequest", wantError: "Field 'request_created' must be a string or a number."},
		{name: "deep object keys", module: "controller", body: `{"operation":"ping","x":` + strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200) + "}",
			wantStatus: "InvalidRequest", wantError: "nests deeper than 64 levels"},
		{name: "brackets inside strings do not count", module: "controller", body: `{"operation":"ping","request_id":"` + strings.Repeat("[", 500) + `"}`,
			wantStatus: "Ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.curl(t, tt.module, tt.body)
			if r.Status() != tt.wantStatus || !strings.Contains(fmt.Sprint(r.Reply["error_string"]), tt.wantError) {
				t.Fatalf("got %s %v, want %s %q", r.Status(), r.Reply["error_string"], tt.wantStatus, tt.wantError)
			}
			if len(r.Raw) > 64<<10 {
				t.Fatalf("a %d-byte request got a %d-byte reply", len(tt.body), len(r.Raw))
			}
		})
	}

	t.Run("deep job_data is refused", func(t *testing.T) {
		r := admin.call(t, "jobs", fmt.Sprintf(`{"operation":"createJobInstance","job":{"job_spec":{"command":"success","job_data":{"x":%s}}}}`,
			nested(100, "0")))
		if r.Status() != "InvalidRequest" {
			t.Fatalf("got %s: %.300s", r.Status(), r.Raw)
		}
	})

	t.Run("stored job_data is replayed at its own size", func(t *testing.T) {
		// 60 levels deep and 60,000 elements wide: indented, as replies are,
		// it would be some 15 MB.
		wide := strings.TrimSuffix(strings.Repeat("0,", 60000), ",")
		body := fmt.Sprintf(`{"operation":"createJobInstance","job":{"tags":["wide"],"job_spec":{"command":"success","job_data":{"x":%s}}}}`,
			nested(60, wide))
		id := int64(mustOk(t, admin.call(t, "jobs", body)).Reply["job"].(map[string]any)["job_id"].(float64))
		admin.waitJob(t, id, time.Minute)
		for _, read := range []string{
			fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, id),
			`{"operation":"getJobInstances","tags":["wide"]}`,
		} {
			r := mustOk(t, admin.call(t, "jobs", read))
			if len(r.Raw) > 2*len(body) {
				t.Errorf("%s: a %d-byte job replays as %d bytes", read, len(body), len(r.Raw))
			}
		}
	})
}
