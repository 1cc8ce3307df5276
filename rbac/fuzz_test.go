package rbac

import (
	"errors"
	"slices"
	"testing"
)

// FuzzParseACL: any string parses to entries or to an *ACLError, and what
// parses renders to a canonical form that parses back to the same entries.
func FuzzParseACL(f *testing.F) {
	for _, s := range []string{"user::rwx,user:bob:r-x,group::rwx,group:ops:r--,other::---", "u:bob:xr", "user:bob",
		"g:ops:-w-", "mask::rwx", "other:x:---", "user:a:r,user:a:w", ",,,", "user::rwxr"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, removal bool) {
		entries, err := ParseACL(s, removal)
		if err != nil {
			var aclErr *ACLError
			if !errors.As(err, &aclErr) {
				t.Fatalf("ParseACL(%q) failed with %T %v, not an *ACLError", s, err, err)
			}
			return
		}
		if !removal || !slices.ContainsFunc(entries, func(e ACLEntry) bool { return !e.HasPerms }) {
			canonical := FormatACL(entries)
			again, err := ParseACL(canonical, removal)
			if err != nil || FormatACL(again) != canonical {
				t.Fatalf("%q renders as %q, which parses to %v (%v)", s, canonical, again, err)
			}
		}
	})
}
