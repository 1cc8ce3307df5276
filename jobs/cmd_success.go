package jobs

import (
	"context"

	"github.com/cmon-dev/cmon/rbac"
)

// successData is the optional job_data of "success".
type successData struct {
	Message string `json:"message"`
}

// SuccessCommand is "success": it finishes at once, successfully, logging
// job_data.message if given. Clients use it to test the job machinery.
func SuccessCommand() Command {
	c := Command{Name: "success", Access: Access{Need: rbac.Execute, ClusterOptional: true}}
	c.Validate, c.Handler = Parsed(decoded[successData], func(ctx context.Context, _ *Job, d *successData, log Logger) (any, error) {
		if d.Message != "" {
			log.Message(ctx, MessageSuccess, d.Message)
		}
		return nil, nil
	})
	return c
}
