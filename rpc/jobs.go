package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// jobsModule serves /v2/jobs over the job engine.
type jobsModule struct {
	svc       *jobs.Service
	inventory *hosts.Inventory
}

// operations is the /v2/jobs table; beside each, what the caller needs on the
// job's cluster (a job without a cluster: its owner or a superuser).
func (h *jobsModule) operations() []Operation {
	return []Operation{
		{Name: "createJobInstance", Handler: h.create}, // x (and w for commands that redefine the cluster); superuser to register
		{Name: "getJobInstances", Handler: h.list},     // r per cluster; others are left out
		{Name: "getJobInstance", Handler: h.get},       // r
		{Name: "getJobLog", Handler: h.log},            // r
		{Name: "killJobInstance", Handler: h.kill},     // x
		{Name: "deleteJobInstance", Handler: h.delete}, // x
		{Name: "cloneJobInstance", Handler: h.clone},   // x
		{Name: "updateJobInstance", Handler: h.update}, // x
	}
}

// redefining commands change what a cluster is, not only what runs on it.
var redefining = []string{"remove_cluster", "add_node", "remove_node"}

// openCommands run without a cluster and are open to every user.
var openCommands = []string{"success", "fail"}

// clusterlessCommands are the only ones that may run without a cluster.
var clusterlessCommands = []string{"success", "fail", "register_cluster"}

// privilegesOn is what caller may do with jobs of clusterID.
func (h *jobsModule) privilegesOn(ctx context.Context, caller *rbac.User, clusterID, jobOwner int64) (rbac.Privileges, error) {
	if clusterID == 0 {
		if caller.IsSuperuser() || caller.ID == jobOwner {
			return rbac.All, nil
		}
		return 0, nil
	}
	c, err := h.inventory.Get(ctx, clusterID)
	if errors.Is(err, hosts.ErrClusterNotFound) {
		// The cluster is gone; its job history stays for superusers.
		if caller.IsSuperuser() {
			return rbac.All, nil
		}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return rbac.ClusterPrivileges(caller, c.OwnerUserID), nil
}

// authorize loads a job and refuses callers without need on its cluster.
func (h *jobsModule) authorize(ctx context.Context, caller *rbac.User, id int64, need rbac.Privileges) (*jobs.Job, error) {
	if id <= 0 {
		return nil, InvalidRequest("Field 'job_id' must be a positive number.")
	}
	j, err := h.svc.Get(ctx, id)
	if err != nil {
		return nil, jobError(err, id)
	}
	priv, err := h.privilegesOn(ctx, caller, j.ClusterID, j.UserID)
	if err != nil {
		return nil, err
	}
	if !priv.Has(need) {
		if !priv.Has(rbac.Read) {
			return nil, NotFound("Job %d was not found.", id) // do not confirm jobs the caller may not see
		}
		return nil, AccessDenied("%s", rbac.DeniedMessage(need, j.ClusterID, caller.Name))
	}
	return j, nil
}

func jobError(err error, id int64) error {
	var invalid *jobs.InvalidError
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return NotFound("Job %d was not found.", id)
	case errors.As(err, &invalid):
		return InvalidRequest("%s", sentence(invalid.Msg))
	default:
		return err
	}
}

// sentence capitalizes a lower-case error message and ends it with a period.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	out := string(r)
	if !strings.HasSuffix(out, ".") {
		out += "."
	}
	return out
}

