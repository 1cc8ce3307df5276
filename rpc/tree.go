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
	store ACLStore
}

// ACLStore changes the owners and ACLs of the tree's objects (rbac.Store).
type ACLStore interface {
	AddACL(ctx context.Context, path string, entries []rbac.ACLEntry) error
	RemoveACL(ctx context.Context, path string, entries []rbac.ACLEntry) error
	Chown(ctx context.Context, path, userName, groupName string) error
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

func (h *tree) getTree(ctx context.Context, req *Request, p Policy, top *rbac.Object, _ *pathRef) (Reply, error) {
	clusterIDs := map[string]int64{}
	all, err := h.inventory.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		clusterIDs[rbac.ClusterPath(c.Name)] = c.ID
	}
	item := func(o *rbac.Object) *wireTreeItem {
		out := &wireTreeItem{ClassName: "CmonTreeItem", owners: ownersOf(p, o), ItemName: o.Name(), ItemPath: o.Parent(),
			ItemACL: p.ACL(o), EffectivePrivileges: p.Privileges(req.Caller, o.Path).String(), ItemType: "Folder"}
		if id, ok := clusterIDs[o.Path]; ok {
			out.ItemType, out.ClusterID = "Cluster", id
		}
		return out
	}
	root := item(top)
	if top.Path == rbac.RootPath {
		children := []*wireTreeItem{}
		for _, o := range p.Objects() {
			if o.Path != rbac.RootPath && p.Privileges(req.Caller, o.Path).Has(rbac.Read) {
				children = append(children, item(o))
			}
		}
		root.SubItems = &children
	}
	return &treeReply{CDT: root}, nil
}

// treeReply is getTree's: the object asked for, with its children under "/".
type treeReply struct {
	Envelope
	CDT *wireTreeItem `json:"cdt"`
}

// wireTreeItem is a CmonTreeItem, as s9s's S9sTreeNode reads it.
type wireTreeItem struct {
	ClassName string `json:"class_name"`
	owners
	ItemName            string `json:"item_name"`
	ItemPath            string `json:"item_path"`
	ItemACL             string `json:"item_acl"`
	ItemType            string `json:"item_type"`
	ClusterID           int64  `json:"cluster_id,omitempty"`
	EffectivePrivileges string `json:"effective_privileges"`
	// SubItems are the children of "/", present and maybe empty there only.
	SubItems *[]*wireTreeItem `json:"sub_items,omitempty"`
}

// owners are an object's owner and owning group, by id and name.
type owners struct {
	OwnerUserID    int64  `json:"owner_user_id"`
	OwnerUserName  string `json:"owner_user_name"`
	OwnerGroupID   int64  `json:"owner_group_id"`
	OwnerGroupName string `json:"owner_group_name"`
}

func ownersOf(p Policy, o *rbac.Object) owners {
	return owners{OwnerUserID: o.OwnerUserID, OwnerUserName: p.UserName(o.OwnerUserID),
		OwnerGroupID: o.OwnerGroupID, OwnerGroupName: p.GroupName(o.OwnerGroupID)}
}

// aclReply is getAcl's reply, also sent after every change.
type aclReply struct {
	Envelope
	ObjectName     string `json:"object_name"`
	ObjectPath     string `json:"object_path"`
	OwnerUserName  string `json:"owner_user_name"`
	OwnerGroupName string `json:"owner_group_name"`
	ACL            string `json:"acl"`
}

func aclReplyOf(p Policy, o *rbac.Object) Reply {
	return &aclReply{ObjectName: o.Name(), ObjectPath: o.Parent(), OwnerUserName: p.UserName(o.OwnerUserID),
		OwnerGroupName: p.GroupName(o.OwnerGroupID), ACL: p.ACL(o)}
}

func (h *tree) getACL(_ context.Context, _ *Request, p Policy, o *rbac.Object, _ *pathRef) (Reply, error) {
	return aclReplyOf(p, o), nil
}

// aclRequest is addAcl's and removeAcl's input.
type aclRequest struct {
	pathRef
	ACL *string `json:"acl"`
}

// changeACL is addAcl, or removeAcl when remove is set.
func (h *tree) changeACL(remove bool) func(context.Context, *Request, Policy, *rbac.Object, *aclRequest) (Reply, error) {
	return func(ctx context.Context, _ *Request, _ Policy, o *rbac.Object, in *aclRequest) (Reply, error) {
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

func (h *tree) chown(ctx context.Context, _ *Request, _ Policy, o *rbac.Object, in *chownRequest) (Reply, error) {
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
	p, err := h.policy(ctx)
	if err != nil {
		return nil, err
	}
	o, ok := p.Object(path)
	if !ok {
		return nil, NotFound("Object '%s' was not found.", path)
	}
	return aclReplyOf(p, o), nil
}

// checkRequest is checkAccess's input.
type checkRequest struct {
	pathRef
	Privileges string `json:"privileges"`
}

func (h *tree) checkAccess(_ context.Context, req *Request, p Policy, o *rbac.Object, in *checkRequest) (Reply, error) {
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
	return done(), nil
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
