package rpc

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// Endpoint is an operation's way in: its access rule around its handler. The
// rules below are the only makers of one. Each decodes the request once into
// the handler's typed input, resolves and checks what the caller asks for, and
// hands it to the handler typed, so the compiler ties every lookup to its use
// and a refused request does no work.
type Endpoint func(ctx context.Context, req *Request) (Reply, error)

// none is the input of operations that read no field of their own.
type none struct{}

// decode reads the request into a new In.
func decode[In any](req *Request) (*In, error) {
	in := new(In)
	if _, ok := any(in).(*none); ok {
		return in, nil // readBody has checked the body is a JSON object
	}
	if err := req.Decode(in); err != nil {
		return nil, err
	}
	return in, nil
}

// anyone lets every caller in: operations open without login, and those
// whose handlers show each caller only what it may read.
func anyone[In any](h func(context.Context, *Request, *In) (Reply, error)) Endpoint {
	return func(ctx context.Context, req *Request) (Reply, error) {
		in, err := decode[In](req)
		if err != nil {
			return nil, err
		}
		return h(ctx, req, in)
	}
}

// superuser admits members of group admins only.
func superuser[In any](h func(context.Context, *Request, *In) (Reply, error)) Endpoint {
	return superuserOnly(anyone(h))
}

// superuserOnly puts the superuser check in front of another rule.
func superuserOnly(next Endpoint) Endpoint {
	return func(ctx context.Context, req *Request) (Reply, error) {
		if !req.Caller.IsSuperuser() {
			return nil, denied(rbac.Denied("Superuser", "operation "+req.Operation, req.Caller.Name))
		}
		return next(ctx, req)
	}
}

// denied is a refusal as the client sees it.
func denied(e *rbac.DeniedError) *Error { return AccessDenied("%s", e.Message) }

// guard makes the rules that consult the access tree.
type guard struct {
	policy    policies
	inventory Inventory
	jobs      Jobs
}

// Policy is what rpc reads of one version of the access policy
// (*rbac.Policy).
type Policy interface {
	jobs.Privileger
	Object(path string) (*rbac.Object, bool)
	Objects() []*rbac.Object
	UserName(id int64) string
	GroupName(id int64) string
	ACL(o *rbac.Object) string
}

// Authorizer hands out the access policy of the database's current version
// (*rbac.Authorizer).
type Authorizer interface {
	Current(ctx context.Context) (*rbac.Policy, error)
}

// policies reads the current Policy: an Authorizer's, or a test's own.
type policies func(context.Context) (Policy, error)

func policiesOf(a Authorizer) policies {
	return func(ctx context.Context) (Policy, error) { return a.Current(ctx) }
}

// Inventory reads the clusters (*hosts.Inventory).
type Inventory interface {
	Get(ctx context.Context, id int64) (*hosts.Cluster, error)
	GetByName(ctx context.Context, name string) (*hosts.Cluster, error)
	List(ctx context.Context) ([]*hosts.Cluster, error)
	Snapshot(ctx context.Context) (*hosts.Snapshot, error)
}

// Jobs is the job engine as the access rules and /v2/jobs use it
// (*jobs.Service).
type Jobs interface {
	Registry() *jobs.Registry
	Get(ctx context.Context, id int64) (*jobs.Job, error)
	List(ctx context.Context, f jobs.Filter) ([]*jobs.Job, int, error)
	Log(ctx context.Context, id int64, q jobs.MessageQuery) (*jobs.JobLog, error)
	CreateDraft(ctx context.Context, d *jobs.Draft, req jobs.CreateRequest) (*jobs.Job, error)
	Kill(ctx context.Context, id int64, by string) (*jobs.Job, error)
	Delete(ctx context.Context, id int64) error
	Clone(ctx context.Context, id int64, owner jobs.Owner) (*jobs.Job, error)
	SetStatus(ctx context.Context, id int64, to jobs.Status) (*jobs.Job, error)
}

// withPolicy hands the handler the current access policy, read once per
// request so that all its checks see one version; for operations that show
// each caller only what it may read.
func withPolicy[In any](g *guard, h func(context.Context, *Request, Policy, *In) (Reply, error)) Endpoint {
	return anyone(func(ctx context.Context, req *Request, in *In) (Reply, error) {
		p, err := g.policy(ctx)
		if err != nil {
			return nil, err
		}
		return h(ctx, req, p, in)
	})
}

// clusterRef selects a cluster by id or name.
type clusterRef struct {
	ID   int64  `json:"cluster_id"`
	Name string `json:"cluster_name"`
}

func (r clusterRef) cluster() clusterRef { return r }
func (r clusterRef) named() bool         { return r.ID != 0 || r.Name != "" }

// clusterInput is an operation's input that names a cluster.
type clusterInput interface{ cluster() clusterRef }

