package rpc

import (
	"context"
	"errors"

	"github.com/cmon-dev/cmon/rbac"
)

// tree serves /v2/tree: the access-control tree of "/" and one object per
// cluster, with POSIX-style owners and ACLs.
type tree struct {
	*guard
	store *rbac.Store
}

// operations is the /v2/tree table with what each needs.
func (h *tree) operations() []Operation {
	return []Operation{
		{Name: "getTree", ReadOnly: true, Serve: onListedObject(h.guard, h.getTree)},
		{Name: "getAcl", ReadOnly: true, Serve: onObject(h.guard, rbac.Read, h.getACL)},
		{Name: "addAcl", Serve: objectOwner(h.guard, h.changeACL(false))},
		{Name: "removeAcl", Serve: objectOwner(h.guard, h.changeACL(true))},
		{Name: "chown", Serve: superuserOnly(onObject(h.guard, 0, h.chown))},
		{Name: "checkAccess", ReadOnly: true, Serve: onObject(h.guard, 0, h.checkAccess)}, // the answer is the check
	}
}

func (h *tree) getTree(ctx context.Context, req *Request, p *rbac.Policy, top *rbac.Object, _ *pathRef) (Reply, error) {
	clusterIDs := map[string]int64{}
	all, err := h.inventory.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		clusterIDs[rbac.ClusterPath(c.Name)] = c.ID
	}
	item := func(o *rbac.Object) map[string]any {
		out := ownerFields(p, o)
		out["class_name"] = "CmonTreeItem"
		out["item_name"] = o.Name()
		out["item_path"] = o.Parent()
		out["item_acl"] = p.ACL(o)
		out["effective_privileges"] = p.Privileges(req.Caller, o.Path).String()
		if id, ok := clusterIDs[o.Path]; ok {
			out["item_type"], out["cluster_id"] = "Cluster", id
		} else {
			out["item_type"] = "Folder"
		}
		return out
	}
	root := item(top)
	if top.Path == rbac.RootPath {
		subItems := []map[string]any{}
		for _, o := range p.Objects() {
			if o.Path != rbac.RootPath && p.Privileges(req.Caller, o.Path).Has(rbac.Read) {
				subItems = append(subItems, item(o))
			}
		}
		root["sub_items"] = subItems
	}
	return Reply{"cdt": root}, nil
}

// ownerFields are an object's owner and owning group, by id and name.
func ownerFields(p *rbac.Policy, o *rbac.Object) map[string]any {
	return map[string]any{
		"owner_user_id":    o.OwnerUserID,
		"owner_user_name":  p.UserName(o.OwnerUserID),
		"owner_group_id":   o.OwnerGroupID,
		"owner_group_name": p.GroupName(o.OwnerGroupID),
	}
}

// aclReply is getAcl's reply, also sent after every change.
func aclReply(p *rbac.Policy, o *rbac.Object) Reply {
	return Reply{
		"object_name":      o.Name(),
		"object_path":      o.Parent(),
		"owner_user_name":  p.UserName(o.OwnerUserID),
		"owner_group_name": p.GroupName(o.OwnerGroupID),
		"acl":              p.ACL(o),
	}
}

func (h *tree) getACL(_ context.Context, _ *Request, p *rbac.Policy, o *rbac.Object, _ *pathRef) (Reply, error) {
	return aclReply(p, o), nil
}

// aclRequest is addAcl's and removeAcl's input.
type aclRequest struct {
	pathRef
	ACL *string `json:"acl"`
}

// changeACL is addAcl, or removeAcl when remove is set.
func (h *tree) changeACL(remove bool) func(context.Context, *Request, *rbac.Policy, *rbac.Object, *aclRequest) (Reply, error) {
	return func(ctx context.Context, _ *Request, _ *rbac.Policy, o *rbac.Object, in *aclRequest) (Reply, error) {
		if in.ACL == nil {
			return nil, InvalidRequest("Field 'acl' is required, such as \"user:bob:r-x\".")
		}
		entries, err := rbac.ParseACL(*in.ACL, remove)
		if err != nil {
			return nil, treeError(err)
		}
		if remove {
			err = h.store.RemoveACL(ctx, o.Path, entries)
		} else {
			err = h.store.AddACL(ctx, o.Path, entries)
		}
		if err != nil {
			return nil, treeError(err)
		}
		return h.currentACL(ctx, o.Path)
	}
}

// chownRequest is chown's input.
type chownRequest struct {
	pathRef
	UserName  string `json:"owner_user_name"`
	GroupName string `json:"owner_group_name"`
	Recursive bool   `json:"recursive"` // accepted; clusters hold no objects of their own
}

func (h *tree) chown(ctx context.Context, _ *Request, _ *rbac.Policy, o *rbac.Object, in *chownRequest) (Reply, error) {
	if in.Path == nil || *in.Path == "" {
		return nil, InvalidRequest("Field 'path' is required.")
	}
	if in.UserName == "" && in.GroupName == "" {
		return nil, InvalidRequest("Field 'owner_user_name' or 'owner_group_name' is required.")
	}
	if err := h.store.Chown(ctx, o.Path, in.UserName, in.GroupName); err != nil {
		return nil, treeError(err)
	}
	return h.currentACL(ctx, o.Path)
}

// currentACL answers a change with the object as it now is.
func (h *tree) currentACL(ctx context.Context, path string) (Reply, error) {
	p, err := h.authz.Current(ctx)
	if err != nil {
		return nil, err
	}
	o, ok := p.Object(path)
	if !ok {
		return nil, NotFound("Object '%s' was not found.", path)
	}
	return aclReply(p, o), nil
}

// checkRequest is checkAccess's input.
type checkRequest struct {
	pathRef
	Privileges string `json:"privileges"`
}

func (h *tree) checkAccess(_ context.Context, req *Request, p *rbac.Policy, o *rbac.Object, in *checkRequest) (Reply, error) {
	want, err := rbac.ParsePrivileges(in.Privileges)
	if err != nil {
		return nil, InvalidRequest("Invalid field 'privileges': %s.", err)
	}
	have := p.Privileges(req.Caller, o.Path)
	// Privileges on a cluster the caller may not read serve nothing (see
	// visibleCluster), and telling them would tell that the cluster exists.
	if o.Path != rbac.RootPath && !have.Has(rbac.Read) {
		have = 0
	}
	// Not granted is InvalidRequest, as the reference controller answers.
	if missing := want &^ have; missing != 0 {
		return nil, InvalidRequest("%s", rbac.DeniedOn(missing, rbac.PathObject(o.Path), req.Caller.Name).Message)
	}
	return Reply{}, nil
}

// treeError turns the tree store's refusals into replies.
func treeError(err error) error {
	var aclErr *rbac.ACLError
	var subject *rbac.SubjectError
	switch {
	case errors.As(err, &aclErr):
		return InvalidRequest("Invalid ACL: %s.", aclErr.Msg)
	case errors.As(err, &subject):
		return InvalidRequest("The %s '%s' does not exist.", subject.Kind, subject.Name)
	case errors.Is(err, rbac.ErrObjectNotFound):
		return NotFound("Object was not found.")
	default:
		return err
	}
}
