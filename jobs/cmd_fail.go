package jobs

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cmon-dev/cmon/rbac"
)

// failData is the optional job_data of "fail".
type failData struct {
	Message  string `json:"message"`
	ExitCode int    `json:"exit_code"`
}

// FailCommand is "fail" (alias "failure"): it fails at once with
// job_data.message (default "job failed as requested") and job_data.exit_code
// (default 1). Clients use it to test how they handle failed jobs.
func FailCommand() Command {
	return Command{
		Name:    "fail",
		Aliases: []string{"failure"},
		Access:  Access{Need: rbac.Execute, ClusterOptional: true},
		Validate: func(data json.RawMessage) error {
			var d failData
			if err := DecodeJobData(data, &d); err != nil {
				return err
			}
			if d.ExitCode < 0 || d.ExitCode > 255 {
				return errors.New("job_data field \"exit_code\" must be between 0 and 255")
			}
			return nil
		},
		Handler: HandlerFunc(func(ctx context.Context, job *Job, log Logger) (any, error) {
			var d failData
			if err := job.DecodeData(&d); err != nil {
				return nil, err
			}
			if d.Message == "" {
				d.Message = "job failed as requested"
			}
			log.Message(ctx, MessageFailed, d.Message)
			return nil, &ExitError{Code: d.ExitCode, Err: errors.New(d.Message)}
		}),
	}
}
