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

// actionName is how denial messages name a privilege.
func actionName(p Privileges) string {
	switch p {
	case Read:
		return "Read"
	case Write:
		return "Write"
	default:
		return "Execute"
	}
}

// DeniedMessage is the protocol's refusal text, such as "Execute access to
// cluster 21 for user readeruser is denied."
func DeniedMessage(p Privileges, clusterID int64, user string) string {
	return fmt.Sprintf("%s access to cluster %d for user %s is denied.", actionName(p), clusterID, user)
}

// ClusterPrivileges is the default policy until per-cluster ACLs apply:
// superusers and the cluster's owner may do everything, others nothing.
func ClusterPrivileges(u *User, ownerUserID int64) Privileges {
	if u != nil && (u.IsSuperuser() || u.ID == ownerUserID) {
		return All
	}
	return 0
}
