package rpc

import (
	"encoding/json"

	"github.com/cmon-dev/cmon/jobs"
)

// wireJob is the CmonJobInstance JSON object of RPC v2.
type wireJob struct {
	ClassName       string          `json:"class_name"`
	JobID           int64           `json:"job_id"`
	ClusterID       int64           `json:"cluster_id"`
	Title           string          `json:"title"`
	Status          jobs.Status     `json:"status"`
	StatusText      string          `json:"status_text"`
	Created         string          `json:"created,omitempty"`
	Started         string          `json:"started,omitempty"`
	Ended           string          `json:"ended,omitempty"`
	Scheduled       string          `json:"scheduled,omitempty"`
	Recurrence      string          `json:"recurrence,omitempty"`
	TimeZone        string          `json:"time_zone,omitempty"`
	ExitCode        int             `json:"exit_code"`
	ExitSignal      string          `json:"exit_signal,omitempty"`
	UserID          int64           `json:"user_id"`
	UserName        string          `json:"user_name"`
	OwnerUserID     int64           `json:"owner_user_id"` // the reference's clients read the owner under these names too
	OwnerUserName   string          `json:"owner_user_name"`
	GroupID         int64           `json:"group_id"`
	GroupName       string          `json:"group_name"`
	IPAddress       string          `json:"ip_address"`
	RPCVersion      string          `json:"rpc_version"`
	CanBeAborted    bool            `json:"can_be_aborted"`
	CanBeDeleted    bool            `json:"can_be_deleted"`
	HasProgress     bool            `json:"has_progress"`
	ProgressPercent int             `json:"progress_percent"` // 0 until has_progress
	Tags            []string        `json:"tags,omitempty"`
	ParentJobID     int64           `json:"parent_job_id,omitempty"`
	JobSpec         wireSpec        `json:"job_spec"`
	Result          json.RawMessage `json:"result,omitempty"`
}

// wireSpec is the job_spec object of a CmonJobInstance.
type wireSpec struct {
	Command string          `json:"command"`
	JobData json.RawMessage `json:"job_data"`
}

// renderJob is the CmonJobInstance of j, its job_data with secrets hidden
// (redactedJobData). A SCHEDULED job with no start time of its own (a
// recurring template) shows its next firing as "scheduled".
func renderJob(j *jobs.Job) *wireJob {
	w := &wireJob{
		ClassName:     "CmonJobInstance",
		JobID:         j.ID,
		ClusterID:     j.ClusterID,
		Title:         j.Title,
		Status:        j.Status,
		StatusText:    j.StatusText,
		Created:       jobs.FormatTime(j.Created),
		Started:       jobs.FormatTime(j.Started),
		Ended:         jobs.FormatTime(j.Ended),
		Scheduled:     jobs.FormatTime(j.Scheduled),
		Recurrence:    j.Recurrence,
		TimeZone:      j.TimeZone,
		ExitCode:      j.ExitCode,
		ExitSignal:    j.ExitSignal,
		UserID:        j.UserID,
		UserName:      j.UserName,
		OwnerUserID:   j.UserID,
		OwnerUserName: j.UserName,
		GroupID:       j.GroupID,
		GroupName:     j.GroupName,
		IPAddress:     j.IPAddress,
		RPCVersion:    "2.0",
		CanBeAborted:  j.CanBeAborted(),
		CanBeDeleted:  j.CanBeDeleted(),
		HasProgress:   j.HasProgress,
		Tags:          j.Tags,
		ParentJobID:   j.ParentJobID,
		JobSpec:       wireSpec{Command: j.Command, JobData: redactedJobData(j.JobData)},
		Result:        j.Result,
	}
	if j.HasProgress {
		w.ProgressPercent = j.Progress
	}
	if w.Scheduled == "" && j.Status == jobs.StatusScheduled {
		w.Scheduled = jobs.FormatTime(j.NextFireAt)
	}
	if len(w.JobSpec.JobData) == 0 {
		w.JobSpec.JobData = json.RawMessage("{}")
	}
	return w
}

// wireMessage is the CmonJobMessage JSON object of RPC v2.
type wireMessage struct {
	ClassName     string             `json:"class_name"`
	MessageID     int64              `json:"message_id"`
	JobID         int64              `json:"job_id"`
	Created       string             `json:"created"`
	MessageStatus jobs.MessageStatus `json:"message_status"`
	MessageText   string             `json:"message_text"`
}

// jobReply is the reply about one job; getJobInstance adds a total of 1.
type jobReply struct {
	Envelope
	Job   *wireJob `json:"job"`
	Total int      `json:"total,omitempty"`
}

// jobsReply is a page of a job listing; total counts every match.
type jobsReply struct {
	Envelope
	Total int        `json:"total"`
	Jobs  []*wireJob `json:"jobs"`
}

// jobLogReply is a page of a job's messages; total counts them all.
type jobLogReply struct {
	Envelope
	Job      *wireJob      `json:"job"`
	Messages []wireMessage `json:"messages"`
	Total    int           `json:"total"`
}

// renderMessage is the CmonJobMessage of m.
func renderMessage(m jobs.Message) wireMessage {
	return wireMessage{
		ClassName:     "CmonJobMessage",
		MessageID:     m.ID,
		JobID:         m.JobID,
		Created:       jobs.FormatTime(m.Created),
		MessageStatus: m.Status,
		MessageText:   m.Text,
	}
}
