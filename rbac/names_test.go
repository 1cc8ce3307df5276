package rbac

import "testing"

func TestValidateName(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{name: "plain", input: "readeruser", ok: true},
		{name: "dots and at", input: "a.b@c-d_e", ok: true},
		{name: "unicode letters", input: "jürgen", ok: true},
		{name: "empty", input: ""},
		{name: "control character", input: "ad\x07min"},
		{name: "newline", input: "a\nb"},
		{name: "leading space", input: " bob"},
		{name: "acl separator", input: "bob:r"},
		{name: "path separator", input: "a/b"},
		{name: "too long", input: string(make([]byte, 65))},
		{name: "invalid utf8", input: "a\xffb"},
		{name: "soft hyphen", input: "ad\u00admin"},
		{name: "zero width space", input: "ad\u200bmin"},
		{name: "right-to-left override", input: "\u202enimda"},
		{name: "no-break space", input: "ad\u00a0min"},
		{name: "inner space", input: "Jane Doe", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateName("user", tt.input); (err == nil) != tt.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tt.input, err, tt.ok)
			}
		})
	}
}
