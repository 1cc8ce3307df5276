package rbac

import "fmt"

// Privileges are POSIX-style permissions on an object: read, write, execute.
type Privileges uint8

// The three privileges: r lets a user see a cluster and its jobs, w change its
// definition, x run jobs on it.
const (
	Read Privileges = 1 << iota
	Write
	Execute
	All = Read | Write | Execute
)

// Has tells whether p includes every privilege of want.
func (p Privileges) Has(want Privileges) bool { return p&want == want }

// String renders p as "rwx", "r-x", "---".
func (p Privileges) String() string {
	b := []byte("---")
	for i, c := range []struct {
		bit Privileges
		ch  byte
	}{{Read, 'r'}, {Write, 'w'}, {Execute, 'x'}} {
		if p.Has(c.bit) {
			b[i] = c.ch
		}
	}
	return string(b)
}

// actionName names the first privilege of p, in r, w, x order, as denial
// messages do.
func actionName(p Privileges) string {
	switch {
	case p.Has(Read):
		return "Read"
	case p.Has(Write):
		return "Write"
	default:
		return "Execute"
	}
}

// DeniedError is a refusal; its message is the protocol's text, shown to the
// client as it is.
type DeniedError struct{ Message string }

func (e *DeniedError) Error() string { return e.Message }

// DeniedOnCluster refuses a user the privileges it lacks (missing) on a
// cluster, named by its id or as the user named it: "Execute access to
// cluster 21 for user readeruser is denied."
func DeniedOnCluster(missing Privileges, cluster, user string) *DeniedError {
	return &DeniedError{fmt.Sprintf("%s access to cluster %s for user %s is denied.", actionName(missing), cluster, user)}
}

// DeniedOnPath refuses a user the privileges it lacks on a tree path:
// "Write access to / for user bob is denied."
func DeniedOnPath(missing Privileges, path, user string) *DeniedError {
	return &DeniedError{fmt.Sprintf("%s access to %s for user %s is denied.", actionName(missing), path, user)}
}

// DeniedToNonSuperuser refuses what only superusers may do, such as "set
// 'ssh_keyfile'".
func DeniedToNonSuperuser(what, user string) *DeniedError {
	return &DeniedError{fmt.Sprintf("Only superusers may %s; user '%s' is not one.", what, user)}
}
