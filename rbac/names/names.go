// Package names is the one rule for the names of users, groups and clusters:
// what a name may contain, and which new names look too much like an
// existing one. It imports nothing of cmon, so that rbac and hosts both use it.
package names

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.mau.fi/util/confusable"
	"golang.org/x/text/secure/precis"
)

// Kind is what a name names.
type Kind string

// The kinds of names.
const (
	User    Kind = "user"
	Group   Kind = "group"
	Cluster Kind = "cluster"
)

// maxLen is the longest name of the kind, in bytes.
func (k Kind) maxLen() int {
	if k == Cluster {
		return 255
	}
	return 64
}

// Profiles of PRECIS (RFC 8264): form refuses what its FreeformClass
// disallows (controls, default-ignorable code points such as zero-width and
// bidi override characters, Hangul fillers, unassigned code points) and maps
// to NFC; fold and wide map a name before its skeleton is taken. A Profile is
// safe for concurrent use and never changes.
var (
	form = precis.NewFreeform(precis.DisallowEmpty)
	fold = precis.NewFreeform(precis.FoldWidth, precis.FoldCase())
	wide = precis.NewFreeform(precis.FoldWidth)
)

// Check checks a name of kind k: 1 to 64 bytes (255 for a cluster) of
// printable characters that PRECIS's FreeformClass allows, in Unicode
// normalization form C, no white space at the ends, and none of the
// characters that ACL strings and tree paths use as separators.
func Check(k Kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", k)
	case len(name) > k.maxLen():
		return fmt.Errorf("%s name is longer than %d characters", k, k.maxLen())
	case !utf8.ValidString(name):
		return fmt.Errorf("%s name is not valid UTF-8", k)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%s name has white space at its ends", k)
	case strings.ContainsAny(name, ":,/"):
		return fmt.Errorf("%s name contains one of ':', ',' or '/'", k)
	}
	for _, r := range name {
		// unicode.IsPrint also refuses every space but ' ', which PRECIS allows.
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%s name contains a character that is not printable (%U)", k, r)
		}
		if _, err := form.String(string(r)); err != nil {
			return fmt.Errorf("%s name contains a character that names may not hold (%U)", k, r)
		}
	}
	canonical, err := form.String(name)
	if err != nil {
		// Rules on a character's neighbours, such as where a joiner may stand.
		return fmt.Errorf("%s name is refused by the PRECIS rules: %w", k, err)
	}
	if canonical != name {
		return fmt.Errorf("%s name is not in Unicode normalization form C (write it as %+q)", k, canonical)
	}
	return nil
}

// skeletons are the keys under which two names look alike: the UTS #39
// skeleton of the name folded to one width and one case, and that of the
// name folded to one width only, for case folding maps "I" to "i" and so
// hides that it looks like "l".
func skeletons(name string) [2]string {
	var keys [2]string
	for i, p := range []*precis.Profile{fold, wide} {
		mapped, err := p.String(name)
		if err != nil {
			mapped = name // a name stored before this rule may not map
		}
		keys[i] = confusable.Skeleton(mapped)
	}
	return keys
}

// LookalikeError refuses a name that looks like an existing one.
type LookalikeError struct {
	Kind     Kind
	Name     string
	Existing string
}

func (e *LookalikeError) Error() string {
	// %+q spells out the characters that make the two look alike.
	return fmt.Sprintf("%s name %+q looks like the existing %s %+q", e.Kind, e.Name, e.Kind, e.Existing)
}

// Lookalike returns a *LookalikeError when name looks like one of existing
// without being equal to it (an equal name is the store's to refuse as taken).
func Lookalike(k Kind, name string, existing []string) error {
	keys := skeletons(name)
	for _, e := range existing {
		if e == name {
			continue
		}
		if ek := skeletons(e); ek[0] == keys[0] || ek[1] == keys[1] {
			return &LookalikeError{Kind: k, Name: name, Existing: e}
		}
	}
	return nil
}

// Querier reads rows: a database or a transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error)
}

// Unlike refuses name when it looks like one of the names that query, which
// selects one column of names, returns through q.
func Unlike(ctx context.Context, q Querier, k Kind, name, query string) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("list %s names: %w", k, err)
	}
	defer rows.Close()
	var existing []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return fmt.Errorf("scan %s name: %w", k, err)
		}
		existing = append(existing, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list %s names: %w", k, err)
	}
	return Lookalike(k, name, existing)
}
