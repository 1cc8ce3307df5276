package rpc

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
)

// Bounds on what a request may make the controller hold or send: a reply
// must stay within a small multiple of its request, whatever the request's
// shape.
const (
	// MaxDepth bounds how deeply a request's JSON nests. Nothing in the
	// protocol nests past a handful of levels.
	MaxDepth = 64
	// maxIndentedReply is the largest reply sent indented (as the original
	// controller sends it); a reply whose indentation would grow past it goes
	// out compact, so indentation never multiplies a deep value's size.
	maxIndentedReply = 4 << 20
)

// structure calls fn with each byte of data outside strings (read with
// their escapes) and the nesting depth after it, until fn returns false.
func structure(data []byte, fn func(c byte, depth int) bool) {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		case c == '"':
			inString = true
			continue
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
		if !fn(c, depth) {
			return
		}
	}
}

// jsonDepth is how deeply data nests, counting no further than limit+1.
func jsonDepth(data []byte, limit int) int {
	deepest := 0
	structure(data, func(_ byte, depth int) bool {
		deepest = max(deepest, depth)
		return deepest <= limit
	})
	return deepest
}

// isScalar tells whether raw is a JSON string, number, boolean or null.
func isScalar(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] != '[' && raw[0] != '{'
}

// indented is a reply field's value encoded ahead, indented for its place in
// the reply (one level deep), in pieces written one after the other: a reply
// that repeats pieces encoded earlier costs one copy of each instead of an
// encoding.
type indented [][]byte

func (v indented) size() int {
	n := 0
	for _, piece := range v {
		n += len(piece)
	}
	return n
}

// encodeReply appends out to buf, indented with four spaces as the original
// controller does, unless indentation would make it larger than
// maxIndentedReply: then compact. It writes the reply's own object itself,
// keys sorted as encoding/json sorts them, so that the common scalar fields
// cost no reflection, and copies values already encoded (indented) as they
// are.
func encodeReply(buf []byte, out map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	values := make([][]byte, len(keys))
	size, indentedTotal := 2, 2
	for i, k := range keys {
		if v, done := out[k].(indented); done {
			size += len(k) + v.size() + 4
			indentedTotal += len(k) + v.size() + 10
			continue
		}
		v, err := compactValue(out[k])
		if err != nil {
			return nil, err
		}
		values[i] = v
		size += len(k) + len(v) + 4
		indentedTotal += len(k) + 10 + indentedSize(v, 1)
	}
	indent := indentedTotal <= maxIndentedReply
	// Room for the form written only: a reply too large to indent would
	// otherwise reserve its whole indented size (a hundred MiB for a few MiB
	// of deeply nested job_data).
	if indent {
		size = indentedTotal
	}
	buf = slices.Grow(buf, size)
	return writeObject(buf, keys, values, indent, out), nil
}

// compactValue encodes one reply value: scalars directly, anything else
// with encoding/json.
func compactValue(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendJSONString(nil, v), nil
	case Status:
		return appendJSONString(nil, string(v)), nil
	case []string:
		out := []byte{'['}
		for i, s := range v {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendJSONString(out, s)
		}
		return append(out, ']'), nil
	case bool:
		return strconv.AppendBool(nil, v), nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(nil, v, 10), nil
	case json.RawMessage:
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return json.Marshal(v)
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always encodes
			return append(buf, quoted...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// writeObject writes the reply object from its sorted keys and compact
// values, indented or not; indented values are copied as they are.
func writeObject(buf []byte, keys []string, values [][]byte, indent bool, out map[string]any) []byte {
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		if indent {
			buf = append(buf, "\n    "...)
		}
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		if indent {
			buf = append(buf, ' ')
		}
		if pieces, done := out[k].(indented); done {
			for _, piece := range pieces {
				buf = append(buf, piece...)
			}
			continue
		}
		v := values[i]
		if !indent || (v[0] != '{' && v[0] != '[') {
			buf = append(buf, v...)
			continue
		}
		var b bytes.Buffer
		_ = json.Indent(&b, v, "    ", "    ") // v is valid JSON: encoding/json wrote it
		buf = append(buf, b.Bytes()...)
	}
	if indent && len(keys) > 0 {
		buf = append(buf, '\n')
	}
	return append(buf, '}')
}

// indentedSize bounds from above the size of compact JSON once indented at
// depth base: a line break and the indentation of the current depth for
// every element and every closing bracket, plus ": " for every key.
func indentedSize(compact []byte, base int) int {
	size := len(compact)
	structure(compact, func(c byte, depth int) bool {
		switch c {
		case '[', '{', ']', '}', ',':
			size += 1 + 4*(base+depth)
		case ':':
			size++
		}
		return true
	})
	return size
}
