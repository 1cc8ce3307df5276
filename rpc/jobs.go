package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// jobsModule serves /v2/jobs over the job engine.
type jobsModule struct{ *guard }

// operations is the /v2/jobs table with what each needs. A job's privileges
// are those on its cluster; on a job without a cluster, its owner and
// superusers have them all. What a job command needs to run is declared with
// the command, in the jobs registry.
func (h *jobsModule) operations() []Operation {
	return []Operation{
		{Name: "createJobInstance", Serve: h.onJobSpec(h.create)},
		{Name: "getJobInstances", ReadOnly: true, Serve: onNamedCluster(h.guard, rbac.Read, h.list)}, // else r per cluster; others are left out
		{Name: "getJobInstance", ReadOnly: true, Serve: onJob(h.guard, rbac.Read, h.get)},
		{Name: "getJobLog", ReadOnly: true, Serve: onJob(h.guard, rbac.Read, h.log)},
		{Name: "killJobInstance", Serve: onJob(h.guard, rbac.Execute, h.kill)},
		{Name: "deleteJobInstance", Serve: onJob(h.guard, rbac.Execute, h.delete)},
		{Name: "cloneJobInstance", Serve: onJobRun(h.guard, rbac.Execute, h.clone)},
		{Name: "updateJobInstance", Serve: onJobRun(h.guard, rbac.Execute, h.update)},
	}
}

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
		// Timeout, in seconds, bounds the whole job as job_data's timeout
		// does (which wins when both are given).
		Timeout *float64 `json:"timeout"`
	} `json:"job"`
}

// onJobSpec is createJobInstance's rule: the job's command, found in the
// registry, says what the caller needs (privileges on the job's cluster or on
// "/", and the job_data fields only superusers may set). The handler gets the
// authorized draft.
func (h *jobsModule) onJobSpec(next func(context.Context, *Request, *jobs.Draft, *jobRequest) (Reply, error)) Endpoint {
	return withPolicy(h.guard, func(ctx context.Context, req *Request, p Policy, in *jobRequest) (Reply, error) {
		if in.Job == nil || in.Job.Spec == nil || in.Job.Spec.Command == "" {
			return nil, InvalidRequest("Field 'job' with 'job_spec.command' is required.")
		}
		req.audit.command = redactedCommand(in.Job.Spec.Command, in.Job.Spec.JobData)
		// A named cluster the caller may not see is refused before anything
		// else is said of the request: its id is the draft's.
		var c *hosts.Cluster
		clusterID := in.ID
		if cmd, ok := h.jobs.Registry().Lookup(in.Job.Spec.Command); ok && in.Name != "" {
			var err error
			if c, err = h.draftCluster(ctx, req, p, cmd.Access, in.clusterRef); err != nil {
				return nil, err
			}
			clusterID = c.ID
		}
		d, err := h.jobs.Registry().Draft(in.Job.Spec.Command, withJobTimeout(in.Job.Spec.JobData, in.Job.Timeout), clusterID)
		if err != nil {
			return nil, jobError(err, 0)
		}
		req.audit.clusterID = d.ClusterID
		if err := h.authorizeDraft(ctx, req, p, d, c); err != nil {
			return nil, err
		}
		return next(ctx, req, d, in)
	})
}

// withJobTimeout is job_data with a job-level timeout in it, unless it has
// a timeout of its own or is not an object (which Draft refuses); the
// timeout's value is checked where job_data's is.
func withJobTimeout(data json.RawMessage, timeout *float64) json.RawMessage {
	trimmed := bytes.TrimSpace(data)
	if timeout == nil {
		return data
	}
	if len(trimmed) == 0 || string(trimmed) == "null" {
		trimmed = []byte("{}")
	}
	var own struct {
		Timeout *float64 `json:"timeout"`
	}
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &own) != nil || own.Timeout != nil {
		return data
	}
	out := strconv.AppendFloat([]byte(`{"timeout":`), *timeout, 'f', -1, 64)
	if rest := bytes.TrimSpace(trimmed[1:]); rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, trimmed[1:]...)
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
	for _, layout := range []string{jobs.TimeFormat, time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, InvalidRequest("Field '%s' must be a time such as 2026-01-02T15:04:05.000Z.", field)
}

