package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rbac/names"
)

// users serves /v2/users. Superusers manage everyone; any user may read
// itself, change its own password (with the old one) and manage its own keys.
type users struct {
	authn    Logins
	hasher   PasswordRules
	sessions *authenticator // the caller's own session, kept on its own password change
	store    UserStore
	policy   policies
}

// UserStore is what /v2/users reads and changes of users, their groups and
// keys (rbac.Store).
type UserStore interface {
	UserByID(ctx context.Context, id int64) (*rbac.User, error)
	UserByName(ctx context.Context, name string) (*rbac.User, error)
	Users(ctx context.Context) ([]*rbac.User, error)
	CreateUser(ctx context.Context, nu rbac.NewUser) (*rbac.User, error)
	UpdateUser(ctx context.Context, id int64, up rbac.UserUpdate) error
	DeleteUser(ctx context.Context, u *rbac.User) error
	SetDisabled(ctx context.Context, u *rbac.User, disabled bool) error
	Groups(ctx context.Context) ([]rbac.Group, error)
	CreateGroup(ctx context.Context, name string) (*rbac.Group, error)
	DeleteGroup(ctx context.Context, name string) error
	AddToGroup(ctx context.Context, u *rbac.User, group string) error
	RemoveFromGroup(ctx context.Context, u *rbac.User, group string) error
	Keys(ctx context.Context, userID int64) ([]*rbac.PublicKey, error)
	AddKey(ctx context.Context, userID int64, name string, key *rbac.PublicKey) error
	DeleteKey(ctx context.Context, userID int64, name, text string) error
}

// Directory is the store of users and of the tree's ACLs (rbac.Store).
type Directory interface {
	UserStore
	ACLStore
}

// PasswordRules hash new passwords and check them against the rules
// (rbac.Hasher).
type PasswordRules interface {
	Hash(password string) (string, error)
	CheckNew(password string) error
}

// operations is the /v2/users table with who may call each. For the
// operations on "itself or a superuser", the caller names the user in "user"
// (itself when absent).
func (h *users) operations() []Operation {
	return []Operation{
		{Name: "whoAmI", ReadOnly: true, Serve: anyone(h.whoAmI)},
		{Name: "getUsers", ReadOnly: true, Serve: anyone(h.getUsers)}, // superusers see all, others themselves
		{Name: "createUser", Serve: superuser(h.createUser)},
		{Name: "setUser", Serve: selfOrSuperuser(h, h.setUser)},
		{Name: "deleteUser", Serve: superuser(h.deleteUser)},
		{Name: "disable", Serve: superuser(h.setDisabled(true))},
		{Name: "enable", Serve: superuser(h.setDisabled(false))},
		{Name: "changePassword", Serve: selfOrSuperuser(h, h.changePassword)}, // itself also with the old password
		{Name: "getKeys", ReadOnly: true, Serve: selfOrSuperuser(h, h.getKeys)},
		{Name: "addKey", Serve: selfOrSuperuser(h, h.addKey)},
		{Name: "deleteKey", Serve: selfOrSuperuser(h, h.deleteKey)},
		{Name: "getGroups", ReadOnly: true, Serve: anyone(h.getGroups)},
		{Name: "createGroup", Serve: superuser(h.createGroup)},
		{Name: "deleteGroup", Serve: superuser(h.deleteGroup)},
		{Name: "addToGroup", Serve: superuser(h.addToGroup)},
		{Name: "removeFromGroup", Serve: superuser(h.removeFromGroup)},
		// The reference's generated client asks before it offers to create:
		// Ok where createUser / createGroup would be allowed.
		{Name: "canCreateUser", ReadOnly: true, Serve: superuser(allowed)},
		{Name: "canCreateGroup", ReadOnly: true, Serve: superuser(allowed)},
	}
}

// allowed answers Ok: its access rule has said all there is to say.
func allowed(context.Context, *Request, *none) (Reply, error) { return done(), nil }

// userRef names a user in a request: {"user": {"user_name": ...}} or by user_id.
type userRef struct {
	ID   int64  `json:"user_id"`
	Name string `json:"user_name"`
}

// userField is the "user" object most /v2/users requests carry.
type userField struct {
	User *userRef `json:"user"`
}

func (r userField) user() *userRef { return r.User }

// userInput is an operation's input that names a user in "user".
type userInput interface{ user() *userRef }

// userProfile is the writable part of a CmonUser in requests.
type userProfile struct {
	userRef
	FirstName *string       `json:"first_name"`
	LastName  *string       `json:"last_name"`
	Email     *string       `json:"email_address"`
	Timezone  *timezoneName `json:"timezone"`
	Groups    []struct {
		Name string `json:"group_name"`
	} `json:"groups"`
	PublicKeys []wireKey `json:"public_keys"`
	// PublicKey is the reference's generated client's other name for
	// public_keys.
	PublicKey []wireKey `json:"public_key"`
	// NewPassword is where the reference's generated client puts a new
	// user's password: never dropped, taken as createUser's new_password.
	NewPassword *string `json:"new_password"`
}

