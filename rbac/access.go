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

// DeniedMessage is the protocol's refusal text for a cluster, such as
// "Execute access to cluster 21 for user readeruser is denied."; missing are
// the privileges the user lacks.
func DeniedMessage(missing Privileges, clusterID int64, user string) string {
	return fmt.Sprintf("%s access to cluster %d for user %s is denied.", actionName(missing), clusterID, user)
}

// DeniedOnPath is the refusal text for a tree path, such as "Write access to
// / for user bob is denied."
func DeniedOnPath(missing Privileges, path, user string) string {
	return fmt.Sprintf("%s access to %s for user %s is denied.", actionName(missing), path, user)
}
