package rbac

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// RootPath is the tree's root: w on it lets a user register and remove clusters.
const RootPath = "/"

// ClusterPath is the tree path of a cluster.
func ClusterPath(name string) string { return RootPath + name }

// Default permissions of new objects (documented in README.md): the owner and
// the owning group may do everything, others nothing.
const (
	defaultUserPerms  = All
	defaultGroupPerms = All
	defaultOtherPerms = Privileges(0)
)

// ErrObjectNotFound is a tree path with no object.
var ErrObjectNotFound = errors.New("object not found")

// SubjectError names a user or group in an ACL or chown that does not exist.
type SubjectError struct{ Kind, Name string }

func (e *SubjectError) Error() string { return fmt.Sprintf("%s %q does not exist", e.Kind, e.Name) }

// Object is one node of the access-control tree.
type Object struct {
	Path         string
	OwnerUserID  int64
	OwnerGroupID int64
	UserPerms    Privileges
	GroupPerms   Privileges
	OtherPerms   Privileges
	Named        []NamedEntry
	Created      time.Time
}

// NamedEntry is an ACL entry for a particular user or group, by id.
type NamedEntry struct {
	Kind  string // KindUser or KindGroup
	ID    int64
	Perms Privileges
}

// Name is the object's last path element, "" for the root.
func (o *Object) Name() string { return o.Path[strings.LastIndex(o.Path, "/")+1:] }

// Parent is the path of the folder holding the object; the root is its own.
func (o *Object) Parent() string {
	i := strings.LastIndex(o.Path, "/")
	if i <= 0 {
		return RootPath
	}
	return o.Path[:i]
}

// EnsureRoot creates "/" owned by admin and group admins unless it exists.
func (s *Store) EnsureRoot(ctx context.Context) error {
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM tree_objects WHERE path = ?", RootPath).Scan(&n); err != nil {
			return fmt.Errorf("look up the tree root: %w", err)
		}
		if n > 0 {
			return nil
		}
		var userID, groupID int64
		err := tx.QueryRowContext(ctx, `SELECT u.user_id, g.group_id FROM users u, user_groups g
			WHERE u.user_name = ? AND g.group_name = ?`, AdminUser, AdminsGroup).Scan(&userID, &groupID)
		if err != nil && !errors.Is(err, stdsql.ErrNoRows) {
			return fmt.Errorf("look up the root's owner: %w", err)
		}
		err = s.insertObject(ctx, tx, RootPath, userID, groupID, s.now())
		if sql.IsUniqueViolation(err) {
			return nil // another controller created it first
		}
		return err
	})
}

func (s *Store) insertObject(ctx context.Context, tx *stdsql.Tx, path string, userID, groupID int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tree_objects (path, owner_user_id, owner_group_id, user_perms,
		group_perms, other_perms, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		path, userID, groupID, defaultUserPerms, defaultGroupPerms, defaultOtherPerms, sql.Millis(now))
	if err != nil {
		return fmt.Errorf("create tree object %q: %w", path, err)
	}
	return s.changed(ctx, tx, PolicyChanges)
}

// CreateObject adds an object with the default permissions, replacing any
// left behind at the same path.
func (s *Store) CreateObject(ctx context.Context, path string, ownerUserID, ownerGroupID int64) error {
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := deleteObject(ctx, tx, path); err != nil {
			return err
		}
		return s.insertObject(ctx, tx, path, ownerUserID, ownerGroupID, s.now())
	})
}

// DeleteObject removes an object and its ACL; a missing one is no error.
func (s *Store) DeleteObject(ctx context.Context, path string) error {
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := deleteObject(ctx, tx, path); err != nil {
			return err
		}
		return s.changed(ctx, tx, PolicyChanges)
	})
}

func deleteObject(ctx context.Context, tx *stdsql.Tx, path string) error {
	for _, q := range []string{"DELETE FROM tree_acl WHERE path = ?", "DELETE FROM tree_objects WHERE path = ?"} {
		if _, err := tx.ExecContext(ctx, q, path); err != nil {
			return fmt.Errorf("delete tree object %q: %w", path, err)
		}
	}
	return nil
}

// AddACL sets the given entries on an object, as setfacl -m does: an entry
// replaces the one for the same user or group.
func (s *Store) AddACL(ctx context.Context, path string, entries []ACLEntry) error {
	return s.changeACL(ctx, path, entries, func(tx *stdsql.Tx, e ACLEntry, id int64) error {
		if e.Name == "" {
			_, err := tx.ExecContext(ctx, "UPDATE tree_objects SET "+baseColumn(e.Kind)+" = ? WHERE path = ?", e.Perms, path)
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM tree_acl WHERE path = ? AND subject_kind = ? AND subject_id = ?",
			path, e.Kind, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO tree_acl (path, subject_kind, subject_id, perms) VALUES (?, ?, ?, ?)",
			path, e.Kind, id, e.Perms)
		return err
	})
}