// timezoneName is a user's time zone as requests name it: an IANA name, or
// the CmonTimeZone object replies carry ({"name": "Europe/Berlin", ...}).
type timezoneName string

func (z *timezoneName) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		*z = timezoneName(name)
		return nil
	}
	var obj struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return &json.UnmarshalTypeError{Value: "neither a time zone name nor a CmonTimeZone", Type: reflect.TypeFor[string]()}
	}
	*z = timezoneName(obj.Name)
	return nil
}

// timezone is u's time zone name, nil when the request names none.
func (u *userProfile) timezone() *string {
	if u.Timezone == nil {
		return nil
	}
	name := string(*u.Timezone)
	return &name
}

// target resolves the user a request is about: the named one, or the caller.
func (h *users) target(ctx context.Context, req *Request, ref *userRef) (*rbac.User, error) {
	caller := req.Caller
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
			return nil, deniedOnUser(req, refName(ref))
		}
		return nil, NotFound("User '%s' was not found.", refName(ref))
	}
	return u, err
}

// deniedOnUser refuses the caller an operation on another user: reading
// for a read-only operation, else writing.
func deniedOnUser(req *Request, name string) *Error {
	need := rbac.Write
	if req.readOnly {
		need = rbac.Read
	}
	return denied(rbac.DeniedOn(need, "user '"+name+"'", req.Caller.Name))
}

func refName(ref *userRef) string {
	if ref.Name != "" {
		return ref.Name
	}
	return fmt.Sprint(ref.ID)
}

// selfOrSuperuser resolves the user named in "user" (the caller when absent)
// and refuses callers who are neither it nor a superuser; the handler gets it.
func selfOrSuperuser[In userInput](h *users, next func(context.Context, *Request, *rbac.User, *In) (Reply, error)) Endpoint {
	return anyone(func(ctx context.Context, req *Request, in *In) (Reply, error) {
		u, err := h.target(ctx, req, (*in).user())
		if err != nil {
			return nil, err
		}
		if u.ID != req.Caller.ID && !req.Caller.IsSuperuser() {
			return nil, deniedOnUser(req, refName((*in).user()))
		}
		return next(ctx, req, u, in)
	})
}

// whoAmIReply is whoAmI's: the caller, and what it may do when asked.
type whoAmIReply struct {
	Envelope
	User     wireUser                `json:"user"`
	Extended *wireExtendedPrivileges `json:"user_extended_privileges,omitempty"`
}

type wireExtendedPrivileges struct {
	ClassName         string `json:"class_name"`
	CanCreateClusters bool   `json:"can_create_clusters"`
	CanExecuteJobs    bool   `json:"can_execute_jobs"`
}

func (h *users) whoAmI(ctx context.Context, req *Request, in *struct {
	Extended bool `json:"with_extended_privileges"`
}) (Reply, error) {
	reply := &whoAmIReply{User: renderUser(req.Caller)}
	if in.Extended {
		p, err := h.policy(ctx)
		if err != nil {
			return nil, err
		}
		create := p.Privileges(req.Caller, rbac.RootPath).Has(rbac.Write)
		execute := slices.ContainsFunc(p.Objects(), func(o *rbac.Object) bool {
			return p.Privileges(req.Caller, o.Path).Has(rbac.Execute)
		})
		reply.Extended = &wireExtendedPrivileges{ClassName: "CmonExtendedPrivileges", CanCreateClusters: create, CanExecuteJobs: execute}
	}
	return reply, nil
}

func (h *users) getUsers(ctx context.Context, req *Request, _ *none) (Reply, error) {
	if !req.Caller.IsSuperuser() {
		return &usersReply{Total: 1, Users: []wireUser{renderUser(req.Caller)}}, nil
	}
	all, err := h.store.Users(ctx)
	if err != nil {
		return nil, err
	}
	return &usersReply{Total: len(all), Users: renderList(all, renderUser)}, nil
}

// createUserRequest is createUser's input.
type createUserRequest struct {
	User        *userProfile `json:"user"`
	NewPassword string       `json:"new_password"`
	CreateGroup bool         `json:"create_group"`
}

