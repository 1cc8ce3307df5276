package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cmon-dev/cmon/rbac"
)

// users serves /v2/users. Superusers manage everyone; any user may read
// itself, change its own password (with the old one) and manage its own keys.
type users struct {
	authn *rbac.Authn
	store *rbac.Store
	authz *rbac.Authorizer
}

// operations is the /v2/users table with who may call each. For the
// operations on "itself or a superuser", the caller names the user in "user"
// (itself when absent).
func (h *users) operations() []Operation {
	return []Operation{
		{Name: "whoAmI", Access: anyone, Handler: h.whoAmI},
		{Name: "getUsers", Access: anyone, Handler: h.getUsers}, // superusers see all, others themselves
		{Name: "createUser", Access: superuser("create users"), Handler: h.createUser},
		{Name: "setUser", Access: h.selfOrSuperuser, Handler: h.setUser},
		{Name: "deleteUser", Access: superuser("delete users"), Handler: h.deleteUser},
		{Name: "disable", Access: superuser("enable or disable users"), Handler: h.setDisabled(true)},
		{Name: "enable", Access: superuser("enable or disable users"), Handler: h.setDisabled(false)},
		{Name: "changePassword", Access: h.selfOrSuperuser, Handler: h.changePassword}, // itself also with the old password
		{Name: "getKeys", Access: h.selfOrSuperuser, Handler: h.getKeys},
		{Name: "addKey", Access: h.selfOrSuperuser, Handler: h.addKey},
		{Name: "deleteKey", Access: h.selfOrSuperuser, Handler: h.deleteKey},
		{Name: "getGroups", Access: anyone, Handler: h.getGroups},
		{Name: "createGroup", Access: superuser("create groups"), Handler: h.createGroup},
		{Name: "deleteGroup", Access: superuser("delete groups"), Handler: h.deleteGroup},
		{Name: "addToGroup", Access: superuser("change group memberships"), Handler: h.addToGroup},
		{Name: "removeFromGroup", Access: superuser("change group memberships"), Handler: h.removeFromGroup},
	}
}

// userRef names a user in a request: {"user": {"user_name": ...}} or by user_id.
type userRef struct {
	ID   int64  `json:"user_id"`
	Name string `json:"user_name"`
}

// wireUser is the writable part of a CmonUser in requests.
type wireUser struct {
	userRef
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
	Email     *string `json:"email_address"`
	Timezone  *string `json:"timezone"`
	Groups    []struct {
		Name string `json:"group_name"`
	} `json:"groups"`
	PublicKeys []wireKey `json:"public_keys"`
}

type wireKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// target resolves the user a request is about: the named one, or the caller.
func (h *users) target(ctx context.Context, caller *rbac.User, ref *userRef) (*rbac.User, error) {
	if ref == nil || (ref.ID == 0 && ref.Name == "") || ref.ID == caller.ID || ref.Name == caller.Name {
		return caller, nil
	}
	var u *rbac.User
	var err error
	if ref.ID != 0 {
		u, err = h.store.UserByID(ctx, ref.ID)
	} else {
		u, err = h.store.UserByName(ctx, ref.Name)
	}
	if errors.Is(err, rbac.ErrNotFound) {
		if !caller.IsSuperuser() {
			// Non-superusers may not probe which users exist.
			return nil, AccessDenied("Access to user '%s' is denied for user '%s'.", refName(ref), caller.Name)
		}
		return nil, NotFound("User '%s' was not found.", refName(ref))
	}
	return u, err
}

func refName(ref *userRef) string {
	if ref.Name != "" {
		return ref.Name
	}
	return fmt.Sprint(ref.ID)
}

// selfOrSuperuser resolves the user named in "user" into req.subject and
// refuses callers who are neither it nor a superuser.
func (h *users) selfOrSuperuser(ctx context.Context, req *Request) error {
	var in struct {
		User *userRef `json:"user"`
	}
	if err := req.Decode(&in); err != nil {
		return err
	}
	u, err := h.target(ctx, req.Caller, in.User)
	if err != nil {
		return err
	}
	if u.ID != req.Caller.ID && !req.Caller.IsSuperuser() {
		return AccessDenied("Access to user '%s' is denied for user '%s'.", u.Name, req.Caller.Name)
	}
	req.subject = u
	return nil
}

