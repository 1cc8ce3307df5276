package rpc

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// Auditor records audit entries (rbac.AuditLog does).
type Auditor interface {
	Record(ctx context.Context, e rbac.AuditEntry) error
	List(ctx context.Context, f rbac.AuditFilter) ([]rbac.AuditEntry, int, error)
}

// auditFacts are what the access rules and handlers resolved about a
// request, for its audit entry.
type auditFacts struct {
	userName  string // a login's user, when no caller is known
	object    string
	clusterID int64
	jobID     int64
	command   string
}

// audited tells whether a request gets an audit entry: every change that
// got as far as being decided (not malformed, not unauthenticated), and
// every refusal, of changes and reads alike.
func audited(readOnly bool, status Status) bool {
	switch status {
	case StatusAccessDenied:
		return true
	case StatusInvalidRequest, StatusAuthRequired:
		return false
	}
	return !readOnly && status != ""
}

// auditEntry is req's entry once it ended with status and message.
func (s *Server) auditEntry(req *Request, status Status, message string) rbac.AuditEntry {
	e := rbac.AuditEntry{At: time.Now().UTC(), Controller: s.node, Address: req.RemoteIP, Module: req.Module,
		Operation: req.Operation, Object: req.audit.object, ClusterID: req.audit.clusterID, JobID: req.audit.jobID,
		Command: req.audit.command, Outcome: string(status), Detail: message, UserName: req.audit.userName}
	if req.Caller != nil {
		e.UserID, e.UserName = req.Caller.ID, req.Caller.Name
	}
	if e.Object == "" {
		e.Object = objectNamed(req)
	}
	return e
}

// objectNamed is the object a request names in its common fields, when no
// rule resolved one: a tree path, a user or a group.
func objectNamed(req *Request) string {
	var in struct {
		Path      string `json:"path"`
		GroupName string `json:"group_name"`
		User      *struct {
			UserName string `json:"user_name"`
			UserID   int64  `json:"user_id"`
		} `json:"user"`
		Group *struct {
			GroupName string `json:"group_name"`
		} `json:"group"`
	}
	_ = jobs.Unmarshal(req.body, &in) // best effort: a malformed field names nothing
	switch {
	case in.Path != "":
		return in.Path
	case in.User != nil && in.User.UserName != "":
		return "user:" + in.User.UserName
	case in.User != nil && in.User.UserID != 0:
		return "user:" + strconv.FormatInt(in.User.UserID, 10)
	case in.GroupName != "":
		return "group:" + in.GroupName
	case in.Group != nil && in.Group.GroupName != "":
		return "group:" + in.Group.GroupName
	}
	return ""
}

// record stores req's audit entry and logs it once at info level. A store
// that fails is logged, not the request's failure: the change is done.
func (s *Server) record(ctx context.Context, req *Request, status Status, message string) {
	e := s.auditEntry(req, status, message)
	attrs := []slog.Attr{slog.String("user", e.UserName), slog.String("remote", e.Address), slog.String("module", e.Module),
		slog.String("operation", e.Operation), slog.String("outcome", e.Outcome)}
	for _, a := range []struct {
		key, value string
	}{{"object", e.Object}, {"command", e.Command}, {"detail", e.Detail}} {
		if a.value != "" {
			attrs = append(attrs, slog.String(a.key, a.value))
		}
	}
	if e.ClusterID != 0 {
		attrs = append(attrs, slog.Int64("cluster_id", e.ClusterID))
	}
	if e.JobID != 0 {
		attrs = append(attrs, slog.Int64("job_id", e.JobID))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
	if s.auditor == nil {
		return
	}
	if err := s.auditor.Record(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("record audit entry", "operation", e.Operation, "err", err)
	}
}

// redactedCommand is a job's command and job_data for the audit trail, with
// secrets hidden as every reply hides them (redactedJobData).
func redactedCommand(command string, data json.RawMessage) string {
	if len(data) == 0 {
		return command
	}
	out := redactedJobData(data)
	if out == nil {
		return command
	}
	return command + " " + string(out)
}

// auditOperations is the /v2/audit table; getEntries is the reference
// controller's name for the same listing.
func (s *Server) auditOperations() []Operation {
	return []Operation{
		{Name: "getAuditEntries", ReadOnly: true, Serve: superuser(s.getAuditEntries)},
		{Name: "getEntries", ReadOnly: true, Serve: superuser(s.getAuditEntries)},
	}
}

// auditRequest is getAuditEntries' input.
type auditRequest struct {
	UserName   string  `json:"user_name"`
	ClusterID  int64   `json:"cluster_id"`
	ClusterIDs []int64 `json:"cluster_ids"`
	Ascending  bool    `json:"ascending"`
	Operation  string  `json:"operation_name"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Limit      int     `json:"limit"`
	Offset     int     `json:"offset"`
}

// Audit listings hold at most maxListedAudit entries, listedAudit unless the
// request says otherwise.
const (
	listedAudit    = 100
	maxListedAudit = 1000
)

func (s *Server) getAuditEntries(ctx context.Context, _ *Request, in *auditRequest) (Reply, error) {
	f := rbac.AuditFilter{UserName: in.UserName, ClusterIDs: in.ClusterIDs, Operation: in.Operation, Ascending: in.Ascending,
		Limit: listedAudit, Offset: max(in.Offset, 0)}
	if in.ClusterID != 0 {
		f.ClusterIDs = append(f.ClusterIDs, in.ClusterID)
	}
	if in.Limit > 0 {
		f.Limit = min(in.Limit, maxListedAudit)
	}
	var err error
	if in.From != "" {
		if f.From, err = parseTime("from", in.From); err != nil {
			return nil, err
		}
	}
	if in.To != "" {
		if f.To, err = parseTime("to", in.To); err != nil {
			return nil, err
		}
	}
	list, total, err := s.auditor.List(ctx, f)
	if err != nil {
		return nil, err
	}
	return Reply{"total": total, "entries": renderList(list, renderAudit)}, nil
}

// renderAudit is an audit entry on the wire.
func renderAudit(e rbac.AuditEntry) map[string]any {
	return map[string]any{
		"class_name": "CmonAuditEntry", "entry_id": e.ID, "created": jobs.FormatTime(e.At), "controller": e.Controller,
		"user_id": e.UserID, "user_name": e.UserName, "remote_address": e.Address, "module": e.Module,
		"operation": e.Operation, "object": e.Object, "cluster_id": e.ClusterID, "job_id": e.JobID,
		"command": e.Command, "outcome": e.Outcome, "detail": e.Detail,
	}
}
