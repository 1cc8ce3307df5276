package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// Limits on what a client may store with a job.
const (
	maxTitleLen   = 1024
	maxTagLen     = 255
	maxTags       = 64
	maxJobDataLen = 8 << 20
	// pastTolerance lets a start time a few seconds in the past (a client that
	// asked for "now", late on the wire) mean "now" instead of being refused.
	pastTolerance = 5 * time.Second
)

// DecodeJobData unmarshals job_data into v for a command's Validate and reports
// an ill-typed field in words a client understands. Unknown fields are allowed:
// clients send more than each command reads.
func DecodeJobData(data json.RawMessage, v any) error {
	if len(data) == 0 {
		return nil
	}
	err := json.Unmarshal(data, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "job_data"
		}
		return fmt.Errorf("job_data field %q must be %s, not %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	if err != nil {
		return fmt.Errorf("job_data is not valid JSON: %w", err)
	}
	return nil
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "an integer"
	case strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "a boolean"
	case goKind == "slice", goKind == "array":
		return "an array"
	default:
		return "an object"
	}
}

// normalizeJobData checks that job_data is a JSON object (absent or null is an
// empty one) and returns it verbatim, with the timeout it asks for (0: none).
func normalizeJobData(data json.RawMessage) (json.RawMessage, time.Duration, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return json.RawMessage("{}"), 0, nil
	}
	if len(trimmed) > maxJobDataLen {
		return nil, 0, invalid(ErrBadJobData, "job_data is larger than %d bytes", maxJobDataLen)
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, 0, invalid(ErrBadJobData, "job_data must be a JSON object")
	}
	var common struct {
		TimeoutSec json.RawMessage `json:"timeout_sec"`
	}
	if err := json.Unmarshal(trimmed, &common); err != nil {
		return nil, 0, invalid(ErrBadJobData, "job_data must be a JSON object")
	}
	var timeout time.Duration
	if common.TimeoutSec != nil && string(common.TimeoutSec) != "null" {
		var sec float64
		if err := json.Unmarshal(common.TimeoutSec, &sec); err != nil {
			return nil, 0, invalid(ErrBadJobData, "job_data field \"timeout_sec\" must be a number of seconds")
		}
		if sec <= 0 || sec > math.MaxInt64/float64(time.Second) {
			return nil, 0, invalid(ErrBadJobData, "job_data field \"timeout_sec\" must be a positive number of seconds")
		}
		timeout = time.Duration(sec * float64(time.Second))
	}
	return json.RawMessage(bytes.Clone(trimmed)), timeout, nil
}

// jobTimeout reads timeout_sec from stored job_data; 0 when absent.
func jobTimeout(data json.RawMessage) time.Duration {
	_, d, err := normalizeJobData(data)
	if err != nil {
		return 0
	}
	return d
}

// normalizeTags trims, drops empty and repeated tags, and enforces the limits.
func normalizeTags(tags []string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		if utf8.RuneCountInString(t) > maxTagLen {
			return nil, invalidf("tag %.20q... is longer than %d characters", t, maxTagLen)
		}
		seen[t] = true
		out = append(out, t)
	}
	if len(out) > maxTags {
		return nil, invalidf("a job has at most %d tags, not %d", maxTags, len(out))
	}
	return out, nil
}

// schedule is a parsed recurrence in its time zone.
type schedule struct {
	cron cron.Schedule
	loc  *time.Location
}

// parseSchedule parses a 5-field cron expression (or a descriptor such as
// @daily) evaluated in the IANA time zone tz, UTC when tz is "".
func parseSchedule(expr, tz string) (*schedule, error) {
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, invalid(ErrBadSchedule, "unknown time zone %q", tz)
		}
		loc = l
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, invalid(ErrBadSchedule, "recurrence %q is not a valid 5-field cron expression: %v", expr, err)
	}
	return &schedule{cron: sched, loc: loc}, nil
}

// next is the first firing strictly after t, in UTC; zero if it never fires.
func (s *schedule) next(t time.Time) time.Time {
	n := s.cron.Next(t.In(s.loc))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}
