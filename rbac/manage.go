package rbac

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// ErrLastAdmin refuses a change that would leave no enabled superuser.
var ErrLastAdmin = errors.New("the last enabled member of group admins cannot be removed, disabled or deleted")

// ErrProtectedGroup refuses deleting the superusers' group.
var ErrProtectedGroup = errors.New("group admins cannot be deleted")

// ErrAlreadyMember and ErrNotMember report membership changes that change nothing.
var (
	ErrAlreadyMember = errors.New("already a member")
	ErrNotMember     = errors.New("not a member")
)

// GroupInUseError refuses deleting a group that still has members.
type GroupInUseError struct {
	Group   string
	Members int
}

func (e *GroupInUseError) Error() string {
	return fmt.Sprintf("group %q has %d member(s)", e.Group, e.Members)
}

// UserUpdate holds the profile fields setUser may change; nil leaves a field as is.
type UserUpdate struct {
	FirstName, LastName, Email, Timezone *string
}

// UpdateUser changes a user's profile.
func (s *Store) UpdateUser(ctx context.Context, id int64, up UserUpdate) error {
	set := map[string]*string{"first_name": up.FirstName, "last_name": up.LastName, "email_address": up.Email, "timezone": up.Timezone}
	for _, col := range []string{"first_name", "last_name", "email_address", "timezone"} {
		v := set[col]
		if v == nil {
			continue
		}
		if len(*v) > 255 {
			return fmt.Errorf("%s is longer than 255 characters", col)
		}
		if _, err := s.db.ExecContext(ctx, "UPDATE users SET "+col+" = ? WHERE user_id = ?", *v, id); err != nil {
			return fmt.Errorf("update user %d: %w", id, err)
		}
	}
	return s.changed(ctx, s.db, UsersChanges)
}

// enabledAdmins counts the enabled members of admins, within tx so that two
// concurrent removals cannot both see one left.
func enabledAdmins(ctx context.Context, tx *stdsql.Tx, exceptUser int64) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users u JOIN group_members m ON m.user_id = u.user_id
		JOIN user_groups g ON g.group_id = m.group_id WHERE g.group_name = ? AND u.disabled = 0 AND u.user_id <> ?`,
		AdminsGroup, exceptUser).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return n, nil
}

// guardLastAdmin refuses a change to user u that would leave no enabled admin.
func guardLastAdmin(ctx context.Context, tx *stdsql.Tx, u *User) error {
	if !u.IsSuperuser() || u.Disabled {
		return nil
	}
	n, err := enabledAdmins(ctx, tx, u.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLastAdmin
	}
	return nil
}

// DeleteUser removes a user, its memberships, keys, sessions, ACL entries and
// ownerships.
func (s *Store) DeleteUser(ctx context.Context, u *User) error {
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := guardLastAdmin(ctx, tx, u); err != nil {
			return err
		}
		for _, q := range []string{"DELETE FROM sessions WHERE user_id = ?", "DELETE FROM sessions WHERE challenge_user_id = ?",
			"DELETE FROM user_keys WHERE user_id = ?", "DELETE FROM group_members WHERE user_id = ?", "DELETE FROM users WHERE user_id = ?"} {
			if _, err := tx.ExecContext(ctx, q, u.ID); err != nil {
				return fmt.Errorf("delete user %d: %w", u.ID, err)
			}
		}
		if err := s.changed(ctx, tx, UsersChanges, SessionsChanges); err != nil {
			return err
		}
		return s.forgetSubject(ctx, tx, KindUser, u.ID)
	})
}

// SetDisabled disables or enables a user; disabling ends its sessions at
// once, enabling ends its login lockouts from every address.
func (s *Store) SetDisabled(ctx context.Context, u *User, disabled bool) error {
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if disabled {
			if err := guardLastAdmin(ctx, tx, u); err != nil {
				return err
			}
			if err := s.endSessions(ctx, tx, u.ID); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, "DELETE FROM login_attempts WHERE user_name = ?", u.Name); err != nil {
			return fmt.Errorf("clear login lockouts of %s: %w", u.Name, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE users SET disabled = ? WHERE user_id = ?", disabled, u.ID); err != nil {
			return fmt.Errorf("disable user %d: %w", u.ID, err)
		}
		return s.changed(ctx, tx, UsersChanges)
	})
}

func (s *Store) endSessions(ctx context.Context, tx *stdsql.Tx, userID int64) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID); err != nil {
		return fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	return s.changed(ctx, tx, SessionsChanges)
}

// SetPasswordHash replaces a user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, id int64, hash string) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE user_id = ?", hash, id); err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	return s.changed(ctx, s.db, UsersChanges)
}

// RecordLogin keeps last_login, or last_failed_login and n_failed_logins.
func (s *Store) RecordLogin(ctx context.Context, id int64, ok bool, at time.Time) error {
	q := "UPDATE users SET last_login = ?, n_failed_logins = 0 WHERE user_id = ?"
	if !ok {
		q = "UPDATE users SET last_failed_login = ?, n_failed_logins = n_failed_logins + 1 WHERE user_id = ?"
	}
	if _, err := s.db.ExecContext(ctx, q, sql.Millis(at), id); err != nil {
		return fmt.Errorf("record login of user %d: %w", id, err)
	}
	return s.changed(ctx, s.db, UsersChanges)
}

// AddToGroup makes a user a member of an existing group.
func (s *Store) AddToGroup(ctx context.Context, u *User, group string) error {
	if u.InGroup(group) {
		return ErrAlreadyMember
	}
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		return s.joinGroup(ctx, tx, u.ID, group, false, s.now())
	})
}

// RemoveFromGroup ends a membership, keeping at least one enabled admin.
func (s *Store) RemoveFromGroup(ctx context.Context, u *User, group string) error {
	if !u.InGroup(group) {
		return ErrNotMember
	}
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if group == AdminsGroup {
			if err := guardLastAdmin(ctx, tx, u); err != nil {
				return err
			}
			// A session opened as a superuser ends with the privilege.
			if err := s.endSessions(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE user_id = ? AND group_id =
			(SELECT group_id FROM user_groups WHERE group_name = ?)`, u.ID, group)
		if err != nil {
			return fmt.Errorf("remove user %d from group %q: %w", u.ID, group, err)
		}
		return s.changed(ctx, tx, UsersChanges, PolicyChanges)
	})
}

// DeleteGroup removes a group that has no members, with its ACL entries and
// ownerships; admins is never removed.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	if name == AdminsGroup {
		return ErrProtectedGroup
	}
	return s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, "SELECT group_id FROM user_groups WHERE group_name = ?", name).Scan(&id)
		if errors.Is(err, stdsql.ErrNoRows) {
			return fmt.Errorf("group %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("look up group %q: %w", name, err)
		}
		var members int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM group_members WHERE group_id = ?", id).Scan(&members); err != nil {
			return fmt.Errorf("count members of %q: %w", name, err)
		}
		if members > 0 {
			return &GroupInUseError{Group: name, Members: members}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM user_groups WHERE group_id = ?", id); err != nil {
			return fmt.Errorf("delete group %q: %w", name, err)
		}
		if err := s.changed(ctx, tx, UsersChanges); err != nil {
			return err
		}
		return s.forgetSubject(ctx, tx, KindGroup, id)
	})
}