func (h *users) whoAmI(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		Extended bool `json:"with_extended_privileges"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	reply := Reply{"user": renderUser(req.Caller)}
	if in.Extended {
		p, err := h.authz.Current(ctx)
		if err != nil {
			return nil, err
		}
		create := p.Privileges(req.Caller, rbac.RootPath).Has(rbac.Write)
		execute := slices.ContainsFunc(p.Objects(), func(o *rbac.Object) bool {
			return p.Privileges(req.Caller, o.Path).Has(rbac.Execute)
		})
		reply["user_extended_privileges"] = map[string]any{
			"class_name": "CmonExtendedPrivileges", "can_create_clusters": create, "can_execute_jobs": execute,
		}
	}
	return reply, nil
}

func (h *users) getUsers(ctx context.Context, req *Request) (Reply, error) {
	if !req.Caller.IsSuperuser() {
		return Reply{"total": 1, "users": []map[string]any{renderUser(req.Caller)}}, nil
	}
	all, err := h.store.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(all))
	for _, u := range all {
		out = append(out, renderUser(u))
	}
	return Reply{"total": len(out), "users": out}, nil
}

func (h *users) createUser(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		User        *wireUser `json:"user"`
		NewPassword string    `json:"new_password"`
		CreateGroup bool      `json:"create_group"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.User == nil {
		return nil, InvalidRequest("Field 'user' is required: a CmonUser with at least 'user_name'.")
	}
	if err := rbac.ValidateName("user", in.User.Name); err != nil {
		return nil, InvalidRequest("Invalid user name: %s.", err)
	}
	nu := rbac.NewUser{Name: in.User.Name, FirstName: deref(in.User.FirstName), LastName: deref(in.User.LastName),
		Email: deref(in.User.Email), Timezone: deref(in.User.Timezone), CreateGroups: in.CreateGroup}
	if err := validateProfile(in.User); err != nil {
		return nil, err
	}
	if in.NewPassword != "" {
		hash, err := h.authn.Hasher().Hash(in.NewPassword)
		if err != nil {
			return nil, InvalidRequest("Invalid password: %s.", err)
		}
		nu.PasswordHash = hash
	}
	for _, g := range in.User.Groups {
		if err := rbac.ValidateName("group", g.Name); err != nil {
			return nil, InvalidRequest("Invalid group name: %s.", err)
		}
		nu.Groups = append(nu.Groups, g.Name)
	}
	for _, k := range in.User.PublicKeys {
		key, err := rbac.ParsePublicKey(k.Key)
		if err != nil {
			return nil, InvalidRequest("Invalid public key '%s': %s.", k.Name, err)
		}
		key.Name = k.Name
		nu.Keys = append(nu.Keys, key)
	}
	u, err := h.store.CreateUser(ctx, nu)
	switch {
	case errors.Is(err, rbac.ErrExists):
		return nil, InvalidRequest("User '%s' already exists.", nu.Name)
	case errors.Is(err, rbac.ErrNotFound):
		return nil, NotFound("Group does not exist: %s; set 'create_group' to create it.", err)
	case err != nil:
		return nil, err
	}
	return Reply{"user": renderUser(u)}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// validateProfile checks the profile fields a request sets.
func validateProfile(u *wireUser) error {
	for field, v := range map[string]*string{"first_name": u.FirstName, "last_name": u.LastName, "email_address": u.Email} {
		if v != nil && len(*v) > 255 {
			return InvalidRequest("Field '%s' is longer than 255 characters.", field)
		}
	}
	if u.Timezone != nil && *u.Timezone != "" {
		if _, err := time.LoadLocation(*u.Timezone); err != nil {
			return InvalidRequest("Unknown time zone '%s'; use an IANA name such as Europe/Berlin.", *u.Timezone)
		}
	}
	return nil
}

func (h *users) setUser(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		User *wireUser `json:"user"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.User == nil {
		return nil, InvalidRequest("Field 'user' is required.")
	}
	u := req.subject
	if err := validateProfile(in.User); err != nil {
		return nil, err
	}
	up := rbac.UserUpdate{FirstName: in.User.FirstName, LastName: in.User.LastName, Email: in.User.Email, Timezone: in.User.Timezone}
	if err := h.store.UpdateUser(ctx, u.ID, up); err != nil {
		return nil, err
	}
	u, err := h.store.UserByID(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return Reply{"user": renderUser(u)}, nil
}

// userOnly decodes {"user": {...}} and resolves it; the name is required.
func (h *users) userOnly(ctx context.Context, req *Request) (*rbac.User, error) {
	var in struct {
		User *userRef `json:"user"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.User == nil || (in.User.Name == "" && in.User.ID == 0) {
		return nil, InvalidRequest("Field 'user' with 'user_name' or 'user_id' is required.")
	}
	return h.target(ctx, req.Caller, in.User)
}

func (h *users) deleteUser(ctx context.Context, req *Request) (Reply, error) {
	u, err := h.userOnly(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := h.store.DeleteUser(ctx, u); err != nil {
		return nil, storeError(err)
	}
	return Reply{}, nil
}

func (h *users) setDisabled(disabled bool) Handler {
	return func(ctx context.Context, req *Request) (Reply, error) {
		u, err := h.userOnly(ctx, req)
		if err != nil {
			return nil, err
		}
		if err := h.store.SetDisabled(ctx, u, disabled); err != nil {
			return nil, storeError(err)
		}
		if u, err = h.store.UserByID(ctx, u.ID); err != nil {
			return nil, err
		}
		return Reply{"user": renderUser(u)}, nil
	}
}

func (h *users) changePassword(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		OldPassword string `json:"old_password"`
		NewPassword string `json:"new_password"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	u := req.subject
	if err := rbac.CheckPasswordInput(in.NewPassword); err != nil {
		return nil, InvalidRequest("Invalid new password: %s.", err)
	}
	// Changing one's own password needs the old one, even for a superuser: a
	// stolen session must not be enough to take the account over.
	if u.ID == req.Caller.ID {
		if in.OldPassword == "" {
			return nil, InvalidRequest("Field 'old_password' is required to change your own password.")
		}
		if _, err := h.authn.Password(ctx, u.Name, in.OldPassword, req.RemoteIP); err != nil {
			if errors.Is(err, rbac.ErrBadCredentials) {
				return nil, AccessDenied("The old password is not correct.")
			}
			return nil, loginError(err)
		}
	}
	if err := h.authn.SetPassword(ctx, u, in.NewPassword); err != nil {
		return nil, err
	}
	return Reply{}, nil
}

func (h *users) getKeys(ctx context.Context, req *Request) (Reply, error) {
	u := req.subject
	keys, err := h.store.Keys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]any{"name": k.Name, "key": k.Text})
	}
	return Reply{"total": len(out), "public_keys": out, "user": renderUser(u)}, nil
}

// keyRequest is addKey's and deleteKey's input.
type keyRequest struct {
	PublicKey *wireKey `json:"public_key"`
}

func (h *users) addKey(ctx context.Context, req *Request) (Reply, error) {
	var in keyRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	u := req.subject
	if in.PublicKey == nil || in.PublicKey.Key == "" {
		return nil, InvalidRequest("Field 'public_key' with 'key' and 'name' is required.")
	}
	key, err := rbac.ParsePublicKey(in.PublicKey.Key)
	if err != nil {
		return nil, InvalidRequest("Invalid public key: %s.", err)
	}
	name := in.PublicKey.Name
	if name == "" {
		name = "No Name"
	}
	if err := h.store.AddKey(ctx, u.ID, name, key); err != nil {
		if errors.Is(err, rbac.ErrExists) {
			return nil, InvalidRequest("User '%s' already has this key.", u.Name)
		}
		return nil, InvalidRequest("Invalid public key: %s.", err)
	}
	return Reply{}, nil
}

func (h *users) deleteKey(ctx context.Context, req *Request) (Reply, error) {
	var in keyRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	u := req.subject
	if in.PublicKey == nil || (in.PublicKey.Key == "" && in.PublicKey.Name == "") {
		return nil, InvalidRequest("Field 'public_key' with 'name' or 'key' is required.")
	}
	err := h.store.DeleteKey(ctx, u.ID, in.PublicKey.Name, in.PublicKey.Key)
	if errors.Is(err, rbac.ErrNotFound) {
		return nil, NotFound("User '%s' has no such key.", u.Name)
	}
	if err != nil {
		return nil, InvalidRequest("Invalid public key: %s.", err)
	}
	return Reply{}, nil
}

func (h *users) getGroups(ctx context.Context, req *Request) (Reply, error) {
	groups, err := h.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, renderGroup(g))
	}
	return Reply{"total": len(out), "groups": out}, nil
}

// groupRequest is {"group": {"group_name": ...}}.
type groupRequest struct {
	Group *struct {
		Name string `json:"group_name"`
	} `json:"group"`
}

func (h *users) groupName(req *Request) (string, error) {
	var in groupRequest
	if err := req.Decode(&in); err != nil {
		return "", err
	}
	if in.Group == nil {
		return "", InvalidRequest("Field 'group' with 'group_name' is required.")
	}
	if err := rbac.ValidateName("group", in.Group.Name); err != nil {
		return "", InvalidRequest("Invalid group name: %s.", err)
	}
	return in.Group.Name, nil
}

func (h *users) createGroup(ctx context.Context, req *Request) (Reply, error) {
	name, err := h.groupName(req)
	if err != nil {
		return nil, err
	}
	g, err := h.store.CreateGroup(ctx, name)
	if errors.Is(err, rbac.ErrExists) {
		return nil, InvalidRequest("Group '%s' already exists.", name)
	}
	if err != nil {
		return nil, err
	}
	return Reply{"group": renderGroup(*g)}, nil
}

func (h *users) deleteGroup(ctx context.Context, req *Request) (Reply, error) {
	name, err := h.groupName(req)
	if err != nil {
		return nil, err
	}
	if err := h.store.DeleteGroup(ctx, name); err != nil {
		return nil, storeError(err)
	}
	return Reply{}, nil
}

// membership decodes addToGroup's and removeFromGroup's input.
func (h *users) membership(ctx context.Context, req *Request) (*rbac.User, string, error) {
	var in struct {
		User  *userRef `json:"user"`
		Group string   `json:"group_name"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, "", err
	}
	if err := rbac.ValidateName("group", in.Group); err != nil {
		return nil, "", InvalidRequest("Invalid group name: %s.", err)
	}
	if in.User == nil || (in.User.Name == "" && in.User.ID == 0) {
		return nil, "", InvalidRequest("Field 'user' with 'user_name' or 'user_id' is required.")
	}
	u, err := h.target(ctx, req.Caller, in.User)
	return u, in.Group, err
}

func (h *users) addToGroup(ctx context.Context, req *Request) (Reply, error) {
	u, group, err := h.membership(ctx, req)
	if err != nil {
		return nil, err
	}
	switch err := h.store.AddToGroup(ctx, u, group); {
	case errors.Is(err, rbac.ErrAlreadyMember):
		return nil, InvalidRequest("User '%s' is already a member of group '%s'.", u.Name, group)
	case errors.Is(err, rbac.ErrNotFound):
		return nil, NotFound("Group '%s' does not exist.", group)
	case err != nil:
		return nil, err
	}
	return h.reloaded(ctx, u)
}

func (h *users) removeFromGroup(ctx context.Context, req *Request) (Reply, error) {
	u, group, err := h.membership(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := h.store.RemoveFromGroup(ctx, u, group); err != nil {
		if errors.Is(err, rbac.ErrNotMember) {
			return nil, InvalidRequest("User '%s' is not a member of group '%s'.", u.Name, group)
		}
		return nil, storeError(err)
	}
	return h.reloaded(ctx, u)
}

func (h *users) reloaded(ctx context.Context, u *rbac.User) (Reply, error) {
	u, err := h.store.UserByID(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return Reply{"user": renderUser(u)}, nil
}

// storeError maps the user store's refusals to request statuses.
func storeError(err error) error {
	var inUse *rbac.GroupInUseError
	switch {
	case errors.As(err, &inUse):
		return InvalidRequest("Group '%s' can not be deleted for it has %d member(s).", inUse.Group, inUse.Members)
	case errors.Is(err, rbac.ErrLastAdmin), errors.Is(err, rbac.ErrProtectedGroup):
		return InvalidRequest("Refused: %s.", err)
	case errors.Is(err, rbac.ErrNotFound):
		return NotFound("Not found: %s.", err)
	default:
		return err
	}
}

// renderUser is the CmonUser wire shape; never a password hash.
func renderUser(u *rbac.User) map[string]any {
	groups := make([]map[string]any, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, renderGroup(g))
	}
	out := map[string]any{
		"class_name":        "CmonUser",
		"cdt_path":          "/",
		"user_id":           u.ID,
		"user_name":         u.Name,
		"first_name":        u.FirstName,
		"last_name":         u.LastName,
		"email_address":     u.Email,
		"origin":            u.Origin,
		"disabled":          u.Disabled,
		"suspended":         u.Suspended,
		"created":           Timestamp(u.Created),
		"last_login":        Timestamp(u.LastLogin),
		"last_failed_login": Timestamp(u.LastFailedLogin),
		"n_failed_logins":   u.NFailedLogins,
		"groups":            groups,
		"timezone":          renderTimezone(u.Timezone),
		"owner_user_id":     u.ID,
		"owner_user_name":   u.Name,
	}
	if len(u.Groups) > 0 {
		out["owner_group_id"], out["owner_group_name"] = u.Groups[0].ID, u.Groups[0].Name
	}
	return out
}

// renderGroup is the CmonGroup wire shape.
func renderGroup(g rbac.Group) map[string]any {
	return map[string]any{
		"class_name": "CmonGroup",
		"cdt_path":   "/groups",
		"group_id":   g.ID,
		"group_name": g.Name,
		"created":    Timestamp(g.Created),
	}
}

// renderTimezone is a CmonTimeZone; offset is in seconds west of UTC, as the
// original controller reports it (CET is -3600).
func renderTimezone(name string) map[string]any {
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc, name = time.UTC, "UTC"
	}
	now := time.Now().In(loc)
	abbrev, offset := now.Zone()
	year := now.Year()
	_, jan := time.Date(year, 1, 1, 0, 0, 0, 0, loc).Zone()
	_, jul := time.Date(year, 7, 1, 0, 0, 0, 0, loc).Zone()
	return map[string]any{"class_name": "CmonTimeZone", "name": name, "abbreviation": abbrev,
		"offset": -offset, "use_dst": jan != jul}
}
