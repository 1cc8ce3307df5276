package rbac

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/cmon-dev/cmon/etc"
	"github.com/cmon-dev/cmon/sql"
)

// Casbin subjects and the superusers' role.
const (
	otherSubject   = "other"
	superuserRole  = "superuser"
	userSubjectPfx = "user:"
	groupSubjPfx   = "group:"
)

func userSubject(id int64) string  { return userSubjectPfx + strconv.FormatInt(id, 10) }
func groupSubject(id int64) string { return groupSubjPfx + strconv.FormatInt(id, 10) }

// actions maps each privilege to its Casbin action.
var actions = []struct {
	bit Privileges
	act string
}{{Read, "r"}, {Write, "w"}, {Execute, "x"}}

// PolicyChanges names the change version of the tree, its ACLs and group
// memberships.
const PolicyChanges = "policy"

// Authorizer decides what users may do with tree objects. It keeps the
// policies of one version of the database in memory and, before each use,
// compares that version with the database's, so that a change made through
// any controller applies to the next request on every controller.
type Authorizer struct {
	db     *sql.DB
	model  model.Model
	policy *sql.Cached[*Policy]
}

// NewAuthorizer parses the shipped Casbin model.
func NewAuthorizer(db *sql.DB) (*Authorizer, error) {
	m, err := model.NewModelFromString(etc.RBACModel)
	if err != nil {
		return nil, fmt.Errorf("parse the access model: %w", err)
	}
	a := &Authorizer{db: db, model: m}
	a.policy = sql.NewCached(db, PolicyChanges, a.load)
	return a, nil
}

// Policy is the access state of one policy version: the tree, the names its
// ACLs mention and a Casbin enforcer over it. It never changes once loaded,
// except for the privileges it caches per user.
type Policy struct {
	enforcer   *casbin.Enforcer
	objects    map[string]*Object
	userNames  map[int64]string
	groupNames map[int64]string

	mu     sync.Mutex
	byUser map[int64]*userPrivileges
}

// userPrivileges is one user's view of a Policy.
type userPrivileges struct {
	superuser bool
	onPath    map[string]Privileges
}

// Current returns the policy of the database's current version, loading it
// when the version moved.
func (a *Authorizer) Current(ctx context.Context) (*Policy, error) {
	return a.policy.Get(ctx)
}

func (a *Authorizer) load(ctx context.Context) (*Policy, error) {
	objects, err := loadObjects(ctx, a.db)
	if err != nil {
		return nil, err
	}
	links, err := a.roleLinks(ctx)
	if err != nil {
		return nil, err
	}
	p, err := a.policyOf(objects, links)
	if err != nil {
		return nil, err
	}
	if p.userNames, err = loadNames(ctx, a.db, "SELECT user_id, user_name FROM users"); err != nil {
		return nil, err
	}
	if p.groupNames, err = loadNames(ctx, a.db, "SELECT group_id, group_name FROM user_groups"); err != nil {
		return nil, err
	}
	return p, nil
}

// policyOf builds the enforcer over objects and role links.
func (a *Authorizer) policyOf(objects map[string]*Object, links [][]string) (*Policy, error) {
	e, err := casbin.NewEnforcer(a.model.Copy())
	if err != nil {
		return nil, fmt.Errorf("start the access enforcer: %w", err)
	}
	if _, err := e.AddPoliciesEx(policyRules(objects)); err != nil {
		return nil, fmt.Errorf("load access policies: %w", err)
	}
	if _, err := e.AddGroupingPoliciesEx(links); err != nil {
		return nil, fmt.Errorf("load group memberships: %w", err)
	}
	return &Policy{enforcer: e, objects: objects, byUser: map[int64]*userPrivileges{}}, nil
}