// RemoveACL takes entries away: a named entry written without privileges
// ("user:bob") goes entirely; with privileges ("user:bob:--x") only those
// privileges go, from named and base entries alike. Base entries themselves
// always stay, as in POSIX.
func (s *Store) RemoveACL(ctx context.Context, path string, entries []ACLEntry) error {
	for _, e := range entries {
		if e.Name == "" && !e.HasPerms {
			return aclErrorf("ACL entry \"%s::\": the entries of the owner, the owning group and other stay; name the privileges to take away, such as %s::-w-", e.Kind, e.Kind)
		}
	}
	return s.changeACL(ctx, path, entries, func(tx *stdsql.Tx, e ACLEntry, id int64) error {
		if e.Name == "" {
			col := baseColumn(e.Kind)
			_, err := tx.ExecContext(ctx, "UPDATE tree_objects SET "+col+" = "+col+" - ("+col+" & ?) WHERE path = ?", e.Perms, path)
			return err
		}
		if !e.HasPerms {
			_, err := tx.ExecContext(ctx, "DELETE FROM tree_acl WHERE path = ? AND subject_kind = ? AND subject_id = ?",
				path, e.Kind, id)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE tree_acl SET perms = perms - (perms & ?)
			WHERE path = ? AND subject_kind = ? AND subject_id = ?`, e.Perms, path, e.Kind, id)
		return err
	})
}

// baseColumn is the tree_objects column of an unnamed entry's kind.
func baseColumn(kind string) string {
	switch kind {
	case KindUser:
		return "user_perms"
	case KindGroup:
		return "group_perms"
	default:
		return "other_perms"
	}
}

// changeACL applies one change per entry in a transaction, after checking
// that the object exists and resolving every named user and group; an unknown
// one changes nothing.
func (s *Store) changeACL(ctx context.Context, path string, entries []ACLEntry,
	apply func(tx *stdsql.Tx, e ACLEntry, id int64) error) error {
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := objectExists(ctx, tx, path); err != nil {
			return err
		}
		ids := make([]int64, len(entries))
		for i, e := range entries {
			if e.Name == "" {
				continue
			}
			id, err := subjectID(ctx, tx, e.Kind, e.Name)
			if err != nil {
				return err
			}
			ids[i] = id
		}
		for i, e := range entries {
			if err := apply(tx, e, ids[i]); err != nil {
				return fmt.Errorf("change the ACL of %q: %w", path, err)
			}
		}
		return s.changed(ctx, tx, PolicyChanges)
	})
}

func objectExists(ctx context.Context, tx *stdsql.Tx, path string) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM tree_objects WHERE path = ?", path).Scan(&n); err != nil {
		return fmt.Errorf("look up tree object %q: %w", path, err)
	}
	if n == 0 {
		return fmt.Errorf("%q: %w", path, ErrObjectNotFound)
	}
	return nil
}

// subjectID resolves a user or group name inside tx.
func subjectID(ctx context.Context, tx *stdsql.Tx, kind, name string) (int64, error) {
	q := "SELECT user_id FROM users WHERE user_name = ?"
	if kind == KindGroup {
		q = "SELECT group_id FROM user_groups WHERE group_name = ?"
	}
	var id int64
	err := tx.QueryRowContext(ctx, q, name).Scan(&id)
	if errors.Is(err, stdsql.ErrNoRows) {
		return 0, &SubjectError{Kind: kind, Name: name}
	}
	if err != nil {
		return 0, fmt.Errorf("look up %s %q: %w", kind, name, err)
	}
	return id, nil
}

// Chown changes an object's owner, owning group or both; an empty name keeps
// that part.
func (s *Store) Chown(ctx context.Context, path, userName, groupName string) error {
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := objectExists(ctx, tx, path); err != nil {
			return err
		}
		for _, part := range []struct{ kind, name, column string }{
			{KindUser, userName, "owner_user_id"}, {KindGroup, groupName, "owner_group_id"},
		} {
			if part.name == "" {
				continue
			}
			id, err := subjectID(ctx, tx, part.kind, part.name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE tree_objects SET "+part.column+" = ? WHERE path = ?", id, path); err != nil {
				return fmt.Errorf("chown %q: %w", path, err)
			}
		}
		return s.changed(ctx, tx, PolicyChanges)
	})
}

// forgetSubject drops a deleted user's or group's named entries and
// ownerships, so that nobody who later gets its id or name inherits them.
func (s *Store) forgetSubject(ctx context.Context, tx *stdsql.Tx, kind string, id int64) error {
	ownerColumn := "owner_user_id"
	if kind == KindGroup {
		ownerColumn = "owner_group_id"
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM tree_acl WHERE subject_kind = ? AND subject_id = ?", kind, id); err != nil {
		return fmt.Errorf("drop ACL entries of %s %d: %w", kind, id, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE tree_objects SET "+ownerColumn+" = 0 WHERE "+ownerColumn+" = ?", id); err != nil {
		return fmt.Errorf("drop ownerships of %s %d: %w", kind, id, err)
	}
	return s.changed(ctx, tx, PolicyChanges)
}

// loadObjects reads the whole tree, named entries included.
func loadObjects(ctx context.Context, db *sql.DB) (map[string]*Object, error) {
	rows, err := db.QueryContext(ctx, `SELECT path, owner_user_id, owner_group_id, user_perms, group_perms,
		other_perms, created FROM tree_objects`)
	if err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	defer rows.Close()
	objects := map[string]*Object{}
	for rows.Next() {
		o := &Object{}
		var created int64
		if err := rows.Scan(&o.Path, &o.OwnerUserID, &o.OwnerGroupID, &o.UserPerms, &o.GroupPerms, &o.OtherPerms, &created); err != nil {
			return nil, fmt.Errorf("load tree: %w", err)
		}
		o.Created = sql.Time(created)
		objects[o.Path] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	acl, err := db.QueryContext(ctx, "SELECT path, subject_kind, subject_id, perms FROM tree_acl ORDER BY path, subject_kind, subject_id")
	if err != nil {
		return nil, fmt.Errorf("load ACLs: %w", err)
	}
	defer acl.Close()
	for acl.Next() {
		var path string
		var e NamedEntry
		if err := acl.Scan(&path, &e.Kind, &e.ID, &e.Perms); err != nil {
			return nil, fmt.Errorf("load ACLs: %w", err)
		}
		if o := objects[path]; o != nil {
			o.Named = append(o.Named, e)
		}
	}
	return objects, acl.Err()
}
