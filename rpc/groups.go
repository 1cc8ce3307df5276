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
	return Reply{"total": len(groups), "groups": renderList(groups, renderGroup)}, nil
}

// groupRequest is {"group": {"group_name": ...}}.
type groupRequest struct {
	Group *struct {
		Name string `json:"group_name"`
	} `json:"group"`
}

func (in *groupRequest) name() (string, error) {
	if in.Group == nil {
		return "", InvalidRequest("Field 'group' with 'group_name' is required.")
	}
	if err := names.Check(names.Group, in.Group.Name); err != nil {
		return "", InvalidRequest("Invalid group name: %s.", err)
	}
	return in.Group.Name, nil
}

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
	return Reply{"group": renderGroup(*g)}, nil
}

func (h *users) deleteGroup(ctx context.Context, _ *Request, in *groupRequest) (Reply, error) {
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	if err := h.store.DeleteGroup(ctx, name); err != nil {
		return nil, storeError(err)
	}
	return Reply{}, nil
}

// membershipRequest is addToGroup's and removeFromGroup's input.
type membershipRequest struct {
	User  *userRef `json:"user"`
	Group string   `json:"group_name"`
}

// membership resolves addToGroup's and removeFromGroup's input.
func (h *users) membership(ctx context.Context, req *Request, in *membershipRequest) (*rbac.User, string, error) {
	if err := names.Check(names.Group, in.Group); err != nil {
		return nil, "", InvalidRequest("Invalid group name: %s.", err)
	}
	if in.User == nil || (in.User.Name == "" && in.User.ID == 0) {
		return nil, "", InvalidRequest("Field 'user' with 'user_name' or 'user_id' is required.")
	}
	u, err := h.target(ctx, req, in.User)
	return u, in.Group, err
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
	return Reply{"user": renderUser(u)}, nil
}
