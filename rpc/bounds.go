package rpc

import (
	"bytes"
	"encoding/json"
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

// maxIndentGrowth bounds how many bytes indentation makes of one: a line
// break and four spaces for each level a reply nests (a request, whose
// job_data a reply may repeat, nests at most MaxDepth levels) below the
// reply's own two.
const maxIndentGrowth = 1 + 4*(MaxDepth+2)

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
