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

// Denied is a refusal in the one wording every refusal uses, the RPC
// contract's: "Execute access to cluster 21 ('db1') for user bob is
// denied." need is what the user lacks (a privilege's name, "Superuser",
// "Owner"), object what it was refused on (ClusterObject, PathObject, or
// another noun phrase such as "user 'alice'").
func Denied(need, object, user string) *DeniedError {
	return &DeniedError{fmt.Sprintf("%s access to %s for user %s is denied.", need, object, user)}
}

// DeniedOn refuses a user the privileges it lacks (missing) on object.
func DeniedOn(missing Privileges, object, user string) *DeniedError {
	return Denied(actionName(missing), object, user)
}

// ClusterObject names a cluster in a refusal: "cluster 21 ('db1')", or by
// what is known of it when the other part must not be revealed.
func ClusterObject(name string, id int64) string {
	switch {
	case id > 0 && name != "":
		return fmt.Sprintf("cluster %d ('%s')", id, name)
	case id > 0:
		return fmt.Sprintf("cluster %d", id)
	}
	return fmt.Sprintf("cluster '%s'", name)
}

// PathObject names an object of the access tree in a refusal: "object '/db1'".
func PathObject(path string) string { return fmt.Sprintf("object '%s'", path) }