func (r clusterRef) label() string {
	if r.ID > 0 {
		return strconv.FormatInt(r.ID, 10)
	}
	return r.Name
}

// findCluster loads the referenced cluster; nil without an error when there
// is none.
func (g *guard) findCluster(ctx context.Context, ref clusterRef) (*hosts.Cluster, error) {
	var c *hosts.Cluster
	var err error
	switch {
	case ref.ID > 0:
		c, err = g.inventory.Get(ctx, ref.ID)
	case ref.Name != "":
		c, err = g.inventory.GetByName(ctx, ref.Name)
	default:
		return nil, InvalidRequest("Field 'cluster_id' or 'cluster_name' is required.")
	}
	if errors.Is(err, hosts.ErrClusterNotFound) {
		return nil, nil
	}
	return c, err
}

// visibleCluster loads the referenced cluster for a caller who will need
// need on it. A cluster the caller may not read and a cluster that does not
// exist get the same refusal, naming the cluster as the caller did, so that
// ids and names reveal nothing; only superusers, who read every cluster, are
// told that one does not exist.
func (g *guard) visibleCluster(ctx context.Context, req *Request, p Policy, ref clusterRef, need rbac.Privileges) (*hosts.Cluster, error) {
	c, err := g.findCluster(ctx, ref)
	switch {
	case err != nil:
		return nil, err
	case c != nil && p.Privileges(req.Caller, rbac.ClusterPath(c.Name)).Has(rbac.Read):
		req.audit.clusterID, req.audit.object = c.ID, rbac.ClusterPath(c.Name)
		return c, nil
	case c == nil && req.Caller.IsSuperuser():
		return nil, NotFound("Cluster was not found.")
	}
	req.audit.object = "cluster:" + ref.label()
	if c != nil {
		req.audit.clusterID = c.ID
	}
	if need == 0 {
		need = rbac.Read
	}
	return nil, denied(rbac.DeniedOn(need, rbac.ClusterObject(ref.Name, ref.ID), req.Caller.Name))
}

// checkCluster loads the referenced cluster and refuses a caller without
// need on it.
func (g *guard) checkCluster(ctx context.Context, req *Request, p Policy, ref clusterRef, need rbac.Privileges) (*hosts.Cluster, error) {
	c, err := g.visibleCluster(ctx, req, p, ref, need)
	if err != nil {
		return nil, err
	}
	if missing := need &^ p.Privileges(req.Caller, rbac.ClusterPath(c.Name)); missing != 0 {
		return nil, denied(rbac.DeniedOn(missing, rbac.ClusterObject(c.Name, c.ID), req.Caller.Name))
	}
	return c, nil
}

// onCluster needs privileges on the cluster named by cluster_id or
// cluster_name.
func onCluster[In clusterInput](g *guard, need rbac.Privileges, h func(context.Context, *Request, Policy, *hosts.Cluster, *In) (Reply, error)) Endpoint {
	return withPolicy(g, func(ctx context.Context, req *Request, p Policy, in *In) (Reply, error) {
		c, err := g.checkCluster(ctx, req, p, (*in).cluster(), need)
		if err != nil {
			return nil, err
		}
		return h(ctx, req, p, c, in)
	})
}

// hostInput is an operation's input that may name its cluster by one of its
// hosts instead.
type hostInput interface {
	clusterInput
	host() string
}

// onHostCluster is onCluster for operations that may name only a host, as
// s9s's maintenance --create --nodes=HOST does: the cluster is the one, of
// those the caller may read, that holds the host. A host in several of them
// is refused, naming them, unless the request names a cluster.
func onHostCluster[In hostInput](g *guard, need rbac.Privileges, h func(context.Context, *Request, Policy, *hosts.Cluster, *In) (Reply, error)) Endpoint {
	return withPolicy(g, func(ctx context.Context, req *Request, p Policy, in *In) (Reply, error) {
		ref := (*in).cluster()
		if host := (*in).host(); !ref.named() && host != "" {
			var err error
			if ref, err = g.clusterOfHost(ctx, req, p, host); err != nil {
				return nil, err
			}
		}
		c, err := g.checkCluster(ctx, req, p, ref, need)
		if err != nil {
			return nil, err
		}
		return h(ctx, req, p, c, in)
	})
}

// clusterOfHost is the one cluster the caller may read that holds host;
// clusters it may not read are not looked at, so a refusal tells nothing of
// them.
func (g *guard) clusterOfHost(ctx context.Context, req *Request, p Policy, host string) (clusterRef, error) {
	all, err := g.inventory.List(ctx)
	if err != nil {
		return clusterRef{}, err
	}
	visible, _ := readable(req, p, all)
	var holding []string
	var ref clusterRef
	for _, c := range visible {
		if hasHost(c, host) {
			ref = clusterRef{ID: c.ID}
			holding = append(holding, rbac.ClusterObject(c.Name, c.ID))
		}
	}
	switch len(holding) {
	case 0:
		return ref, NotFound("Host '%s' is in no cluster you may read.", clip(host, 255))
	case 1:
		return ref, nil
	}
	return ref, InvalidRequest("Host '%s' is in %s: name one with 'cluster_id'.", clip(host, 255), strings.Join(holding, ", "))
}

