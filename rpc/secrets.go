package rpc

import (
	"bytes"
	"encoding/json"
	"regexp"
)

// secretKey matches job_data fields whose values are secrets.
var secretKey = regexp.MustCompile(`(?i)pass|secret|token|credential|private|key$|^stdin`)

// mayHoldSecrets finds, in job_data as sent, the name of every field that
// redact would hide (or an escape that could spell one): data without a
// match has nothing to hide.
var mayHoldSecrets = regexp.MustCompile(`(?i)pass|secret|token|credential|private|key"|"stdin|"env"|\\u`)

// redacted stands for a secret value wherever job_data is shown.
const redacted = "***"

// redactedJobData is job_data as every reply and the audit trail show it, to
// every caller alike: the values of secret fields and of environment
// variables are "***"; field and variable names stay. The job keeps its
// data as sent, so a clone, copied on the server, still has the secrets. nil
// when data is not JSON.
func redactedJobData(data json.RawMessage) json.RawMessage {
	if !mayHoldSecrets.Match(data) && json.Valid(data) {
		return data // nothing to hide: no decoding of a large job_data per render
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are shown as they were sent, not as float64
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	out, _ := json.Marshal(redact(v, false)) // decoded JSON always encodes
	return out
}

// redact hides every value under a secret field, secret telling whether v is
// under one.
func redact(v any, secret bool) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "env" && !secret {
				v[k] = redactEnv(x)
				continue
			}
			v[k] = redact(x, secret || secretKey.MatchString(k))
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = redact(x, secret)
		}
		return v
	}
	if secret {
		return redacted
	}
	return v
}

// redactEnv hides environment variables' values but not their names, in
// exec's form [{"key": name, "value": value}] (and as an object of names,
// whose keys stay anyway).
func redactEnv(v any) any {
	vars, ok := v.([]any)
	if !ok {
		return redact(v, true)
	}
	for i, x := range vars {
		variable, ok := x.(map[string]any)
		if !ok {
			vars[i] = redact(x, true)
			continue
		}
		for k, y := range variable {
			if _, name := y.(string); k == "key" && name {
				continue
			}
			variable[k] = redact(y, true)
		}
	}
	return vars
}
