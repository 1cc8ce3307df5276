package jobs

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// TimeFormat is the RPC v2 timestamp, UTC with milliseconds: the only form
// clients parse. Job results hold timestamps too, so it lives here, at the
// lowest layer that writes one.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTime renders t in TimeFormat; the zero time is "", as the original
// controller renders "never".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// Status is a job's state. A job moves DEFINED → DEQUEUED → RUNNING → FINISHED,
// FAILED or ABORTED. SCHEDULED jobs wait for their start time or cron firing and
// PAUSED ones (recurring templates, or scheduled jobs) wait for a user.
type Status string

const (
	StatusDefined   Status = "DEFINED"
	StatusDequeued  Status = "DEQUEUED"
	StatusRunning   Status = "RUNNING"
	StatusFinished  Status = "FINISHED"
	StatusFailed    Status = "FAILED"
	StatusAborted   Status = "ABORTED"
	StatusScheduled Status = "SCHEDULED"
	StatusPaused    Status = "PAUSED"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusDefined, StatusDequeued, StatusRunning, StatusFinished,
	StatusFailed, StatusAborted, StatusScheduled, StatusPaused}

// ParseStatus reads a status name, case-insensitively.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", invalidf("unknown job status %q", s)
}

// The statuses by phase: the one definition both Status's methods and the
// engine's queries (through sql.Placeholders) read.
var (
	endedStatuses   = []Status{StatusFinished, StatusFailed, StatusAborted}
	activeStatuses  = []Status{StatusDequeued, StatusRunning}
	waitingStatuses = []Status{StatusScheduled, StatusPaused}
	// unclaimedStatuses have not run and no worker holds them: a kill ends
	// them at once.
	unclaimedStatuses = slices.Concat([]Status{StatusDefined}, waitingStatuses)
	// queuedStatuses are a run to come or going on: DEFINED, DEQUEUED or RUNNING.
	queuedStatuses = slices.Concat([]Status{StatusDefined}, activeStatuses)
	// openStatuses are every status but the ended ones.
	openStatuses = slices.Concat(queuedStatuses, waitingStatuses)
	// deletableStatuses: ended jobs, and jobs waiting for a time or a user that
	// no worker holds (deleting a recurring template ends its schedule).
	deletableStatuses = slices.Concat(endedStatuses, waitingStatuses)
)

// Ended tells whether the job is over: FINISHED, FAILED or ABORTED.
func (s Status) Ended() bool { return slices.Contains(endedStatuses, s) }

// Active tells whether a controller has claimed the job: DEQUEUED or RUNNING.
func (s Status) Active() bool { return slices.Contains(activeStatuses, s) }

// Waiting tells whether the job waits for a time or a user: SCHEDULED or PAUSED.
func (s Status) Waiting() bool { return slices.Contains(waitingStatuses, s) }

// MessageStatus is the severity of a job message.
type MessageStatus string

const (
	MessageSuccess MessageStatus = "JOB_SUCCESS"
	MessageWarning MessageStatus = "JOB_WARNING"
	MessageFailed  MessageStatus = "JOB_FAILED"
	MessageDebug   MessageStatus = "JOB_DEBUG"
)

// Status texts the engine sets; a command may set its own while it runs.
const (
	TextDefined   = "Pending"
	TextDequeued  = "Dequeued"
	TextRunning   = "Running..."
	TextFinished  = "Job finished."
	TextScheduled = "Scheduled"
	TextPaused    = "Paused"
	// TextKillRequested is a running job's text from its kill until it ends.
	TextKillRequested = "Kill requested."
	// TextControllerStopped is the reason given to a job that was running when
	// its controller stopped or died.
	TextControllerStopped = "The controller stopped while the job was running."
)

// Owner says who created a job and from where.
type Owner struct {
	UserID    int64
	UserName  string
	GroupID   int64
	GroupName string
	IPAddress string
}

// Job is one job instance: a queued, running or ended run of a command, or a
// recurring template (SCHEDULED or PAUSED, with Recurrence set) that creates a
// new DEFINED job, its child, at every cron firing.
type Job struct {
	ID        int64
	ClusterID int64 // 0: the job concerns no cluster
	Title     string
	Command   string // the command's name or alias as the client sent it, lower case
	// JobData is the job_data object the client sent, compact.
	JobData    json.RawMessage
	Tags       []string
	Status     Status
	StatusText string
	ExitCode   int
	// ExitSignal is the signal a killed (TERM) or timed-out job's commands
	// were ended with; "" otherwise.
	ExitSignal  string
	HasProgress bool
	Progress    int // percent, 0..100
	Created     time.Time
	Started     time.Time
	Ended       time.Time
	// Scheduled is the start time asked for (a child of a recurring job gets the
	// time of the firing that made it).
	Scheduled  time.Time
	Recurrence string // a cron expression: the job is a recurring template
	TimeZone   string // IANA name the recurrence is evaluated in; "" is UTC
	// NextFireAt is when a SCHEDULED job next starts or fires.
	NextFireAt  time.Time
	ParentJobID int64 // the recurring template that created this job
	// Result is the JSON object the command returned, nil if none.
	Result json.RawMessage
	Owner
	Exclusive     bool
	ControllerID  string // the controller that claimed the job
	KillRequested bool
	KilledBy      string
}

// Spec is the job's job_spec: its command and job_data.
func (j *Job) Spec() Spec { return Spec{Command: j.Command, JobData: j.JobData} }

// CanBeAborted tells whether killJobInstance applies: the job has not ended.
func (j *Job) CanBeAborted() bool { return !j.Status.Ended() }

// CanBeDeleted tells whether deleteJobInstance applies: the job has ended, or
// it is a job waiting for its time (SCHEDULED or PAUSED) that no worker holds.
func (j *Job) CanBeDeleted() bool { return j.Status.Ended() || j.Status.Waiting() }

// Recurring tells whether the job is a recurring template.
func (j *Job) Recurring() bool { return j.Recurrence != "" }

// Message is one line of a job's log.
type Message struct {
	ID      int64
	JobID   int64
	Created time.Time
	Status  MessageStatus
	Text    string
}

// Spec is a job_spec object: {"command": ..., "job_data": {...}}. It also
// reads the spelling "job_dat" of the protocol's own examples, and a
// job_spec sent as a JSON string holding the object, as some clients do.
type Spec struct {
	Command string          `json:"command"`
	JobData json.RawMessage `json:"job_data,omitempty"`
}

// UnmarshalJSON accepts the object, a string holding it, and "job_dat".
func (s *Spec) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var inner string
		if err := json.Unmarshal(b, &inner); err != nil {
			return err
		}
		b = []byte(inner)
	}
	var raw struct {
		Command string          `json:"command"`
		JobData json.RawMessage `json:"job_data"`
		JobDat  json.RawMessage `json:"job_dat"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Command = raw.Command
	s.JobData = raw.JobData
	if len(s.JobData) == 0 || bytes.Equal(s.JobData, []byte("null")) {
		s.JobData = raw.JobDat
	}
	return nil
}
