// Package commands holds cmon's job commands: what jobs run, on the engine
// of package jobs, through its public Command, Handler and Logger API. cmon
// registers them (Builtin, NodeCommands, CheckHostsCommand) and hands the
// engine NodeLeftovers for its recovery. A new command is one file here.
package commands

import (
	"context"
	"encoding/json"

	"github.com/cmon-dev/cmon/jobs"
)

// Builtin lists the commands that need nothing but the engine: success and fail.
func Builtin() []jobs.Command { return []jobs.Command{SuccessCommand(), FailCommand()} }

// decoded is the parser of commands whose job_data needs no check beyond
// its fields' types.
func decoded[T any](raw json.RawMessage) (*T, error) {
	v := new(T)
	return v, jobs.DecodeJobData(raw, v)
}

// batchLogger is a Logger that stores several messages in one write.
type batchLogger interface {
	Messages(ctx context.Context, lines []jobs.LogLine)
}

// writeLines logs lines in one write when log can, else one by one.
func writeLines(ctx context.Context, log jobs.Logger, lines []jobs.LogLine) {
	if b, ok := log.(batchLogger); ok {
		b.Messages(ctx, lines)
		return
	}
	for _, l := range lines {
		log.Message(ctx, l.Status, l.Text)
	}
}