// roleLinks are the Casbin role links: each user's groups, and the admins
// group's superuser role.
func (a *Authorizer) roleLinks(ctx context.Context) ([][]string, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT m.user_id, m.group_id, g.group_name FROM group_members m
		JOIN user_groups g ON g.group_id = m.group_id`)
	if err != nil {
		return nil, fmt.Errorf("load group memberships: %w", err)
	}
	defer rows.Close()
	var links [][]string
	admins := map[int64]bool{}
	for rows.Next() {
		var userID, groupID int64
		var name string
		if err := rows.Scan(&userID, &groupID, &name); err != nil {
			return nil, fmt.Errorf("load group memberships: %w", err)
		}
		links = append(links, []string{userSubject(userID), groupSubject(groupID)})
		if name == AdminsGroup && !admins[groupID] {
			admins[groupID] = true
			links = append(links, []string{groupSubject(groupID), superuserRole})
		}
	}
	return links, rows.Err()
}

// policyRules turns each object's owner, owning group, named entries and
// other entry into Casbin rules (subject, path, action).
func policyRules(objects map[string]*Object) [][]string {
	var rules [][]string
	add := func(subject, path string, p Privileges) {
		for _, a := range actions {
			if p.Has(a.bit) {
				rules = append(rules, []string{subject, path, a.act})
			}
		}
	}
	for _, o := range objects {
		if o.OwnerUserID != 0 {
			add(userSubject(o.OwnerUserID), o.Path, o.UserPerms)
		}
		if o.OwnerGroupID != 0 {
			add(groupSubject(o.OwnerGroupID), o.Path, o.GroupPerms)
		}
		add(otherSubject, o.Path, o.OtherPerms)
		for _, e := range o.Named {
			if e.Kind == KindUser {
				add(userSubject(e.ID), o.Path, e.Perms)
			} else {
				add(groupSubject(e.ID), o.Path, e.Perms)
			}
		}
	}
	return rules
}

func loadNames(ctx context.Context, db *sql.DB, query string) (map[int64]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("load names: %w", err)
	}
	defer rows.Close()
	names := map[int64]string{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("load names: %w", err)
		}
		names[id] = name
	}
	return names, rows.Err()
}

// privilegesOf computes, once per user and version, what the user may do on
// every path, from Casbin's implicit roles and permissions: one pass over
// the policies instead of one Enforce (itself a pass) per path and action.
func (p *Policy) privilegesOf(userID int64) *userPrivileges {
	p.mu.Lock()
	defer p.mu.Unlock()
	if up := p.byUser[userID]; up != nil {
		return up
	}
	up := &userPrivileges{onPath: map[string]Privileges{}}
	subject := userSubject(userID)
	// Both lookups fail only for a model without "g" or "p", which the
	// shipped model has (tested).
	roles, _ := p.enforcer.GetImplicitRolesForUser(subject)
	up.superuser = slices.Contains(roles, superuserRole)
	for _, s := range append(roles, subject, otherSubject) {
		rules, _ := p.enforcer.GetFilteredPolicy(0, s)
		for _, r := range rules {
			for _, a := range actions {
				if r[2] == a.act {
					up.onPath[r[1]] |= a.bit
				}
			}
		}
	}
	p.byUser[userID] = up
	return up
}

// Privileges is what u may do on the object at path: everything for
// superusers, nothing on a path with no object.
func (p *Policy) Privileges(u *User, path string) Privileges {
	if u == nil {
		return 0
	}
	up := p.privilegesOf(u.ID)
	if up.superuser {
		return All
	}
	return up.onPath[path]
}

// Object is the object at path.
func (p *Policy) Object(path string) (*Object, bool) {
	o, ok := p.objects[path]
	return o, ok
}

// Objects are every object of the tree, sorted by path.
func (p *Policy) Objects() []*Object {
	out := make([]*Object, 0, len(p.objects))
	for _, o := range p.objects {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b *Object) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// UserName is the name of a user the tree mentions, "" for none.
func (p *Policy) UserName(id int64) string { return p.userNames[id] }

// GroupName is the name of a group the tree mentions, "" for none.
func (p *Policy) GroupName(id int64) string { return p.groupNames[id] }

// ACL renders an object's ACL string with names.
func (p *Policy) ACL(o *Object) string {
	entries := []ACLEntry{
		{Kind: KindUser, Perms: o.UserPerms},
		{Kind: KindGroup, Perms: o.GroupPerms},
		{Kind: KindOther, Perms: o.OtherPerms},
	}
	for _, e := range o.Named {
		names := p.userNames
		if e.Kind == KindGroup {
			names = p.groupNames
		}
		entries = append(entries, ACLEntry{Kind: e.Kind, Name: names[e.ID], Perms: e.Perms})
	}
	return FormatACL(entries)
}
