package commands

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// failData is the optional job_data of "fail".
type failData struct {
	Message  string `json:"message"`
	ExitCode int    `json:"exit_code"`
}

func parseFail(raw json.RawMessage) (*failData, error) {
	d, err := decoded[failData](raw)
	if err != nil {
		return nil, err
	}
	if d.ExitCode < 0 || d.ExitCode > 255 {
		return nil, errors.New("job_data field \"exit_code\" must be between 0 and 255")
	}
	if d.Message == "" {
		d.Message = "job failed as requested"
	}
	return d, nil
}

// FailCommand is "fail" (alias "failure"): it fails at once with
// job_data.message (default "job failed as requested") and job_data.exit_code
// (default 1). Clients use it to test how they handle failed jobs.
func FailCommand() jobs.Command {
	c := jobs.Command{Name: "fail", Aliases: []string{"failure"}, Access: jobs.Access{Need: rbac.Execute, ClusterOptional: true}}
	c.Validate, c.Handler = jobs.Parsed(parseFail, func(ctx context.Context, _ *jobs.Job, d *failData, log jobs.Logger) (any, error) {
		log.Message(ctx, jobs.MessageFailed, d.Message)
		return nil, &jobs.ExitError{Code: d.ExitCode, Err: errors.New(d.Message)}
	})
	return c
}