func (h *jobsModule) create(ctx context.Context, req *Request, d *jobs.Draft, in *jobRequest) (Reply, error) {
	caller := req.Caller
	cr := jobs.CreateRequest{Title: in.Job.Title, Tags: in.Job.Tags, Recurrence: in.Job.Recurrence,
		TimeZone: in.Job.TimeZone, Owner: owner(caller, req.RemoteIP)}
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
	j, err := h.jobs.CreateDraft(ctx, d, cr)
	if err != nil {
		return nil, jobError(err, 0)
	}
	req.audit.jobID = j.ID
	return &jobReply{Job: renderJob(j)}, nil
}

func owner(u *rbac.User, ip string) jobs.Owner {
	o := jobs.Owner{UserID: u.ID, UserName: u.Name, IPAddress: ip}
	if len(u.Groups) > 0 {
		o.GroupID, o.GroupName = u.Groups[0].ID, u.Groups[0].Name
	}
	return o
}

// listRequest is getJobInstances' input.
type listRequest struct {
	clusterRef
	Limit         int      `json:"limit"`
	Offset        int      `json:"offset"`
	Tags          []string `json:"tags"`
	ShowDefined   bool     `json:"show_defined"`
	ShowRunning   bool     `json:"show_running"`
	ShowFinished  bool     `json:"show_finished"`
	ShowFailed    bool     `json:"show_failed"`
	ShowAborted   bool     `json:"show_aborted"`
	ShowScheduled bool     `json:"show_scheduled"`
	// WithResult adds each job's result (per-node output) to the listing.
	WithResult bool `json:"with_result"`
	// ClusterIDs narrows the listing to these clusters (the reference web
	// UI's per-cluster lists); those the caller may not read stay out.
	ClusterIDs []int64 `json:"cluster_ids"`
	// Status narrows it to one status, besides the show_* switches.
	Status string `json:"status"`
}

// statuses are the statuses the show_* switches ask for; none is all.
func (in *listRequest) statuses() []jobs.Status {
	var out []jobs.Status
	for _, f := range []struct {
		on       bool
		statuses []jobs.Status
	}{
		{in.ShowDefined, []jobs.Status{jobs.StatusDefined}},
		{in.ShowRunning, []jobs.Status{jobs.StatusDequeued, jobs.StatusRunning}},
		{in.ShowFinished, []jobs.Status{jobs.StatusFinished}},
		{in.ShowFailed, []jobs.Status{jobs.StatusFailed}},
		{in.ShowAborted, []jobs.Status{jobs.StatusAborted}},
		{in.ShowScheduled, []jobs.Status{jobs.StatusScheduled, jobs.StatusPaused}},
	} {
		if f.on {
			out = append(out, f.statuses...)
		}
	}
	return out
}

// A listing holds at most maxListedJobs jobs, listedJobs unless the request's
// limit says otherwise: a reply stays a few MiB however many jobs are kept.
const (
	listedJobs    = 100
	maxListedJobs = 1000
)

