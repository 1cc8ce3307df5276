package rpc

import (
	"context"
	"errors"
	"strings"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// Access is an operation's authorization rule, declared beside it in its
// module's table. It runs after authentication and before the handler, so a
// refused request does no work; what it resolves to decide (the cluster, the
// job, the tree object, the user) it leaves on the request for the handler.
type Access func(ctx context.Context, req *Request) error

// anyone lets every caller in: operations open without login, and those
// whose handlers show each caller only what it may read.
func anyone(context.Context, *Request) error { return nil }

// superuser admits members of group admins only; what names the operation in
// the refusal, such as "create users".
func superuser(what string) Access {
	return func(_ context.Context, req *Request) error {
		if req.Caller.IsSuperuser() {
			return nil
		}
		return AccessDenied("Only superusers may %s; user '%s' is not one.", what, req.Caller.Name)
	}
}

// every admits a caller that passes all rules, checked in order.
func every(rules ...Access) Access {
	return func(ctx context.Context, req *Request) error {
		for _, rule := range rules {
			if err := rule(ctx, req); err != nil {
				return err
			}
		}
		return nil
	}
}

// guard makes the rules that consult the access tree.
type guard struct {
	authz     *rbac.Authorizer
	inventory *hosts.Inventory
	jobs      *jobs.Service
}

// policy is the request's access policy, read once per request so that all
// its checks see one version.
func (g *guard) policy(ctx context.Context, req *Request) (*rbac.Policy, error) {
	if req.policy == nil {
		p, err := g.authz.Current(ctx)
		if err != nil {
			return nil, err
		}
		req.policy = p
	}
	return req.policy, nil
}

// onCluster needs privileges on the cluster named by cluster_id or
// cluster_name, which it leaves in req.cluster.
func (g *guard) onCluster(need rbac.Privileges) Access {
	return func(ctx context.Context, req *Request) error {
		var ref clusterRef
		if err := req.Decode(&ref); err != nil {
			return err
		}
		return g.checkCluster(ctx, req, ref, need)
	}
}

// onNamedCluster is onCluster when the request names a cluster; without one
// the handler leaves out what the caller may not read.
func (g *guard) onNamedCluster(need rbac.Privileges) Access {
	return func(ctx context.Context, req *Request) error {
		var ref clusterRef
		if err := req.Decode(&ref); err != nil {
			return err
		}
		if ref.ID == 0 && ref.Name == "" {
			return nil
		}
		return g.checkCluster(ctx, req, ref, need)
	}
}

func (g *guard) checkCluster(ctx context.Context, req *Request, ref clusterRef, need rbac.Privileges) error {
	c, err := findCluster(ctx, g.inventory, ref)
	if err != nil {
		return err
	}
	p, err := g.policy(ctx, req)
	if err != nil {
		return err
	}
	if missing := need &^ p.Privileges(req.Caller, rbac.ClusterPath(c.Name)); missing != 0 {
		return AccessDenied("%s", rbac.DeniedMessage(missing, c.ID, req.Caller.Name))
	}
	req.cluster = c
	return nil
}

// readable is what the caller may do on each cluster; clusters it may not
// read are left out.
func (g *guard) readable(ctx context.Context, req *Request, all []*hosts.Cluster) ([]*hosts.Cluster, []rbac.Privileges, error) {
	p, err := g.policy(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var out []*hosts.Cluster
	var privs []rbac.Privileges
	for _, c := range all {
		if priv := p.Privileges(req.Caller, rbac.ClusterPath(c.Name)); priv.Has(rbac.Read) {
			out = append(out, c)
			privs = append(privs, priv)
		}
	}
	return out, privs, nil
}

// onRoot needs privileges on "/", such as w to register or remove clusters.
func (g *guard) onRoot(ctx context.Context, req *Request, need rbac.Privileges) error {
	p, err := g.policy(ctx, req)
	if err != nil {
		return err
	}
	return needOnPath(p, req, rbac.RootPath, need)
}

// needOnPath refuses the caller unless it has need on the tree path.
func needOnPath(p *rbac.Policy, req *Request, path string, need rbac.Privileges) error {
	if missing := need &^ p.Privileges(req.Caller, path); missing != 0 {
		return AccessDenied("%s", rbac.DeniedOnPath(missing, path, req.Caller.Name))
	}
	return nil
}

// onJob needs privileges on the job named by job_id (or job.job_id): those
// on its cluster; for a job without a cluster, its owner's or a superuser's.
// A caller who may not read the job learns nothing of it: ObjectNotFound.
// The job is left in req.job.
func (g *guard) onJob(need rbac.Privileges) Access {
	return func(ctx context.Context, req *Request) error {
		var in struct {
			JobID int64 `json:"job_id"`
			Job   *struct {
				JobID int64 `json:"job_id"`
			} `json:"job"`
		}
		if err := req.Decode(&in); err != nil {
			return err
		}
		id := in.JobID
		if id == 0 && in.Job != nil {
			id = in.Job.JobID
		}
		if id <= 0 {
			return InvalidRequest("Field 'job_id' must be a positive number.")
		}
		j, err := g.jobs.Get(ctx, id)
		if err != nil {
			return jobError(err, id)
		}
		priv, err := g.jobPrivileges(ctx, req, j)
		if err != nil {
			return err
		}
		if missing := need &^ priv; missing != 0 {
			if !priv.Has(rbac.Read) {
				return NotFound("Job %d was not found.", id)
			}
			return AccessDenied("%s", rbac.DeniedMessage(missing, j.ClusterID, req.Caller.Name))
		}
		req.job = j
		return nil
	}
}

func (g *guard) jobPrivileges(ctx context.Context, req *Request, j *jobs.Job) (rbac.Privileges, error) {
	p, err := g.policy(ctx, req)
	if err != nil {
		return 0, err
	}
	if p.IsSuperuser(req.Caller) {
		return rbac.All, nil
	}
	if j.ClusterID == 0 {
		if j.UserID == req.Caller.ID {
			return rbac.All, nil
		}
		return 0, nil
	}
	c, err := g.inventory.Get(ctx, j.ClusterID)
	if errors.Is(err, hosts.ErrClusterNotFound) {
		return 0, nil // the cluster is gone; its job history stays for superusers
	}
	if err != nil {
		return 0, err
	}
	return p.Privileges(req.Caller, rbac.ClusterPath(c.Name)), nil
}

// onObject needs privileges on the tree object named by path, which it
// leaves in req.object.
func (g *guard) onObject(need rbac.Privileges) Access {
	return func(ctx context.Context, req *Request) error {
		p, o, err := g.object(ctx, req)
		if err != nil {
			return err
		}
		return needOnPath(p, req, o.Path, need)
	}
}

// objectOwner admits the owner of the object named by path and superusers,
// as only the owner of a file may change its ACL.
func (g *guard) objectOwner(ctx context.Context, req *Request) error {
	p, o, err := g.object(ctx, req)
	if err != nil {
		return err
	}
	if o.OwnerUserID == req.Caller.ID || p.IsSuperuser(req.Caller) {
		return nil
	}
	return AccessDenied("Only the owner of %s or a superuser may change its ACL; user '%s' is neither.", o.Path, req.Caller.Name)
}

// object resolves the path field ("/" when absent).
func (g *guard) object(ctx context.Context, req *Request) (*rbac.Policy, *rbac.Object, error) {
	var in struct {
		Path *string `json:"path"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, nil, err
	}
	path := rbac.RootPath
	if in.Path != nil {
		// "/c1/" is "/c1"; "" is the root.
		if path = strings.TrimRight(*in.Path, "/"); path == "" {
			path = rbac.RootPath
		}
	}
	p, err := g.policy(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	o, ok := p.Object(path)
	if !ok {
		return nil, nil, NotFound("Object '%s' was not found.", path)
	}
	req.object = o
	return p, o, nil
}
