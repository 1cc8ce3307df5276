package jobs

import (
	"encoding/json"
	"time"
)

// WireTimeFormat is the RPC v2 timestamp: UTC with milliseconds, the only form
// that clients parse.
const WireTimeFormat = "2006-01-02T15:04:05.000Z"

// WireTime renders t for the wire; the zero time renders as "".
func WireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(WireTimeFormat)
}

// WireJob is the CmonJobInstance JSON object of RPC v2.
type WireJob struct {
	ClassName       string          `json:"class_name"`
	JobID           int64           `json:"job_id"`
	ClusterID       int64           `json:"cluster_id"`
	Title           string          `json:"title"`
	Status          Status          `json:"status"`
	StatusText      string          `json:"status_text"`
	Created         string          `json:"created,omitempty"`
	Started         string          `json:"started,omitempty"`
	Ended           string          `json:"ended,omitempty"`
	Scheduled       string          `json:"scheduled,omitempty"`
	Recurrence      string          `json:"recurrence,omitempty"`
	TimeZone        string          `json:"time_zone,omitempty"`
	ExitCode        int             `json:"exit_code"`
	UserID          int64           `json:"user_id"`
	UserName        string          `json:"user_name"`
	GroupID         int64           `json:"group_id"`
	GroupName       string          `json:"group_name"`
	IPAddress       string          `json:"ip_address"`
	RPCVersion      string          `json:"rpc_version"`
	CanBeAborted    bool            `json:"can_be_aborted"`
	CanBeDeleted    bool            `json:"can_be_deleted"`
	HasProgress     bool            `json:"has_progress,omitempty"`
	ProgressPercent *int            `json:"progress_percent,omitempty"`
	Tags            []string        `json:"tags,omitempty"`
	ParentJobID     int64           `json:"parent_job_id,omitempty"`
	JobSpec         WireSpec        `json:"job_spec"`
	Result          json.RawMessage `json:"result,omitempty"`
}

// WireSpec is the job_spec object of a CmonJobInstance.
type WireSpec struct {
	Command string          `json:"command"`
	JobData json.RawMessage `json:"job_data"`
}

// Wire renders the job as a CmonJobInstance. A SCHEDULED job with no start time
// of its own (a recurring template) shows its next firing as "scheduled".
func (j *Job) Wire() WireJob {
	w := WireJob{
		ClassName:    "CmonJobInstance",
		JobID:        j.ID,
		ClusterID:    j.ClusterID,
		Title:        j.Title,
		Status:       j.Status,
		StatusText:   j.StatusText,
		Created:      WireTime(j.Created),
		Started:      WireTime(j.Started),
		Ended:        WireTime(j.Ended),
		Scheduled:    WireTime(j.Scheduled),
		Recurrence:   j.Recurrence,
		TimeZone:     j.TimeZone,
		ExitCode:     j.ExitCode,
		UserID:       j.UserID,
		UserName:     j.UserName,
		GroupID:      j.GroupID,
		GroupName:    j.GroupName,
		IPAddress:    j.IPAddress,
		RPCVersion:   "2.0",
		CanBeAborted: j.CanBeAborted(),
		CanBeDeleted: j.CanBeDeleted(),
		HasProgress:  j.HasProgress,
		Tags:         j.Tags,
		ParentJobID:  j.ParentJobID,
		JobSpec:      WireSpec{Command: j.Command, JobData: j.JobData},
		Result:       j.Result,
	}
	if j.HasProgress {
		p := j.Progress
		w.ProgressPercent = &p
	}
	if w.Scheduled == "" && j.Status == StatusScheduled {
		w.Scheduled = WireTime(j.NextFireAt)
	}
	if len(w.JobSpec.JobData) == 0 {
		w.JobSpec.JobData = json.RawMessage("{}")
	}
	return w
}

// MarshalJSON renders the job as a CmonJobInstance.
func (j *Job) MarshalJSON() ([]byte, error) { return json.Marshal(j.Wire()) }

// WireMessage is the CmonJobMessage JSON object of RPC v2.
type WireMessage struct {
	ClassName     string        `json:"class_name"`
	MessageID     int64         `json:"message_id"`
	JobID         int64         `json:"job_id"`
	Created       string        `json:"created"`
	MessageStatus MessageStatus `json:"message_status"`
	MessageText   string        `json:"message_text"`
}

// Wire renders the message as a CmonJobMessage.
func (m Message) Wire() WireMessage {
	return WireMessage{
		ClassName:     "CmonJobMessage",
		MessageID:     m.ID,
		JobID:         m.JobID,
		Created:       WireTime(m.Created),
		MessageStatus: m.Status,
		MessageText:   m.Text,
	}
}

// MarshalJSON renders the message as a CmonJobMessage.
func (m Message) MarshalJSON() ([]byte, error) { return json.Marshal(m.Wire()) }