func (h *jobsModule) list(ctx context.Context, req *Request, p Policy, c *hosts.Cluster, in *listRequest) (Reply, error) {
	limit := in.Limit
	if limit <= 0 {
		limit = listedJobs
	}
	f := jobs.Filter{Limit: min(limit, maxListedJobs), Offset: in.Offset, Tags: in.Tags, Statuses: in.statuses(),
		WithResult: in.WithResult}
	if in.Status != "" {
		st, err := jobs.ParseStatus(in.Status)
		if err != nil {
			return nil, InvalidRequest("Field 'status' must be one of %s.", joinStatuses(jobs.Statuses))
		}
		f.Statuses = append(f.Statuses, st)
	}
	switch {
	case c != nil:
		f.ClusterIDs = []int64{c.ID}
	case req.Caller.IsSuperuser():
		f.ClusterIDs = in.ClusterIDs
	default:
		all, err := h.inventory.List(ctx)
		if err != nil {
			return nil, err
		}
		visible, _ := readable(req, p, all)
		f.ClusterIDs = []int64{-1} // matches nothing when no cluster is readable
		for _, c := range visible {
			if len(in.ClusterIDs) == 0 || slices.Contains(in.ClusterIDs, c.ID) {
				f.ClusterIDs = append(f.ClusterIDs, c.ID)
			}
		}
	}
	if len(in.ClusterIDs) > 0 && c != nil && !slices.Contains(in.ClusterIDs, c.ID) {
		f.ClusterIDs = []int64{-1} // cluster_id and cluster_ids name no cluster in common
	}
	list, total, err := h.jobs.List(ctx, f)
	if err != nil {
		return nil, err
	}
	return &jobsReply{Total: total, Jobs: renderList(list, renderJob)}, nil
}

// joinStatuses lists statuses for a refusal.
func joinStatuses(list []jobs.Status) string {
	names := make([]string, len(list))
	for i, st := range list {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// The handlers below act on the job their access rule checked.

func (h *jobsModule) get(_ context.Context, _ *Request, _ Policy, j *jobs.Job, _ *jobRef) (Reply, error) {
	return &jobReply{Job: renderJob(j), Total: 1}, nil
}

// logRequest is getJobLog's input.
type logRequest struct {
	jobRef
	Ascending *bool `json:"ascending"`
	Limit     *int  `json:"limit"`
	Offset    int   `json:"offset"`
}

func (h *jobsModule) log(ctx context.Context, _ *Request, _ Policy, j *jobs.Job, in *logRequest) (Reply, error) {
	q := jobs.MessageQuery{Ascending: in.Ascending == nil || *in.Ascending, Limit: -1, Offset: in.Offset}
	if in.Limit != nil {
		q.Limit = *in.Limit
	}
	l, err := h.jobs.Log(ctx, j.ID, q)
	if err != nil {
		return nil, jobError(err, j.ID)
	}
	return &jobLogReply{Job: renderJob(l.Job), Messages: renderList(l.Messages, renderMessage), Total: l.Total}, nil
}

func (h *jobsModule) kill(ctx context.Context, req *Request, _ Policy, j *jobs.Job, _ *jobRef) (Reply, error) {
	killed, err := h.jobs.Kill(ctx, j.ID, req.Caller.Name)
	if err != nil {
		return nil, jobError(err, j.ID)
	}
	return &jobReply{Job: renderJob(killed)}, nil
}

func (h *jobsModule) delete(ctx context.Context, _ *Request, _ Policy, j *jobs.Job, _ *jobRef) (Reply, error) {
	if err := h.jobs.Delete(ctx, j.ID); err != nil {
		return nil, jobError(err, j.ID)
	}
	return done(), nil
}

func (h *jobsModule) clone(ctx context.Context, req *Request, _ Policy, j *jobs.Job, _ *jobRef) (Reply, error) {
	cloned, err := h.jobs.Clone(ctx, j.ID, owner(req.Caller, req.RemoteIP))
	if err != nil {
		return nil, jobError(err, j.ID)
	}
	return &jobReply{Job: renderJob(cloned)}, nil
}

func (h *jobsModule) update(ctx context.Context, _ *Request, _ Policy, j *jobs.Job, in *jobRef) (Reply, error) {
	if in.Job == nil {
		return nil, InvalidRequest("Field 'job' with 'job_id' and 'status' is required.")
	}
	status, err := jobs.ParseStatus(in.Job.Status)
	if err != nil || (status != jobs.StatusPaused && status != jobs.StatusScheduled) {
		return nil, InvalidRequest("Field 'job.status' must be PAUSED or SCHEDULED.")
	}
	updated, err := h.jobs.SetStatus(ctx, j.ID, status)
	if err != nil {
		return nil, jobError(err, j.ID)
	}
	return &jobReply{Job: renderJob(updated)}, nil
}
