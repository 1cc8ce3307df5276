// Package rbac holds who may use cmon and what they may do: users, groups,
// passwords, public keys and the access-control policies.
package rbac

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cmon-dev/cmon/rbac/names"
	"github.com/cmon-dev/cmon/sql"
)

// AdminsGroup is the superusers' group: its members pass every access check.
const AdminsGroup = "admins"

// AdminUser is the superuser created on the first start.
const AdminUser = "admin"

// User is a cmon user. The password hash stays inside this package's callers
// that verify logins; replies never carry it.
type User struct {
	ID              int64
	Name            string
	FirstName       string
	LastName        string
	Email           string
	PasswordHash    string
	Origin          string
	Timezone        string
	Disabled        bool
	Suspended       bool
	Created         time.Time
	LastLogin       time.Time
	LastFailedLogin time.Time
	NFailedLogins   int
	Groups          []Group
}

// Group is a named set of users.
type Group struct {
	ID      int64
	Name    string
	Created time.Time
}

// IsSuperuser tells whether the user is in the admins group.
func (u *User) IsSuperuser() bool {
	for _, g := range u.Groups {
		if g.Name == AdminsGroup {
			return true
		}
	}
	return false
}

// InGroup tells whether the user belongs to the named group.
func (u *User) InGroup(name string) bool {
	for _, g := range u.Groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

// Errors the store returns; the RPC layer maps them to request statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Change versions the store bumps: UsersChanges for any change to a user, a
// group or a membership; SessionsChanges when sessions end.
const (
	UsersChanges    = "users"
	SessionsChanges = "sessions"
)

// Store keeps users and groups in the database, and the users looked up
// since the last change in memory.
type Store struct {
	db    *sql.DB
	now   func() time.Time
	known *sql.Cached[*userIndex]
}

// NewStore makes a Store over db.
func NewStore(db *sql.DB) *Store {
	return &Store{db: db, now: time.Now, known: sql.NewCached(db, UsersChanges, newUserIndex)}
}

// maxKnownUsers bounds the users kept in memory between two changes.
const maxKnownUsers = 10000

// userIndex holds users loaded at one users version, by id and by name. The
// users in it are shared: callers read them and never change them.
type userIndex struct {
	mu     sync.RWMutex
	byID   map[int64]*User
	byName map[string]*User
}

func newUserIndex(context.Context) (*userIndex, error) {
	return &userIndex{byID: map[int64]*User{}, byName: map[string]*User{}}, nil
}

func (x *userIndex) find(id int64, name string) *User {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if name != "" {
		return x.byName[name]
	}
	return x.byID[id]
}

func (x *userIndex) add(u *User) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.byID) >= maxKnownUsers {
		clear(x.byID)
		clear(x.byName)
	}
	x.byID[u.ID], x.byName[u.Name] = u, u
}

// changed bumps the versions of what a write changed, through ex: the
// write's transaction, or the database once the write committed.
func (s *Store) changed(ctx context.Context, ex sql.Execer, names ...string) error {
	for _, name := range names {
		if err := s.db.Bump(ctx, ex, name); err != nil {
			return err
		}
	}
	return nil
}

// userSelect loads users with their groups in one statement: one row per
// membership, merged by scanUsers. Checking a session or an inline credential
// costs this one indexed query and no more.
const userSelect = `SELECT u.user_id, u.user_name, u.first_name, u.last_name, u.email_address, u.password_hash,
	u.origin, u.timezone, u.disabled, u.suspended, u.created, u.last_login, u.last_failed_login, u.n_failed_logins,
	g.group_id, g.group_name, g.created
	FROM users u
	LEFT JOIN group_members m ON m.user_id = u.user_id
	LEFT JOIN user_groups g ON g.group_id = m.group_id`

