package names

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		kind  Kind
		input string
		ok    bool
	}{
		{name: "plain", kind: User, input: "readeruser", ok: true},
		{name: "dots and at", kind: User, input: "a.b@c-d_e", ok: true},
		{name: "unicode letters", kind: User, input: "jürgen", ok: true},
		{name: "inner space", kind: User, input: "Jane Doe", ok: true},
		{name: "cyrillic", kind: Group, input: "сервер", ok: true},
		{name: "hebrew", kind: Group, input: "שרת", ok: true},
		{name: "chinese", kind: Cluster, input: "服务器", ok: true},
		{name: "cluster with dots and dashes", kind: Cluster, input: "db-1.prod_eu", ok: true},
		{name: "long cluster", kind: Cluster, input: strings.Repeat("c", 255), ok: true},
		{name: "empty", kind: User, input: ""},
		{name: "control character", kind: User, input: "ad\x07min"},
		{name: "newline", kind: User, input: "a\nb"},
		{name: "leading space", kind: User, input: " bob"},
		{name: "acl separator", kind: User, input: "bob:r"},
		{name: "list separator", kind: Cluster, input: "c1,c2"},
		{name: "path separator", kind: Cluster, input: "a/b"},
		{name: "too long", kind: User, input: strings.Repeat("u", 65)},
		{name: "too long cluster", kind: Cluster, input: strings.Repeat("c", 256)},
		{name: "invalid utf8", kind: User, input: "a\xffb"},
		{name: "replacement character", kind: User, input: "a\ufffdb"},
		{name: "soft hyphen", kind: User, input: "ad\u00admin"},
		{name: "zero width space", kind: Cluster, input: "c1\u200b"},
		{name: "zero width joiner", kind: Group, input: "a\u200db"},
		{name: "right-to-left override", kind: Cluster, input: "c1\u202e"},
		{name: "no-break space", kind: User, input: "ad\u00a0min"},
		{name: "ideographic space", kind: User, input: "ad\u3000min"},
		{name: "hangul filler", kind: User, input: "ad\u3164min"},
		{name: "variation selector", kind: Group, input: "ops\ufe0f"},
		{name: "not nfc", kind: User, input: "ju\u0308rgen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check(tt.kind, tt.input); (err == nil) != tt.ok {
				t.Fatalf("Check(%s, %+q) = %v, want ok=%v", tt.kind, tt.input, err, tt.ok)
			}
		})
	}
}

func TestLookalike(t *testing.T) {
	existing := []string{"c1", "admin", "jürgen", "ops", "ссср"}
	tests := []struct {
		name  string
		input string
		// like is the existing name the input must be refused for; empty
		// when the input must pass.
		like string
	}{
		{name: "cyrillic es", input: "\u04411", like: "c1"},
		{name: "fullwidth", input: "\uff431", like: "c1"},
		{name: "upper case", input: "C1", like: "c1"},
		{name: "letter l for digit one", input: "cl", like: "c1"},
		{name: "capital i for letter l", input: "cI", like: "c1"},
		{name: "cyrillic a", input: "\u0430dmin", like: "admin"},
		{name: "fullwidth word", input: "\uff41\uff44\uff4d\uff49\uff4e", like: "admin"},
		{name: "r and n for m", input: "adrnin", like: "admin"},
		{name: "mathematical letters", input: "\U0001d428\U0001d429\U0001d42c", like: "ops"},
		{name: "latin for cyrillic", input: "cccp", like: "ссср"},
		{name: "equal name is the store's to refuse", input: "c1"},
		{name: "other digit", input: "c2"},
		{name: "plain ascii", input: "reader"},
		{name: "dots dashes underscores", input: "db-1.prod_eu"},
		{name: "umlaut is not plain u", input: "jurgen"},
		{name: "greek not like any", input: "διακομιστής"},
		{name: "cyrillic not like any", input: "база"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check(User, tt.input); err != nil {
				t.Fatalf("Check(%+q) = %v; the look-alike rule is for names that pass it", tt.input, err)
			}
			err := Lookalike(User, tt.input, existing)
			if tt.like == "" {
				if err != nil {
					t.Fatalf("Lookalike(%+q) = %v, want nil", tt.input, err)
				}
				return
			}
			var look *LookalikeError
			if !errors.As(err, &look) || look.Existing != tt.like || look.Name != tt.input {
				t.Fatalf("Lookalike(%+q) = %v, want it to look like %q", tt.input, err, tt.like)
			}
			if msg := err.Error(); !strings.Contains(msg, "existing user") {
				t.Fatalf("message %q does not name the existing user", msg)
			}
		})
	}
}
