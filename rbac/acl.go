package rbac

import (
	"fmt"
	"slices"
	"strings"
)

// Entry kinds of an ACL: user:: and group:: without a name are the owner's
// and the owning group's entries.
const (
	KindUser  = "user"
	KindGroup = "group"
	KindOther = "other"
)

// ACLEntry is one comma-separated part of an ACL string such as "user:bob:r-x".
type ACLEntry struct {
	Kind  string
	Name  string // empty for the owner's, the owning group's and other's entries
	Perms Privileges
	// HasPerms is false for an entry written without permissions
	// ("user:bob"), which only removeAcl accepts.
	HasPerms bool
}

// ACLError is a malformed ACL or privilege string; its message is for the
// caller.
type ACLError struct{ Msg string }

func (e *ACLError) Error() string { return e.Msg }

func aclErrorf(format string, args ...any) error {
	return &ACLError{Msg: fmt.Sprintf(format, args...)}
}

// ParsePrivileges reads "rwx", "r-x", "---" (positional, as ls shows them) or
// the letters alone in any order ("r", "rx").
func ParsePrivileges(s string) (Privileges, error) {
	bits := map[byte]Privileges{'r': Read, 'w': Write, 'x': Execute}
	if len(s) == 3 && strings.Contains(s, "-") {
		var p Privileges
		for i, want := range []byte("rwx") {
			switch s[i] {
			case want:
				p |= bits[want]
			case '-':
			default:
				return 0, aclErrorf("privileges %q must look like rwx, r-x or ---", s)
			}
		}
		return p, nil
	}
	if s == "" {
		return 0, aclErrorf("privileges must not be empty")
	}
	var p Privileges
	for i := 0; i < len(s); i++ {
		bit, ok := bits[s[i]]
		if !ok || p.Has(bit) {
			return 0, aclErrorf("privileges %q must look like rwx, r-x or ---", s)
		}
		p |= bit
	}
	return p, nil
}

// maxACLEntries bounds one ACL string; real ACLs have a handful of entries.
const maxACLEntries = 100

// ParseACL reads a comma-separated ACL such as
// "user::rwx,user:bob:r-x,group::r--,other::---". Without permissions an
// entry ("user:bob") is accepted only when removal is true. An entry may
// appear once.
func ParseACL(s string, removal bool) ([]ACLEntry, error) {
	if strings.TrimSpace(s) == "" {
		return nil, aclErrorf("the ACL is empty")
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxACLEntries {
		return nil, aclErrorf("the ACL has more than %d entries", maxACLEntries)
	}
	var out []ACLEntry
	for _, part := range parts {
		e, err := parseEntry(strings.TrimSpace(part), removal)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(o ACLEntry) bool { return o.Kind == e.Kind && o.Name == e.Name }) {
			return nil, aclErrorf("ACL entry %q appears twice", part)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseEntry(s string, removal bool) (ACLEntry, error) {
	fields := strings.Split(s, ":")
	if len(fields) < 2 || len(fields) > 3 {
		return ACLEntry{}, aclErrorf("ACL entry %q must look like user:name:rwx, group::r-x or other::---", s)
	}
	e := ACLEntry{Name: fields[1]}
	switch fields[0] {
	case "user", "u":
		e.Kind = KindUser
	case "group", "g":
		e.Kind = KindGroup
	case "other", "o":
		e.Kind = KindOther
	case "mask", "m":
		return ACLEntry{}, aclErrorf("ACL entry %q: mask entries are not supported", s)
	default:
		return ACLEntry{}, aclErrorf("ACL entry %q: the kind must be user, group or other", s)
	}
	if e.Kind == KindOther && e.Name != "" {
		return ACLEntry{}, aclErrorf("ACL entry %q: other takes no name", s)
	}
	if len(fields) == 3 && fields[2] != "" {
		p, err := ParsePrivileges(fields[2])
		if err != nil {
			return ACLEntry{}, aclErrorf("ACL entry %q: %s", s, err)
		}
		e.Perms, e.HasPerms = p, true
	}
	if !e.HasPerms && !removal {
		return ACLEntry{}, aclErrorf("ACL entry %q has no privileges, such as r-x", s)
	}
	return e, nil
}

// FormatACL renders entries in the canonical order: the owner, named users,
// the owning group, named groups, other; names sorted within their kind.
func FormatACL(entries []ACLEntry) string {
	rank := func(e ACLEntry) int {
		switch {
		case e.Kind == KindUser && e.Name == "":
			return 0
		case e.Kind == KindUser:
			return 1
		case e.Kind == KindGroup && e.Name == "":
			return 2
		case e.Kind == KindGroup:
			return 3
		default:
			return 4
		}
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b ACLEntry) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	parts := make([]string, len(sorted))
	for i, e := range sorted {
		parts[i] = e.Kind + ":" + e.Name + ":" + e.Perms.String()
	}
	return strings.Join(parts, ",")
}
