package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// jobsModule serves /v2/jobs over the job engine.
type jobsModule struct{ *guard }

// operations is the /v2/jobs table with what each needs. A job's privileges
// are those on its cluster; on a job without a cluster, its owner and
// superusers have them all.
func (h *jobsModule) operations() []Operation {
	return []Operation{
		{Name: "createJobInstance", Access: h.createAccess, Handler: h.create},
		{Name: "getJobInstances", Access: h.onNamedCluster(rbac.Read), Handler: h.list}, // else r per cluster; others are left out
		{Name: "getJobInstance", Access: h.onJob(rbac.Read), Handler: h.get},
		{Name: "getJobLog", Access: h.onJob(rbac.Read), Handler: h.log},
		{Name: "killJobInstance", Access: h.onJob(rbac.Execute), Handler: h.kill},
		{Name: "deleteJobInstance", Access: h.onJob(rbac.Execute), Handler: h.delete},
		{Name: "cloneJobInstance", Access: h.onJob(rbac.Execute), Handler: h.clone},
		{Name: "updateJobInstance", Access: h.onJob(rbac.Execute), Handler: h.update},
	}
}

// What createJobInstance needs besides x on the job's cluster: redefining
// commands change what a cluster is, and need w too; registering and
// removing clusters need w on "/"; the open commands need nothing.
var (
	redefining   = []string{"add_node", "remove_node"}
	onRoot       = []string{"register_cluster", "remove_cluster"}
	openCommands = []string{"success", "fail"}
	// clusterlessCommands are the only ones that may run without a cluster.
	clusterlessCommands = []string{"success", "fail", "register_cluster"}
)

// jobRequest is createJobInstance's input.
type jobRequest struct {
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

// decodeJobRequest reads and checks createJobInstance's input and names the
// command's registry entry.
func (h *jobsModule) decodeJobRequest(req *Request) (*jobRequest, string, error) {
	var in jobRequest
	if err := req.Decode(&in); err != nil {
		return nil, "", err
	}
	if in.Job == nil || in.Job.Spec == nil || in.Job.Spec.Command == "" {
		return nil, "", InvalidRequest("Field 'job' with 'job_spec.command' is required.")
	}
	cmd, ok := h.jobs.Registry().Lookup(in.Job.Spec.Command)
	if !ok {
		return nil, "", InvalidRequest("Unknown job command '%s'.", in.Job.Spec.Command)
	}
	if in.ID == 0 && in.Name == "" {
		// The seed's stop example names its cluster in job_data too: take it
		// from there, so access checks and per-cluster exclusivity apply.
		in.ID = clusterInJobData(in.Job.Spec.JobData)
	}
	return &in, cmd.Name, nil
}

// createAccess is createJobInstance's rule: x on the job's cluster, and w for
// redefining commands; w on "/" to register or remove clusters (and only
// superusers choose the key file cmon reads for a new cluster); nothing for
// the open commands.
func (h *jobsModule) createAccess(ctx context.Context, req *Request) error {
	in, command, err := h.decodeJobRequest(req)
	if err != nil {
		return err
	}
	named := in.ID > 0 || in.Name != ""
	switch {
	case slices.Contains(onRoot, command):
		if err := h.onRoot(ctx, req, rbac.Write); err != nil {
			return err
		}
		if command == "register_cluster" && !req.Caller.IsSuperuser() && hasKeyFile(in.Job.Spec.JobData) {
			return AccessDenied("Only superusers may set 'ssh_keyfile'; user '%s' is not one.", req.Caller.Name)
		}
		if !named {
			return nil
		}
		c, err := findCluster(ctx, h.inventory, in.clusterRef)
		req.cluster = c
		return err
	case named:
		need := rbac.Execute
		if slices.Contains(redefining, command) {
			need |= rbac.Write
		}
		return h.checkCluster(ctx, req, in.clusterRef, need)
	case !slices.Contains(clusterlessCommands, command):
		return InvalidRequest("Job command '%s' needs a cluster: set 'cluster_id' or 'cluster_name'.", command)
	case !slices.Contains(openCommands, command):
		return AccessDenied("Only superusers may run '%s'; user '%s' is not one.", command, req.Caller.Name)
	}
	return nil
}

// hasKeyFile tells whether job_data names an ssh_keyfile.
func hasKeyFile(data json.RawMessage) bool {
	var d struct {
		KeyFile string `json:"ssh_keyfile"`
	}
	return json.Unmarshal(data, &d) == nil && d.KeyFile != ""
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
	in, _, err := h.decodeJobRequest(req)
	if err != nil {
		return nil, err
	}
	caller := req.Caller
	cr := jobs.CreateRequest{Title: in.Job.Title, Command: in.Job.Spec.Command,
		JobData: in.Job.Spec.JobData, Tags: in.Job.Tags, Recurrence: in.Job.Recurrence, TimeZone: in.Job.TimeZone,
		Owner: owner(caller, req.RemoteIP)}
	if req.cluster != nil {
		cr.ClusterID = req.cluster.ID
	}
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
	j, err := h.jobs.Create(ctx, cr)
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
	case req.cluster != nil:
		f.ClusterIDs = []int64{req.cluster.ID}
	default:
		p, err := h.policy(ctx, req)
		if err != nil {
			return nil, err
		}
		if p.IsSuperuser(req.Caller) {
			break
		}
		all, err := h.inventory.List(ctx)
		if err != nil {
			return nil, err
		}
		visible, _, err := h.readable(ctx, req, all)
		if err != nil {
			return nil, err
		}
		f.ClusterIDs = []int64{-1} // matches nothing when no cluster is readable
		for _, c := range visible {
			f.ClusterIDs = append(f.ClusterIDs, c.ID)
		}
	}
	list, total, err := h.jobs.List(ctx, f)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []*jobs.Job{}
	}
	return Reply{"total": total, "jobs": list}, nil
}

