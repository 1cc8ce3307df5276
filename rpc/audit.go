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
		{Name: "getAuditEntries", ReadOnly: true, Serve: superuser(s.auditListing(false))},
		{Name: "getEntries", ReadOnly: true, Serve: superuser(s.auditListing(true))},
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

// auditListing serves the listing with the entries under the name the
// operation's clients read: cmon's own getAuditEntries calls them entries,
// the reference's getEntries audit_entries.
func (s *Server) auditListing(reference bool) func(context.Context, *Request, *auditRequest) (Reply, error) {
	return func(ctx context.Context, req *Request, in *auditRequest) (Reply, error) {
		list, total, err := s.listAudit(ctx, in)
		if err != nil {
			return nil, err
		}
		entries := renderList(list, renderAudit)
		if reference {
			return &auditEntriesReply{Total: total, AuditEntries: entries}, nil
		}
		return &auditReply{Total: total, Entries: entries}, nil
	}
}

// auditReply is getAuditEntries'.
type auditReply struct {
	Envelope
	Total   int         `json:"total"`
	Entries []wireAudit `json:"entries"`
}

// auditEntriesReply is getEntries', as cmon-proxy's api.GetAuditEntriesReply.
type auditEntriesReply struct {
	Envelope
	Total        int         `json:"total"`
	AuditEntries []wireAudit `json:"audit_entries"`
}

func (s *Server) listAudit(ctx context.Context, in *auditRequest) ([]rbac.AuditEntry, int, error) {
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
			return nil, 0, err
		}
	}
	if in.To != "" {
		if f.To, err = parseTime("to", in.To); err != nil {
			return nil, 0, err
		}
	}
	return s.auditor.List(ctx, f)
}

// wireAudit is a CmonAuditEntry: cmon's own fields, and the reference
// controller's (report_ts, username, client_hostname, entry_type,
// message_text) that its web UI's backend reads.
type wireAudit struct {
	ClassName      string `json:"class_name"`
	EntryID        int64  `json:"entry_id"`
	Created        string `json:"created"`
	ReportTS       string `json:"report_ts"`
	Controller     string `json:"controller"`
	UserID         int64  `json:"user_id"`
	UserName       string `json:"user_name"`
	Username       string `json:"username"`
	RemoteAddress  string `json:"remote_address"`
	ClientHostname string `json:"client_hostname"`
	Module         string `json:"module"`
	Operation      string `json:"operation"`
	EntryType      string `json:"entry_type"`
	Object         string `json:"object"`
	ClusterID      int64  `json:"cluster_id"`
	JobID          int64  `json:"job_id"`
	Command        string `json:"command"`
	Outcome        string `json:"outcome"`
	Detail         string `json:"detail"`
	MessageText    string `json:"message_text"`
}

// renderAudit is an audit entry on the wire; its message_text says in a
// sentence what the entry's fields say.
func renderAudit(e rbac.AuditEntry) wireAudit {
	created := jobs.FormatTime(e.At)
	text := e.Module + " " + e.Operation
	if e.Object != "" {
		text += " on " + e.Object
	}
	text += ": " + e.Outcome
	if e.Detail != "" {
		text += " (" + e.Detail + ")"
	}
	return wireAudit{ClassName: "CmonAuditEntry", EntryID: e.ID, Created: created, ReportTS: created, Controller: e.Controller,
		UserID: e.UserID, UserName: e.UserName, Username: e.UserName, RemoteAddress: e.Address, ClientHostname: e.Address,
		Module: e.Module, Operation: e.Operation, EntryType: e.Operation, Object: e.Object, ClusterID: e.ClusterID,
		JobID: e.JobID, Command: e.Command, Outcome: e.Outcome, Detail: e.Detail, MessageText: text}
}