// parseTime accepts the protocol's timestamp and plain RFC 3339.
func parseTime(field, s string) (time.Time, error) {
	for _, layout := range []string{TimeFormat, time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, InvalidRequest("Field '%s' must be a time such as 2026-01-02T15:04:05.000Z.", field)
}

func (h *jobsModule) create(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		clusterRef
		Job *struct {
			Title      string     `json:"title"`
			Spec       *jobs.Spec `json:"job_spec"`
			Tags       []string   `json:"tags"`
			Scheduled  string     `json:"scheduled"`
			Recurrence string     `json:"recurrence"`
			TimeZone   string     `json:"time_zone"`
		} `json:"job"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.Job == nil || in.Job.Spec == nil || in.Job.Spec.Command == "" {
		return nil, InvalidRequest("Field 'job' with 'job_spec.command' is required.")
	}
	cmd, ok := h.svc.Registry().Lookup(in.Job.Spec.Command)
	if !ok {
		return nil, InvalidRequest("Unknown job command '%s'.", in.Job.Spec.Command)
	}
	command := cmd.Name
	if in.ID == 0 && in.Name == "" {
		// The seed's stop example names its cluster in job_data too: take it
		// from there, so access checks and per-cluster exclusivity apply.
		in.ID = clusterInJobData(in.Job.Spec.JobData)
	}
	caller := req.Caller
	var clusterID int64
	if in.ID > 0 || in.Name != "" {
		c, err := findCluster(ctx, h.inventory, in.clusterRef)
		if err != nil {
			return nil, err
		}
		clusterID = c.ID
		priv := rbac.ClusterPrivileges(caller, c.OwnerUserID)
		need := rbac.Execute
		if slices.Contains(redefining, command) {
			need |= rbac.Write
		}
		if !priv.Has(need) {
			missing := rbac.Execute
			if priv.Has(rbac.Execute) {
				missing = rbac.Write
			}
			return nil, AccessDenied("%s", rbac.DeniedMessage(missing, c.ID, caller.Name))
		}
	} else if !slices.Contains(clusterlessCommands, command) {
		return nil, InvalidRequest("Job command '%s' needs a cluster: set 'cluster_id' or 'cluster_name'.", command)
	} else if !caller.IsSuperuser() && !slices.Contains(openCommands, command) {
		return nil, AccessDenied("Only superusers may run '%s'; user '%s' is not one.", command, caller.Name)
	}
	cr := jobs.CreateRequest{ClusterID: clusterID, Title: in.Job.Title, Command: in.Job.Spec.Command,
		JobData: in.Job.Spec.JobData, Tags: in.Job.Tags, Recurrence: in.Job.Recurrence, TimeZone: in.Job.TimeZone,
		Owner: owner(caller, req.RemoteIP)}
	if cr.TimeZone == "" && cr.Recurrence != "" {
		cr.TimeZone = caller.Timezone
	}
	if in.Job.Scheduled != "" {
		t, err := parseTime("job.scheduled", in.Job.Scheduled)
		if err != nil {
			return nil, err
		}
		cr.Scheduled = t
	}
	j, err := h.svc.Create(ctx, cr)
	if err != nil {
		return nil, jobError(err, 0)
	}
	return Reply{"job": j}, nil
}

// clusterInJobData reads job_data.clusterid or job_data.cluster_id, 0 if neither.
func clusterInJobData(data json.RawMessage) int64 {
	var d struct {
		ClusterID  int64 `json:"clusterid"`
		ClusterID2 int64 `json:"cluster_id"`
	}
	if json.Unmarshal(data, &d) != nil {
		return 0
	}
	return max(d.ClusterID, d.ClusterID2)
}

func owner(u *rbac.User, ip string) jobs.Owner {
	o := jobs.Owner{UserID: u.ID, UserName: u.Name, IPAddress: ip}
	if len(u.Groups) > 0 {
		o.GroupID, o.GroupName = u.Groups[0].ID, u.Groups[0].Name
	}
	return o
}

// showFlags map getJobInstances' show_* switches to statuses.
var showFlags = map[string][]jobs.Status{
	"show_defined":   {jobs.StatusDefined},
	"show_running":   {jobs.StatusDequeued, jobs.StatusRunning},
	"show_finished":  {jobs.StatusFinished},
	"show_failed":    {jobs.StatusFailed},
	"show_aborted":   {jobs.StatusAborted},
	"show_scheduled": {jobs.StatusScheduled, jobs.StatusPaused},
}

func (h *jobsModule) list(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		clusterRef
		Limit  int      `json:"limit"`
		Offset int      `json:"offset"`
		Tags   []string `json:"tags"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	f := jobs.Filter{Limit: in.Limit, Offset: in.Offset, Tags: in.Tags}
	for flag, statuses := range showFlags {
		var on bool
		if raw, ok := req.fields[flag]; ok {
			if err := json.Unmarshal(raw, &on); err != nil {
				return nil, InvalidRequest("Field '%s' must be a boolean.", flag)
			}
		}
		if on {
			f.Statuses = append(f.Statuses, statuses...)
		}
	}
	switch {
	case in.ID > 0 || in.Name != "":
		c, err := findCluster(ctx, h.inventory, in.clusterRef)
		if err != nil {
			return nil, err
		}
		if !rbac.ClusterPrivileges(req.Caller, c.OwnerUserID).Has(rbac.Read) {
			return nil, AccessDenied("%s", rbac.DeniedMessage(rbac.Read, c.ID, req.Caller.Name))
		}
		f.ClusterIDs = []int64{c.ID}
	case !req.Caller.IsSuperuser():
		all, err := h.inventory.List(ctx)
		if err != nil {
			return nil, err
		}
		f.ClusterIDs = []int64{-1} // matches nothing when no cluster is readable
		for _, c := range all {
			if rbac.ClusterPrivileges(req.Caller, c.OwnerUserID).Has(rbac.Read) {
				f.ClusterIDs = append(f.ClusterIDs, c.ID)
			}
		}
	}
	list, total, err := h.svc.List(ctx, f)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []*jobs.Job{}
	}
	return Reply{"total": total, "jobs": list}, nil
}