// scanUsers merges userSelect rows into users, in row order; extra receives
// columns selected before the user's (the session's, for example) of the first row.
func scanUsers(rows *stdsql.Rows, extra ...any) ([]*User, error) {
	defer rows.Close()
	var out []*User
	for rows.Next() {
		var u User
		var created, lastLogin, lastFailed int64
		var gid, gcreated stdsql.NullInt64
		var gname stdsql.NullString
		dest := append(append([]any{}, extra...), &u.ID, &u.Name, &u.FirstName, &u.LastName, &u.Email,
			&u.PasswordHash, &u.Origin, &u.Timezone, &u.Disabled, &u.Suspended, &created, &lastLogin, &lastFailed,
			&u.NFailedLogins, &gid, &gname, &gcreated)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != u.ID {
			u.Created, u.LastLogin, u.LastFailedLogin = sql.Time(created), sql.Time(lastLogin), sql.Time(lastFailed)
			out = append(out, &u)
		}
		if gid.Valid {
			last := out[len(out)-1]
			last.Groups = append(last.Groups, Group{ID: gid.Int64, Name: gname.String, Created: sql.Time(gcreated.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan users: %w", err)
	}
	return out, nil
}

// UserByName returns a user and its groups, shared and read-only;
// ErrNotFound when there is none.
func (s *Store) UserByName(ctx context.Context, name string) (*User, error) {
	if name == "" {
		return nil, fmt.Errorf("user: %w", ErrNotFound)
	}
	return s.knownUser(ctx, 0, name)
}

// UserByID returns a user and its groups, shared and read-only; ErrNotFound
// when there is none.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	return s.knownUser(ctx, id, "")
}

// knownUser serves a user from memory while the users version stands.
func (s *Store) knownUser(ctx context.Context, id int64, name string) (*User, error) {
	known, err := s.known.Get(ctx)
	if err != nil {
		return nil, err
	}
	if u := known.find(id, name); u != nil {
		return u, nil
	}
	where, arg := "u.user_id = ?", any(id)
	if name != "" {
		where, arg = "u.user_name = ?", name
	}
	u, err := s.loadUser(ctx, where, arg)
	if err != nil {
		return nil, err
	}
	known.add(u)
	return u, nil
}

func (s *Store) loadUser(ctx context.Context, where string, arg any) (*User, error) {
	rows, err := s.db.QueryContext(ctx, userSelect+" WHERE "+where+" ORDER BY g.group_id", arg)
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	users, err := scanUsers(rows)
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("user: %w", ErrNotFound)
	}
	return users[0], nil
}

// Users lists every user with its groups, by id.
func (s *Store) Users(ctx context.Context) ([]*User, error) {
	rows, err := s.db.QueryContext(ctx, userSelect+" ORDER BY u.user_id, g.group_id")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return scanUsers(rows)
}

// Groups lists every group, by id.
func (s *Store) Groups(ctx context.Context) ([]Group, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT group_id, group_name, created FROM user_groups ORDER BY group_id")
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return scanGroups(rows)
}

func scanGroups(rows *stdsql.Rows) ([]Group, error) {
	defer rows.Close()
	var out []Group
	for rows.Next() {
		var g Group
		var created int64
		if err := rows.Scan(&g.ID, &g.Name, &created); err != nil {
			return nil, fmt.Errorf("scan group: %w", err)
		}
		g.Created = sql.Time(created)
		out = append(out, g)
	}
	return out, rows.Err()
}

// GroupByName loads a group; ErrNotFound when there is none.
func (s *Store) GroupByName(ctx context.Context, name string) (*Group, error) {
	var g Group
	var created int64
	err := s.db.QueryRowContext(ctx, "SELECT group_id, group_name, created FROM user_groups WHERE group_name = ?", name).
		Scan(&g.ID, &g.Name, &created)
	if errors.Is(err, stdsql.ErrNoRows) {
		return nil, fmt.Errorf("group: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load group: %w", err)
	}
	g.Created = sql.Time(created)
	return &g, nil
}

// CreateGroup adds a group; ErrExists when the name is taken.
func (s *Store) CreateGroup(ctx context.Context, name string) (*Group, error) {
	if err := names.Check(names.Group, name); err != nil {
		return nil, err
	}
	return createGroup(ctx, s, s.db, name, s.now())
}

// queryExecer reads and writes: the database or a transaction.
type queryExecer interface {
	sql.Execer
	names.Querier
}

// createGroup adds a group whose name passed names.Check.
func createGroup(ctx context.Context, s *Store, db queryExecer, name string, now time.Time) (*Group, error) {
	if err := names.Unlike(ctx, db, names.Group, name, "SELECT group_name FROM user_groups"); err != nil {
		return nil, err
	}
	res, err := db.ExecContext(ctx, "INSERT INTO user_groups (group_name, created) VALUES (?, ?)", name, sql.Millis(now))
	if sql.IsUniqueViolation(err) {
		return nil, fmt.Errorf("group %q: %w", name, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	if err := s.changed(ctx, db, UsersChanges, PolicyChanges); err != nil {
		return nil, err
	}
	return &Group{ID: id, Name: name, Created: now.UTC()}, nil
}

// NewUser is what CreateUser needs; PasswordHash is already hashed.
type NewUser struct {
	Name, FirstName, LastName, Email, PasswordHash, Timezone string
	// Groups the user joins; missing groups are created when CreateGroups is set.
	Groups       []string
	CreateGroups bool
	// Keys are login keys registered with the user, already parsed.
	Keys []*PublicKey
}

// CreateUser adds a user and its memberships in one transaction, so that a
// failure leaves nothing half-created.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	if err := names.Check(names.User, nu.Name); err != nil {
		return nil, err
	}
	if nu.Timezone == "" {
		nu.Timezone = "UTC"
	}
	now := s.now()
	var id int64
	err := s.db.InTx(ctx, func(tx *stdsql.Tx) error {
		if err := names.Unlike(ctx, tx, names.User, nu.Name, "SELECT user_name FROM users"); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO users (user_name, first_name, last_name, email_address,
			password_hash, timezone, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			nu.Name, nu.FirstName, nu.LastName, nu.Email, nu.PasswordHash, nu.Timezone, sql.Millis(now))
		if sql.IsUniqueViolation(err) {
			return fmt.Errorf("user %q: %w", nu.Name, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if err := s.changed(ctx, tx, UsersChanges, PolicyChanges); err != nil {
			return err
		}
		for _, name := range nu.Groups {
			if err := s.joinGroup(ctx, tx, id, name, nu.CreateGroups, now); err != nil {
				return err
			}
		}
		for _, k := range nu.Keys {
			if err := insertKey(ctx, tx, id, k, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.UserByID(ctx, id)
}

func (s *Store) joinGroup(ctx context.Context, tx *stdsql.Tx, userID int64, group string, create bool, now time.Time) error {
	var groupID int64
	err := tx.QueryRowContext(ctx, "SELECT group_id FROM user_groups WHERE group_name = ?", group).Scan(&groupID)
	switch {
	case errors.Is(err, stdsql.ErrNoRows) && create:
		if err := names.Check(names.Group, group); err != nil {
			return err
		}
		g, err := createGroup(ctx, s, tx, group, now)
		if err != nil {
			return err
		}
		groupID = g.ID
	case errors.Is(err, stdsql.ErrNoRows):
		return fmt.Errorf("group %q: %w", group, ErrNotFound)
	case err != nil:
		return fmt.Errorf("look up group %q: %w", group, err)
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO group_members (user_id, group_id) VALUES (?, ?)", userID, groupID)
	if sql.IsUniqueViolation(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("add user %d to group %q: %w", userID, group, err)
	}
	return s.changed(ctx, tx, UsersChanges, PolicyChanges)
}

// CountUsers tells how many users exist.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// CreateAdmin creates the superuser admin in group admins and tells whether it
// did. When two controllers start on one empty database at once, one creates it
// and the other finds it exists.
func (s *Store) CreateAdmin(ctx context.Context, passwordHash string) (bool, error) {
	_, err := s.CreateUser(ctx, NewUser{Name: AdminUser, FirstName: "Admin", LastName: "User",
		PasswordHash: passwordHash, Groups: []string{AdminsGroup}, CreateGroups: true})
	if errors.Is(err, ErrExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create %s user: %w", AdminUser, err)
	}
	return true, nil
}
