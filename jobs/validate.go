package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxTagLen is the longest tag, in characters, of a job, and of the clusters
// and nodes that commands register: the tag columns' size.
const MaxTagLen = 255

// Limits on what a client may store with a job.
const (
	maxTitleLen = 1024
	maxTags     = 64
	// maxJobDataLen bounds job_data, which every listing of the job replays:
	// room for a script of over a thousand lines.
	maxJobDataLen = 64 << 10
	// pastTolerance lets a start time a few seconds in the past (a client that
	// asked for "now", late on the wire) mean "now" instead of being refused.
	pastTolerance = 5 * time.Second
)

// DecodeJobData unmarshals job_data into v for a command's Validate, by
// Unmarshal's rule, and reports an ill-typed field in words a client
// understands. Unknown fields are allowed: clients send more than each
// command reads.
func DecodeJobData(data json.RawMessage, v any) error {
	if len(data) == 0 {
		return nil
	}
	err := Unmarshal(data, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "job_data"
		}
		return fmt.Errorf("job_data field %q must be %s, not %s", field, JSONKind(te.Type), te.Value)
	}
	if err != nil {
		return fmt.Errorf("job_data is not valid JSON: %w", err)
	}
	return nil
}

// JSONKind names the JSON value a Go type decodes from, as a client thinks
// of it: "an integer", "a string", "an array"... Every refusal of an
// ill-typed field, in a request or in job_data, words it so.
func JSONKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// readJobData checks that job_data is a JSON object (absent or null is an
// empty one) and reads the fields every command shares: timeout_sec and the
// cluster ids. The object is kept compact: its layout is the client's, and
// replaying it must cost no more than its content.
func readJobData(data json.RawMessage) (*Draft, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return &Draft{JobData: json.RawMessage("{}")}, nil
	}
	if len(trimmed) > maxJobDataLen {
		return nil, invalid(ErrBadJobData, "job_data is larger than %d bytes", maxJobDataLen)
	}
	var compact bytes.Buffer
	if trimmed[0] != '{' || json.Compact(&compact, trimmed) != nil {
		return nil, invalid(ErrBadJobData, "job_data must be a JSON object")
	}
	d := &Draft{JobData: json.RawMessage(compact.Bytes())}
	if err := json.Unmarshal(d.JobData, &d.fields); err != nil {
		return nil, invalid(ErrBadJobData, "job_data must be a JSON object")
	}
	var err error
	if d.Timeout, err = d.seconds("timeout_sec"); err != nil {
		return nil, err
	}
	if d.JobTimeout, err = d.seconds("timeout"); err != nil {
		return nil, err
	}
	return d, nil
}

// seconds reads field as a positive number of seconds, 0 when absent.
func (d *Draft) seconds(field string) (time.Duration, error) {
	raw := d.fields[field]
	if raw == nil || string(raw) == "null" {
		return 0, nil
	}
	var sec float64
	if err := Unmarshal(raw, &sec); err != nil {
		return 0, invalid(ErrBadJobData, "job_data field %q must be a number of seconds", field)
	}
	if sec <= 0 || sec > math.MaxInt64/float64(time.Second) {
		return 0, invalid(ErrBadJobData, "job_data field %q must be a positive number of seconds", field)
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// dataClusterIDs are the cluster ids job_data names, as clusterid or
// cluster_id; ill-typed ones read as 0 here and are refused by the command's
// Validate.
func (d *Draft) dataClusterIDs() []int64 {
	var ids []int64
	for _, f := range []string{"clusterid", "cluster_id"} {
		var id int64
		if raw := d.fields[f]; raw != nil && Unmarshal(raw, &id) == nil && id != 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// jobTimeout reads timeout_sec from stored job_data; 0 when absent.
func jobTimeout(data json.RawMessage, perNode bool) time.Duration {
	d, err := readJobData(data)
	if err != nil {
		return 0
	}
	t := d.JobTimeout
	if !perNode && d.Timeout > 0 && (t == 0 || d.Timeout < t) {
		t = d.Timeout
	}
	return t
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
		if utf8.RuneCountInString(t) > MaxTagLen {
			return nil, invalidf("tag %.20q... is longer than %d characters", t, MaxTagLen)
		}
		seen[t] = true
		out = append(out, t)
	}
	if len(out) > maxTags {
		return nil, invalidf("a job has at most %d tags, not %d", maxTags, len(out))
	}
	return out, nil
}