// jobID decodes the job_id field.
func jobID(req *Request) (int64, error) {
	var in struct {
		JobID int64 `json:"job_id"`
	}
	if err := req.Decode(&in); err != nil {
		return 0, err
	}
	return in.JobID, nil
}

func (h *jobsModule) get(ctx context.Context, req *Request) (Reply, error) {
	id, err := jobID(req)
	if err != nil {
		return nil, err
	}
	j, err := h.authorize(ctx, req.Caller, id, rbac.Read)
	if err != nil {
		return nil, err
	}
	return Reply{"job": j, "total": 1}, nil
}

func (h *jobsModule) log(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		JobID     int64 `json:"job_id"`
		Ascending *bool `json:"ascending"`
		Limit     *int  `json:"limit"`
		Offset    int   `json:"offset"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := h.authorize(ctx, req.Caller, in.JobID, rbac.Read); err != nil {
		return nil, err
	}
	q := jobs.MessageQuery{Ascending: in.Ascending == nil || *in.Ascending, Limit: -1, Offset: in.Offset}
	if in.Limit != nil {
		q.Limit = *in.Limit
	}
	l, err := h.svc.Log(ctx, in.JobID, q)
	if err != nil {
		return nil, jobError(err, in.JobID)
	}
	messages := l.Messages
	if messages == nil {
		messages = []jobs.Message{}
	}
	return Reply{"job": l.Job, "messages": messages, "total": l.Total}, nil
}

func (h *jobsModule) kill(ctx context.Context, req *Request) (Reply, error) {
	id, err := jobID(req)
	if err != nil {
		return nil, err
	}
	if _, err := h.authorize(ctx, req.Caller, id, rbac.Execute); err != nil {
		return nil, err
	}
	j, err := h.svc.Kill(ctx, id, req.Caller.Name)
	if err != nil {
		return nil, jobError(err, id)
	}
	return Reply{"job": j}, nil
}

func (h *jobsModule) delete(ctx context.Context, req *Request) (Reply, error) {
	id, err := jobID(req)
	if err != nil {
		return nil, err
	}
	if _, err := h.authorize(ctx, req.Caller, id, rbac.Execute); err != nil {
		return nil, err
	}
	if err := h.svc.Delete(ctx, id); err != nil {
		return nil, jobError(err, id)
	}
	return Reply{}, nil
}

func (h *jobsModule) clone(ctx context.Context, req *Request) (Reply, error) {
	id, err := jobID(req)
	if err != nil {
		return nil, err
	}
	if _, err := h.authorize(ctx, req.Caller, id, rbac.Execute); err != nil {
		return nil, err
	}
	j, err := h.svc.Clone(ctx, id, owner(req.Caller, req.RemoteIP))
	if err != nil {
		return nil, jobError(err, id)
	}
	return Reply{"job": j}, nil
}

func (h *jobsModule) update(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		Job *struct {
			JobID  int64  `json:"job_id"`
			Status string `json:"status"`
		} `json:"job"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.Job == nil {
		return nil, InvalidRequest("Field 'job' with 'job_id' and 'status' is required.")
	}
	status, err := jobs.ParseStatus(in.Job.Status)
	if err != nil || (status != jobs.StatusPaused && status != jobs.StatusScheduled) {
		return nil, InvalidRequest("Field 'job.status' must be PAUSED or SCHEDULED.")
	}
	if _, err := h.authorize(ctx, req.Caller, in.Job.JobID, rbac.Execute); err != nil {
		return nil, err
	}
	j, err := h.svc.SetStatus(ctx, in.Job.JobID, status)
	if err != nil {
		return nil, jobError(err, in.Job.JobID)
	}
	return Reply{"job": j}, nil
}
