package jobs

import (
	"context"
	"encoding/json"

	"github.com/cmon-dev/cmon/rbac"
)

// successData is the optional job_data of "success".
type successData struct {
	Message string `json:"message"`
}

// SuccessCommand is "success": it finishes at once, successfully, logging
// job_data.message if given. Clients use it to test the job machinery.
func SuccessCommand() Command {
	return Command{
		Name:     "success",
		Access:   Access{Need: rbac.Execute, ClusterOptional: true},
		Validate: func(data json.RawMessage) error { return DecodeJobData(data, &successData{}) },
		Handler: HandlerFunc(func(ctx context.Context, job *Job, log Logger) (any, error) {
			var d successData
			if err := job.DecodeData(&d); err != nil {
				return nil, err
			}
			if d.Message != "" {
				log.Message(ctx, MessageSuccess, d.Message)
			}
			return nil, nil
		}),
	}
}
