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
		{Name: "getTree", Access: h.treeAccess, Handler: h.getTree},
		{Name: "getAcl", Access: h.onObject(rbac.Read), Handler: h.getACL},
		{Name: "addAcl", Access: h.objectOwner, Handler: h.changeACL(false)},
		{Name: "removeAcl", Access: h.objectOwner, Handler: h.changeACL(true)},
		{Name: "chown", Access: every(superuser("change owners"), h.onObject(0)), Handler: h.chown},
		{Name: "checkAccess", Access: h.onObject(0), Handler: h.checkAccess}, // the answer is the check
	}
}

// treeAccess needs r on the path, except on "/", where every caller sees the
// objects it may read (as getAllClusterInfo leaves out the others).
func (h *tree) treeAccess(ctx context.Context, req *Request) error {
	p, o, err := h.object(ctx, req)
	if err != nil {
		return err
	}
	if o.Path == rbac.RootPath {
		return nil
	}
	return needOnPath(p, req, o.Path, rbac.Read)
}

func (h *tree) getTree(ctx context.Context, req *Request) (Reply, error) {
	clusterIDs := map[string]int64{}
	all, err := h.inventory.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		clusterIDs[rbac.ClusterPath(c.Name)] = c.ID
	}
	p := req.policy
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
	root := item(req.object)
	if req.object.Path == rbac.RootPath {
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

func (h *tree) getACL(_ context.Context, req *Request) (Reply, error) {
	return aclReply(req.policy, req.object), nil
}

// changeACL is addAcl, or removeAcl when remove is set.
func (h *tree) changeACL(remove bool) Handler {
	return func(ctx context.Context, req *Request) (Reply, error) {
		var in struct {
			ACL *string `json:"acl"`
		}
		if err := req.Decode(&in); err != nil {
			return nil, err
		}
		if in.ACL == nil {
			return nil, InvalidRequest("Field 'acl' is required, such as \"user:bob:r-x\".")
		}
		entries, err := rbac.ParseACL(*in.ACL, remove)
		if err != nil {
			return nil, treeError(err)
		}
		path := req.object.Path
		if remove {
			err = h.store.RemoveACL(ctx, path, entries)
		} else {
			err = h.store.AddACL(ctx, path, entries)
		}
		if err != nil {
			return nil, treeError(err)
		}
		return h.currentACL(ctx, path)
	}
}

func (h *tree) chown(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		Path      string `json:"path"`
		UserName  string `json:"owner_user_name"`
		GroupName string `json:"owner_group_name"`
		Recursive bool   `json:"recursive"` // accepted; clusters hold no objects of their own
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.Path == "" {
		return nil, InvalidRequest("Field 'path' is required.")
	}
	if in.UserName == "" && in.GroupName == "" {
		return nil, InvalidRequest("Field 'owner_user_name' or 'owner_group_name' is required.")
	}
	if err := h.store.Chown(ctx, req.object.Path, in.UserName, in.GroupName); err != nil {
		return nil, treeError(err)
	}
	return h.currentACL(ctx, req.object.Path)
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

func (h *tree) checkAccess(_ context.Context, req *Request) (Reply, error) {
	var in struct {
		Privileges string `json:"privileges"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	want, err := rbac.ParsePrivileges(in.Privileges)
	if err != nil {
		return nil, InvalidRequest("Invalid field 'privileges': %s.", err)
	}
	if !req.policy.Privileges(req.Caller, req.object.Path).Has(want) {
		return nil, InvalidRequest("Access to object for user '%s' is not granted.", req.Caller.Name)
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
