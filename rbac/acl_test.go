package rbac

import (
	"errors"
	"testing"
)

func TestParsePrivileges(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Privileges
		wantErr bool
	}{
		{name: "positional all", in: "rwx", want: All},
		{name: "positional gap", in: "r-x", want: Read | Execute},
		{name: "positional none", in: "---", want: 0},
		{name: "letters", in: "xr", want: Read | Execute},
		{name: "one letter", in: "w", want: Write},
		{name: "empty", in: "", wantErr: true},
		{name: "repeated letter", in: "rr", wantErr: true},
		{name: "wrong position", in: "x-r", wantErr: true},
		{name: "unknown letter", in: "rwz", wantErr: true},
		{name: "too long", in: "rwxr", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivileges(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Fatalf("ParsePrivileges(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			var aclErr *ACLError
			if err != nil && !errors.As(err, &aclErr) {
				t.Errorf("error %v is not an *ACLError", err)
			}
		})
	}
}

func TestParseACL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		removal bool
		want    string // FormatACL of the result
		wantErr string
	}{
		{name: "full acl in canonical order", in: "other::---,group:ops:rw-,user::rwx,group::r--,user:bob:r-x",
			want: "user::rwx,user:bob:r-x,group::r--,group:ops:rw-,other::---"},
		{name: "short kinds and spaces", in: "u:bob:rx, g::r, o::---", want: "user:bob:r-x,group::r--,other::---"},
		{name: "removal without privileges", in: "user:bob", removal: true, want: "user:bob:---"},
		{name: "privileges required to add", in: "user:bob", wantErr: `ACL entry "user:bob" has no privileges, such as r-x`},
		{name: "empty", in: " ", wantErr: "the ACL is empty"},
		{name: "unknown kind", in: "role:bob:rwx", wantErr: `ACL entry "role:bob:rwx": the kind must be user, group or other`},
		{name: "mask", in: "mask::rwx", wantErr: `ACL entry "mask::rwx": mask entries are not supported`},
		{name: "named other", in: "other:bob:r--", wantErr: `ACL entry "other:bob:r--": other takes no name`},
		{name: "too many fields", in: "user:bob:r:x", wantErr: `ACL entry "user:bob:r:x" must look like user:name:rwx, group::r-x or other::---`},
		{name: "bad privileges", in: "user:bob:rwq", wantErr: `ACL entry "user:bob:rwq": privileges "rwq" must look like rwx, r-x or ---`},
		{name: "duplicate", in: "user:bob:r--,user:bob:rwx", wantErr: `ACL entry "user:bob:rwx" appears twice`},
		{name: "empty entry", in: "user:bob:r--,", wantErr: `ACL entry "" must look like user:name:rwx, group::r-x or other::---`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseACL(tt.in, tt.removal)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := FormatACL(got); s != tt.want {
				t.Errorf("FormatACL = %q, want %q", s, tt.want)
			}
		})
	}
}