// onNamedCluster is onCluster when the request names a cluster; without one
// the handler gets a nil cluster and leaves out what the caller may not read.
func onNamedCluster[In clusterInput](g *guard, need rbac.Privileges, h func(context.Context, *Request, Policy, *hosts.Cluster, *In) (Reply, error)) Endpoint {
	return withPolicy(g, func(ctx context.Context, req *Request, p Policy, in *In) (Reply, error) {
		var c *hosts.Cluster
		if ref := (*in).cluster(); ref.named() {
			var err error
			if c, err = g.checkCluster(ctx, req, p, ref, need); err != nil {
				return nil, err
			}
		}
		return h(ctx, req, p, c, in)
	})
}

// readable is what the caller may do on each cluster; clusters it may not
// read are left out.
func readable(req *Request, p Policy, all []*hosts.Cluster) ([]*hosts.Cluster, []rbac.Privileges) {
	var out []*hosts.Cluster
	var privs []rbac.Privileges
	for _, c := range all {
		if priv := p.Privileges(req.Caller, rbac.ClusterPath(c.Name)); priv.Has(rbac.Read) {
			out = append(out, c)
			privs = append(privs, priv)
		}
	}
	return out, privs
}

// needOnPath refuses the caller unless it has need on the tree path.
func needOnPath(p Policy, req *Request, path string, need rbac.Privileges) error {
	if missing := need &^ p.Privileges(req.Caller, path); missing != 0 {
		return denied(rbac.DeniedOn(missing, rbac.PathObject(path), req.Caller.Name))
	}
	return nil
}

// jobRef names a job by job_id, or by job.job_id as some clients send it;
// updateJobInstance sends the new status in job.status.
type jobRef struct {
	JobID int64 `json:"job_id"`
	Job   *struct {
		JobID  int64  `json:"job_id"`
		Status string `json:"status"`
	} `json:"job"`
}

func (r jobRef) job() int64 {
	if r.JobID == 0 && r.Job != nil {
		return r.Job.JobID
	}
	return r.JobID
}

// jobInput is an operation's input that names a job.
type jobInput interface{ job() int64 }

// onJob needs privileges on the job named by job_id (or job.job_id): those
// on its cluster; for a job without a cluster, its owner's or a superuser's.
// A caller who may not read the job learns nothing of it: ObjectNotFound.
func onJob[In jobInput](g *guard, need rbac.Privileges, h func(context.Context, *Request, Policy, *jobs.Job, *In) (Reply, error)) Endpoint {
	return withPolicy(g, func(ctx context.Context, req *Request, p Policy, in *In) (Reply, error) {
		id := (*in).job()
		if id <= 0 {
			return nil, InvalidRequest("Field 'job_id' must be a positive number.")
		}
		req.audit.jobID = id
		j, err := g.jobs.Get(ctx, id)
		if err != nil {
			return nil, jobError(err, id)
		}
		req.audit.clusterID = j.ClusterID
		priv, err := g.jobPrivileges(ctx, req, p, j)
		if err != nil {
			return nil, err
		}
		if missing := need &^ priv; missing != 0 {
			if !priv.Has(rbac.Read) {
				return nil, NotFound("Job %d was not found.", id)
			}
			name := "" // the caller reads the cluster: its name may be told
			if c, err := g.inventory.Get(ctx, j.ClusterID); err == nil {
				name = c.Name
			}
			return nil, denied(rbac.DeniedOn(missing, rbac.ClusterObject(name, j.ClusterID), req.Caller.Name))
		}
		return h(ctx, req, p, j, in)
	})
}

// onJobRun is onJob for operations that make the job run again (clone,
// resume): the caller must also pass the job command's own declaration, as
// at create.
func onJobRun[In jobInput](g *guard, need rbac.Privileges, h func(context.Context, *Request, Policy, *jobs.Job, *In) (Reply, error)) Endpoint {
	return onJob(g, need, func(ctx context.Context, req *Request, p Policy, j *jobs.Job, in *In) (Reply, error) {
		d, err := g.jobs.Registry().DraftOf(j)
		if err != nil {
			return nil, jobError(err, j.ID)
		}
		if err := g.authorizeDraft(ctx, req, p, d, nil); err != nil {
			return nil, err
		}
		return h(ctx, req, p, j, in)
	})
}

