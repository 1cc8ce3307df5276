package commands

import (
	"context"

	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// successData is the optional job_data of "success".
type successData struct {
	Message string `json:"message"`
}

// SuccessCommand is "success": it finishes at once, successfully, logging
// job_data.message if given. Clients use it to test the job machinery.
func SuccessCommand() jobs.Command {
	c := jobs.Command{Name: "success", Access: jobs.Access{Need: rbac.Execute, ClusterOptional: true}}
	c.Validate, c.Handler = jobs.Parsed(decoded[successData], func(ctx context.Context, _ *jobs.Job, d *successData, log jobs.Logger) (any, error) {
		if d.Message != "" {
			log.Message(ctx, jobs.MessageSuccess, d.Message)
		}
		return nil, nil
	})
	return c
}
