package rpc

import (
	"context"
	"errors"

	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rbac/names"
)

func (h *users) getGroups(ctx context.Context, _ *Request, _ *none) (Reply, error) {
	groups, err := h.store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	return &groupsReply{Total: len(groups), Groups: renderList(groups, renderGroup)}, nil
}

// groupsReply is getGroups'.
type groupsReply struct {
	Envelope
	Total  int         `json:"total"`
	Groups []wireGroup `json:"groups"`
}

// groupReply is the reply about one group.
type groupReply struct {
	Envelope
	Group wireGroup `json:"group"`
}

// groupName names a group as the reference's clients do, in either form:
// {"group": {"group_name": ...}} or a top-level "group_name".
type groupName struct {
	Group *struct {
		Name string `json:"group_name"`
	} `json:"group"`
	Name string `json:"group_name"`
}

// name is the group named, checked; both forms naming different groups are
// refused.
func (in *groupName) name() (string, error) {
	name := in.Name
	if in.Group != nil && in.Group.Name != "" {
		if name != "" && name != in.Group.Name {
			return "", InvalidRequest("Fields 'group_name' and 'group.group_name' name different groups.")
		}
		name = in.Group.Name
	}
	if name == "" {
		return "", InvalidRequest("Field 'group' with 'group_name' (or 'group_name') is required.")
	}
	if err := names.Check(names.Group, name); err != nil {
		return "", InvalidRequest("Invalid group name: %s.", err)
	}
	return name, nil
}

// groupRequest is createGroup's and deleteGroup's input.
type groupRequest struct{ groupName }

func (h *users) createGroup(ctx context.Context, _ *Request, in *groupRequest) (Reply, error) {
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	g, err := h.store.CreateGroup(ctx, name)
	if errors.Is(err, rbac.ErrExists) {
		return nil, InvalidRequest("Group '%s' already exists.", name)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &groupReply{Group: renderGroup(*g)}, nil
}

func (h *users) deleteGroup(ctx context.Context, _ *Request, in *groupRequest) (Reply, error) {
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	if err := h.store.DeleteGroup(ctx, name); err != nil {
		return nil, storeError(err)
	}
	return done(), nil
}

// membershipRequest is addToGroup's and removeFromGroup's input.
type membershipRequest struct {
	groupName
	User *userRef `json:"user"`
}

// membership resolves addToGroup's and removeFromGroup's input.
func (h *users) membership(ctx context.Context, req *Request, in *membershipRequest) (*rbac.User, string, error) {
	group, err := in.name()
	if err != nil {
		return nil, "", err
	}
	if in.User == nil || (in.User.Name == "" && in.User.ID == 0) {
		return nil, "", InvalidRequest("Field 'user' with 'user_name' or 'user_id' is required.")
	}
	u, err := h.target(ctx, req, in.User)
	return u, group, err
}

func (h *users) addToGroup(ctx context.Context, req *Request, in *membershipRequest) (Reply, error) {
	u, group, err := h.membership(ctx, req, in)
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

func (h *users) removeFromGroup(ctx context.Context, req *Request, in *membershipRequest) (Reply, error) {
	u, group, err := h.membership(ctx, req, in)
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
	return &userReply{User: renderUser(u)}, nil
}