func (h *users) createUser(ctx context.Context, _ *Request, in *createUserRequest) (Reply, error) {
	if in.User == nil {
		return nil, InvalidRequest("Field 'user' is required: a CmonUser with at least 'user_name'.")
	}
	if err := names.Check(names.User, in.User.Name); err != nil {
		return nil, InvalidRequest("Invalid user name: %s.", err)
	}
	nu := rbac.NewUser{Name: in.User.Name, FirstName: deref(in.User.FirstName), LastName: deref(in.User.LastName),
		Email: deref(in.User.Email), Timezone: deref(in.User.timezone()), CreateGroups: in.CreateGroup}
	if err := validateProfile(in.User); err != nil {
		return nil, err
	}
	password := in.NewPassword
	if p := in.User.NewPassword; p != nil && *p != "" {
		if password != "" && password != *p {
			return nil, InvalidRequest("Fields 'new_password' and 'user.new_password' differ: give the password once.")
		}
		password = *p
	}
	if password != "" {
		hash, err := h.hasher.Hash(password)
		if err != nil {
			return nil, InvalidRequest("Invalid password: %s.", err)
		}
		nu.PasswordHash = hash
	}
	for _, g := range in.User.Groups {
		if err := names.Check(names.Group, g.Name); err != nil {
			return nil, InvalidRequest("Invalid group name: %s.", err)
		}
		nu.Groups = append(nu.Groups, g.Name)
	}
	for _, k := range append(in.User.PublicKeys, in.User.PublicKey...) {
		if strings.TrimSpace(k.Key) == "" {
			continue // clients send {"name":"No Name","key":""} for a user without a key
		}
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
		return nil, storeError(err)
	}
	return &userReply{User: renderUser(u)}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// validateProfile checks the profile fields a request sets.
func validateProfile(u *userProfile) error {
	for field, v := range map[string]*string{"first_name": u.FirstName, "last_name": u.LastName, "email_address": u.Email} {
		if v != nil && len(*v) > 255 {
			return InvalidRequest("Field '%s' is longer than 255 characters.", field)
		}
	}
	if tz := u.timezone(); tz != nil && *tz != "" {
		if _, err := time.LoadLocation(*tz); err != nil {
			return InvalidRequest("Unknown time zone '%s'; use an IANA name such as Europe/Berlin.", *tz)
		}
	}
	return nil
}

// setUserRequest is setUser's input.
type setUserRequest struct {
	User *userProfile `json:"user"`
}

func (r setUserRequest) user() *userRef {
	if r.User == nil {
		return nil
	}
	return &r.User.userRef
}

func (h *users) setUser(ctx context.Context, _ *Request, u *rbac.User, in *setUserRequest) (Reply, error) {
	if in.User == nil {
		return nil, InvalidRequest("Field 'user' is required.")
	}
	if err := validateProfile(in.User); err != nil {
		return nil, err
	}
	if in.User.NewPassword != nil {
		return nil, InvalidRequest("setUser does not change passwords: use changePassword.")
	}
	up := rbac.UserUpdate{FirstName: in.User.FirstName, LastName: in.User.LastName, Email: in.User.Email, Timezone: in.User.timezone()}
	if err := h.store.UpdateUser(ctx, u.ID, up); err != nil {
		return nil, err
	}
	u, err := h.store.UserByID(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &userReply{User: renderUser(u)}, nil
}

// named resolves the user a superuser's request names; the name is required.
func (h *users) named(ctx context.Context, req *Request, in *userField) (*rbac.User, error) {
	if in.User == nil || (in.User.Name == "" && in.User.ID == 0) {
		return nil, InvalidRequest("Field 'user' with 'user_name' or 'user_id' is required.")
	}
	return h.target(ctx, req, in.User)
}

func (h *users) deleteUser(ctx context.Context, req *Request, in *userField) (Reply, error) {
	u, err := h.named(ctx, req, in)
	if err != nil {
		return nil, err
	}
	if err := h.store.DeleteUser(ctx, u); err != nil {
		return nil, storeError(err)
	}
	return done(), nil
}

func (h *users) setDisabled(disabled bool) func(context.Context, *Request, *userField) (Reply, error) {
	return func(ctx context.Context, req *Request, in *userField) (Reply, error) {
		u, err := h.named(ctx, req, in)
		if err != nil {
			return nil, err
		}
		if err := h.store.SetDisabled(ctx, u, disabled); err != nil {
			return nil, storeError(err)
		}
		if u, err = h.store.UserByID(ctx, u.ID); err != nil {
			return nil, err
		}
		return &userReply{User: renderUser(u)}, nil
	}
}

// passwordRequest is changePassword's input.
type passwordRequest struct {
	userField
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

func (h *users) changePassword(ctx context.Context, req *Request, u *rbac.User, in *passwordRequest) (Reply, error) {
	if err := h.hasher.CheckNew(in.NewPassword); err != nil {
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
	// Every other session of the user ends; the one that changed its own
	// password goes on.
	keep := ""
	if u.ID == req.Caller.ID {
		keep = h.sessions.sessionToken(req)
	}
	if err := h.authn.SetPassword(ctx, u, in.NewPassword, keep); err != nil {
		return nil, err
	}
	return done(), nil
}

// storeError maps the user store's refusals to request statuses.
func storeError(err error) error {
	var inUse *rbac.GroupInUseError
	var lookalike *names.LookalikeError
	switch {
	case errors.As(err, &inUse):
		return InvalidRequest("Group '%s' can not be deleted for it has %d member(s).", inUse.Group, inUse.Members)
	case errors.As(err, &lookalike):
		return InvalidRequest("Invalid %s name: %s.", lookalike.Kind, err)
	case errors.Is(err, rbac.ErrLastAdmin), errors.Is(err, rbac.ErrProtectedGroup):
		return InvalidRequest("Refused: %s.", err)
	case errors.Is(err, rbac.ErrNotFound):
		return NotFound("Not found: %s.", err)
	default:
		return err
	}
}