// The handlers below act on req.job, the job their access rule checked.

func (h *jobsModule) get(_ context.Context, req *Request) (Reply, error) {
	return Reply{"job": req.job, "total": 1}, nil
}

func (h *jobsModule) log(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		Ascending *bool `json:"ascending"`
		Limit     *int  `json:"limit"`
		Offset    int   `json:"offset"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	q := jobs.MessageQuery{Ascending: in.Ascending == nil || *in.Ascending, Limit: -1, Offset: in.Offset}
	if in.Limit != nil {
		q.Limit = *in.Limit
	}
	id := req.job.ID
	l, err := h.jobs.Log(ctx, id, q)
	if err != nil {
		return nil, jobError(err, id)
	}
	messages := l.Messages
	if messages == nil {
		messages = []jobs.Message{}
	}
	return Reply{"job": l.Job, "messages": messages, "total": l.Total}, nil
}

func (h *jobsModule) kill(ctx context.Context, req *Request) (Reply, error) {
	j, err := h.jobs.Kill(ctx, req.job.ID, req.Caller.Name)
	if err != nil {
		return nil, jobError(err, req.job.ID)
	}
	return Reply{"job": j}, nil
}

func (h *jobsModule) delete(ctx context.Context, req *Request) (Reply, error) {
	if err := h.jobs.Delete(ctx, req.job.ID); err != nil {
		return nil, jobError(err, req.job.ID)
	}
	return Reply{}, nil
}

func (h *jobsModule) clone(ctx context.Context, req *Request) (Reply, error) {
	j, err := h.jobs.Clone(ctx, req.job.ID, owner(req.Caller, req.RemoteIP))
	if err != nil {
		return nil, jobError(err, req.job.ID)
	}
	return Reply{"job": j}, nil
}

func (h *jobsModule) update(ctx context.Context, req *Request) (Reply, error) {
	var in struct {
		Job *struct {
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
	j, err := h.jobs.SetStatus(ctx, req.job.ID, status)
	if err != nil {
		return nil, jobError(err, req.job.ID)
	}
	return Reply{"job": j}, nil
}
