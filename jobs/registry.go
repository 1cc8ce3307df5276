package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Handler runs one job. It returns when the work is done or ctx is cancelled
// (kill, timeout, controller stop: see context.Cause), with an optional result
// that is stored as the job's JSON object result, also on error. A nil error
// finishes the job; an error fails it with the error's message as status_text
// (an *ExitError sets the exit code).
type Handler interface {
	Run(ctx context.Context, job *Job, log Logger) (result any, err error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job *Job, log Logger) (any, error)

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, job *Job, log Logger) (any, error) {
	return f(ctx, job, log)
}

// Logger is a running job's log and progress. Writes are best effort: a failure
// to store a line is logged by the engine and never fails the job. They still
// land when ctx is already cancelled (a handler reports how it stopped after a
// kill), each bounded by a timeout of its own.
//
// The engine's Logger has two optional capabilities a command may check for
// with an interface of its own: Messages(ctx, []LogLine) stores many lines in
// one write, and NodeStarted/NodeEnded(ctx, NodeProcess) record the node
// commands a job runs, so that recovery can end them (see NodeProcess).
type Logger interface {
	// Message appends a job message, readable at once by getJobLog.
	Message(ctx context.Context, status MessageStatus, text string)
	// Progress sets the job's progress in percent (0..100).
	Progress(ctx context.Context, percent int)
	// StatusText replaces the job's status_text while it runs.
	StatusText(ctx context.Context, text string)
}

// LogLine is one message of a batch written at once.
type LogLine struct {
	Status MessageStatus
	Text   string
}

// Command is a job command: its names, how it runs, and what it needs.
type Command struct {
	Name    string   // canonical name, stored with the job
	Aliases []string // other names clients may use
	// Exclusive commands change their cluster: two of them never run at the same
	// time on one cluster (jobs with cluster_id 0 are not restricted).
	Exclusive bool
	// Validate checks job_data (a JSON object) at create time, so that bad input
	// is refused before anything is queued. Its error message, lower case, is
	// shown to the client. Nil accepts anything.
	Validate func(jobData json.RawMessage) error
	// Preflight, when set, checks job_data against the job's cluster at
	// create time (after access was checked), so that what would surely fail
	// when the job runs is refused at once instead.
	Preflight func(ctx context.Context, clusterID int64, jobData json.RawMessage) error
	// TimeoutPerNode commands apply job_data.timeout_sec to each node they
	// reach themselves; the engine then bounds the whole job only by its
	// maximum run time, so a sequential run over many nodes is not cut short.
	TimeoutPerNode bool
	// Access is what the job's owner needs for the job to run.
	Access  Access
	Handler Handler
}

// Parsed makes a command's Validate and Handler from one parser of its
// job_data and a run that gets the parsed input, typed: the same function
// refuses bad input at create and hands the job its input when it runs.
func Parsed[In any](parse func(json.RawMessage) (In, error), run func(context.Context, *Job, In, Logger) (any, error)) (func(json.RawMessage) error, Handler) {
	validate := func(raw json.RawMessage) error {
		_, err := parse(raw)
		return err
	}
	return validate, HandlerFunc(func(ctx context.Context, job *Job, log Logger) (any, error) {
		in, err := parse(job.JobData)
		if err != nil {
			return nil, err
		}
		return run(ctx, job, in, log)
	})
}

// Registry maps command names and aliases to commands. It is built once and
// not changed afterwards, so controllers can share it without locking.
type Registry struct {
	byName map[string]*Command
	names  []string // canonical names
	known  []string // names and aliases: what a job may be stored under
}

// NewRegistry builds a registry; names and aliases are case-insensitive and
// must be unique.
func NewRegistry(cmds ...Command) (*Registry, error) {
	r := &Registry{byName: map[string]*Command{}}
	for i := range cmds {
		c := cmds[i]
		if c.Name == "" || c.Handler == nil {
			return nil, fmt.Errorf("job command %q needs a name and a handler", c.Name)
		}
		if c.Access.Need == 0 {
			return nil, fmt.Errorf("job command %q declares no access it needs", c.Name)
		}
		c.Name = strings.ToLower(c.Name)
		for _, n := range append([]string{c.Name}, c.Aliases...) {
			n = strings.ToLower(n)
			if _, dup := r.byName[n]; dup {
				return nil, fmt.Errorf("job command name %q registered twice", n)
			}
			r.byName[n] = &c
			r.known = append(r.known, n)
		}
		r.names = append(r.names, c.Name)
	}
	slices.Sort(r.names)
	slices.Sort(r.known)
	return r, nil
}

// Lookup finds a command by name or alias, case-insensitively.
func (r *Registry) Lookup(name string) (*Command, bool) {
	c, ok := r.byName[strings.ToLower(strings.TrimSpace(name))]
	return c, ok
}

// Names lists the canonical command names, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Known lists every name and alias, lower case and sorted: a job keeps the
// one its client sent, and a controller runs the jobs stored under any of them.
func (r *Registry) Known() []string { return slices.Clone(r.known) }