// authorizeDraft checks a job draft against its command's declaration; c
// is the cluster draftCluster resolved for the request, if it did, which is
// resolved again only when job_data names another.
func (g *guard) authorizeDraft(ctx context.Context, req *Request, p Policy, d *jobs.Draft, c *hosts.Cluster) error {
	if c == nil || c.ID != d.ClusterID {
		var err error
		if c, err = g.draftCluster(ctx, req, p, d.Command.Access, clusterRef{ID: d.ClusterID}); err != nil {
			return err
		}
	}
	var refusal *rbac.DeniedError
	if err := d.Authorize(p, req.Caller, c); errors.As(err, &refusal) {
		return denied(refusal)
	} else if err != nil {
		return err
	}
	return nil
}

// draftCluster decides where a job command's access is checked and resolves
// the cluster ref names, nil for none. Commands on "/" (removing a cluster)
// are decided there first, as deleting a file needs w on its directory only;
// a refusal on any other cluster the caller may not read reads as one for a
// cluster that does not exist.
func (g *guard) draftCluster(ctx context.Context, req *Request, p Policy, access jobs.Access, ref clusterRef) (*hosts.Cluster, error) {
	if access.OnRoot {
		if err := needOnPath(p, req, rbac.RootPath, access.Need); err != nil {
			return nil, err
		}
	}
	switch {
	case !ref.named():
		return nil, nil
	case !access.OnRoot:
		return g.visibleCluster(ctx, req, p, ref, access.Need)
	}
	c, err := g.findCluster(ctx, ref)
	if err == nil && c == nil {
		err = NotFound("Cluster was not found.")
	}
	return c, err
}

func (g *guard) jobPrivileges(ctx context.Context, req *Request, p Policy, j *jobs.Job) (rbac.Privileges, error) {
	if req.Caller.IsSuperuser() {
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

// pathRef names a tree object by path ("/" when absent).
type pathRef struct {
	Path *string `json:"path"`
}

func (r pathRef) object() string {
	if r.Path == nil {
		return rbac.RootPath
	}
	// "/c1/" is "/c1"; "" is the root.
	if path := strings.TrimRight(*r.Path, "/"); path != "" {
		return path
	}
	return rbac.RootPath
}

// objectInput is an operation's input that names a tree object.
type objectInput interface{ object() string }

// onObject needs privileges on the tree object named by path; a need of 0
// only resolves it.
func onObject[In objectInput](g *guard, need rbac.Privileges, h func(context.Context, *Request, Policy, *rbac.Object, *In) (Reply, error)) Endpoint {
	return withObject(g, func(*Request, Policy, *rbac.Object) (rbac.Privileges, error) { return need, nil }, h)
}

// onListedObject needs r on the object named by path, except on "/", where
// every caller sees the objects it may read (as getAllClusterInfo leaves out
// the others).
func onListedObject[In objectInput](g *guard, h func(context.Context, *Request, Policy, *rbac.Object, *In) (Reply, error)) Endpoint {
	return withObject(g, func(_ *Request, _ Policy, o *rbac.Object) (rbac.Privileges, error) {
		if o.Path == rbac.RootPath {
			return 0, nil
		}
		return rbac.Read, nil
	}, h)
}

// objectOwner admits the owner of the object named by path and superusers,
// as only the owner of a file may change its ACL.
func objectOwner[In objectInput](g *guard, h func(context.Context, *Request, Policy, *rbac.Object, *In) (Reply, error)) Endpoint {
	return withObject(g, func(req *Request, _ Policy, o *rbac.Object) (rbac.Privileges, error) {
		if o.OwnerUserID == req.Caller.ID || req.Caller.IsSuperuser() {
			return 0, nil
		}
		return 0, denied(rbac.Denied("Owner", rbac.PathObject(o.Path), req.Caller.Name))
	}, h)
}

// withObject resolves the object named by path and refuses the caller
// without what need asks on it. As visibleCluster does, it tells only
// superusers that an object does not exist: to anyone else a missing object
// is one owned by nobody and granting nothing, so that it gets the answers
// of an existing object the caller may not read and paths reveal nothing.
func withObject[In objectInput](g *guard, need func(*Request, Policy, *rbac.Object) (rbac.Privileges, error), h func(context.Context, *Request, Policy, *rbac.Object, *In) (Reply, error)) Endpoint {
	return withPolicy(g, func(ctx context.Context, req *Request, p Policy, in *In) (Reply, error) {
		path := (*in).object()
		req.audit.object = path
		o, ok := p.Object(path)
		switch {
		case !ok && req.Caller.IsSuperuser():
			return nil, NotFound("Object '%s' was not found.", path)
		case !ok:
			o = &rbac.Object{Path: path}
		}
		want, err := need(req, p, o)
		if err != nil {
			return nil, err
		}
		if err := needOnPath(p, req, o.Path, want); err != nil {
			return nil, err
		}
		return h(ctx, req, p, o, in)
	})
}
