package commands

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// execData is the job_data of "exec", after RPort's command API.
type execData struct {
	Command             *string         `json:"command"`
	CommandBase64       *string         `json:"command_base64"`
	ContentType         string          `json:"content_type"`
	Nodes               nodeNames       `json:"nodes"`
	HostTags            *tagSelector    `json:"host_tags"`
	TimeoutSec          float64         `json:"timeout_sec"`
	Cwd                 string          `json:"cwd"`
	IsSudo              bool            `json:"is_sudo"`
	Env                 []remote.EnvVar `json:"env"`
	StdinBase64         string          `json:"stdin_base64"`
	ExecuteConcurrently bool            `json:"execute_concurrently"`
	AbortOnError        *bool           `json:"abort_on_error"`
	OutputEncoding      string          `json:"output_encoding"`
}

// nodeNames are hosts named by their names ("db1") or as register_cluster
// and add_node name them ({"hostname": "db1", ...}), so a client may send
// the same node list to both.
type nodeNames []string

func (n *nodeNames) UnmarshalJSON(b []byte) error {
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	out := make(nodeNames, 0, len(list))
	for _, raw := range list {
		var name string
		err := json.Unmarshal(raw, &name)
		if err == nil {
			out = append(out, name)
			continue
		}
		var node struct {
			Hostname string `json:"hostname"`
		}
		if json.Unmarshal(raw, &node) != nil {
			return err // neither a name nor an object: the name's type error
		}
		if node.Hostname == "" {
			return &json.UnmarshalTypeError{Value: `object without "hostname"`, Type: reflect.TypeFor[string]()}
		}
		out = append(out, node.Hostname)
	}
	*n = out
	return nil
}

// execPlan is checked execData, ready to run.
type execPlan struct {
	command    string
	stdin      []byte
	nodes      []string
	tags       *tagSelector
	timeout    time.Duration
	dir        string
	sudo       bool
	env        []remote.EnvVar
	concurrent bool
	abort      bool
	base64     bool
}

// parseExec checks exec's job_data and makes the plan the job runs.
func parseExec(raw json.RawMessage) (*execPlan, error) {
	var d execData
	if err := jobs.DecodeJobData(raw, &d); err != nil {
		return nil, err
	}
	p := &execPlan{nodes: d.Nodes, tags: d.HostTags, dir: d.Cwd, sudo: d.IsSudo, env: d.Env,
		concurrent: d.ExecuteConcurrently, abort: d.AbortOnError == nil || *d.AbortOnError,
		timeout: time.Duration(d.TimeoutSec * float64(time.Second))}

	encoded := false
	switch ct := strings.ToLower(strings.TrimSpace(d.ContentType)); ct {
	case "", "text", "text/plain":
	case "base64":
		encoded = true
	default:
		return nil, fmt.Errorf("job_data field \"content_type\" must be \"base64\" or \"text\", not %q", d.ContentType)
	}
	switch {
	case d.Command != nil && d.CommandBase64 != nil:
		return nil, errors.New("job_data has both \"command\" and \"command_base64\": give one")
	case d.CommandBase64 != nil:
		b, err := decodeBase64(*d.CommandBase64)
		if err != nil {
			return nil, fmt.Errorf("job_data field \"command_base64\" is not valid base64: %w", err)
		}
		p.command = string(b)
	case d.Command != nil && encoded:
		// The reference's command API form: content_type says command is base64.
		b, err := decodeBase64(*d.Command)
		if err != nil {
			return nil, fmt.Errorf("job_data field \"command\" is not valid base64 (content_type is base64): %w", err)
		}
		p.command = string(b)
	case d.Command != nil:
		p.command = *d.Command
	default:
		return nil, errors.New("job_data needs \"command\" (or \"command_base64\")")
	}
	switch {
	case strings.TrimSpace(p.command) == "":
		return nil, errors.New("the command is empty")
	case strings.IndexByte(p.command, 0) >= 0:
		return nil, errors.New("the command contains a NUL byte")
	case strings.IndexByte(p.dir, 0) >= 0:
		return nil, errors.New("job_data field \"cwd\" contains a NUL byte")
	}

	if len(d.Nodes) > 0 && d.HostTags != nil {
		return nil, errors.New("job_data has both \"nodes\" and \"host_tags\": give one")
	}
	for _, n := range d.Nodes {
		if strings.TrimSpace(n) == "" {
			return nil, errors.New("job_data field \"nodes\" holds an empty host name")
		}
	}
	if p.tags != nil {
		if err := p.tags.check(); err != nil {
			return nil, err
		}
	}
	for _, e := range d.Env {
		if err := e.Check(); err != nil {
			return nil, fmt.Errorf("job_data field \"env\": %w", err)
		}
	}
	if d.StdinBase64 != "" {
		b, err := decodeBase64(d.StdinBase64)
		if err != nil {
			return nil, fmt.Errorf("job_data field \"stdin_base64\" is not valid base64: %w", err)
		}
		p.stdin = b
	}
	switch enc := strings.ToLower(strings.TrimSpace(d.OutputEncoding)); enc {
	case "", "text", "utf-8", "utf8":
	case "base64":
		p.base64 = true
	default:
		return nil, fmt.Errorf("job_data field \"output_encoding\" must be \"base64\" or \"utf-8\", not %q", d.OutputEncoding)
	}
	return p, nil
}

// decodeBase64 reads standard base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// execCommand is "exec" (alias "run_command"): a shell command on nodes of
// the job's cluster, all of them or those named by job_data.nodes or
// job_data.host_tags, one after another (stopping at the first failure
// unless abort_on_error is false) or concurrently. Output lines are logged as
// they arrive; the result has every node's exit status and output. The job
// finishes when every node exited 0.
//
// timeout_sec bounds each node's command (RPort's meaning); the whole job is
// bounded by the controller's maximum run time.
func (n *nodes) execCommand() jobs.Command {
	c := jobs.Command{
		Name:           "exec",
		Access:         jobs.Access{Need: rbac.Execute},
		Aliases:        []string{"run_command"},
		TimeoutPerNode: true,
	}
	c.Validate, c.Handler = jobs.Parsed(parseExec, n.exec)
	c.Preflight = n.execPreflight
	return c
}

// commandChecker tells whether the command filters let a command run on a
// cluster's nodes (*remote.Client does).
type commandChecker interface {
	CheckCommand(cluster, command string) error
}

// execPreflight refuses at create what would surely fail on every run:
// nodes the cluster does not have, tags that match none of its nodes, a
// command the filters refuse.
func (n *nodes) execPreflight(ctx context.Context, clusterID int64, raw json.RawMessage) error {
	if n.Inventory == nil {
		return nil // a controller without nodes refuses the job when it runs
	}
	p, err := parseExec(raw)
	if err != nil {
		return err
	}
	c, err := n.Inventory.Get(ctx, clusterID)
	if err != nil {
		return nil // no such cluster: the access check answered that already, or the run will
	}
	if _, err := pickHosts(c, p.nodes, p.tags); err != nil {
		return err
	}
	if check, ok := n.SSH.(commandChecker); ok {
		if err := check.CheckCommand(c.Name, p.command); err != nil {
			return fmt.Errorf("the command filter refuses it: %w", err)
		}
	}
	return nil
}

func (n *nodes) exec(ctx context.Context, job *jobs.Job, p *execPlan, log jobs.Logger) (any, error) {
	c, err := n.clusterOf(ctx, "exec", job)
	if err != nil {
		return nil, err
	}
	picked, err := pickHosts(c, p.nodes, p.tags)
	if err != nil {
		return nil, err
	}
	n.Log.InfoContext(ctx, "exec on nodes", "job_id", job.ID, "cluster_id", c.ID, "nodes", len(picked),
		"concurrent", p.concurrent, "sudo", c.Sudo || p.sudo)
	rep := n.run(ctx, log, nodeRun{
		client: n.SSH, cluster: c, hosts: picked, base64: p.base64,
		req: remote.Request{Command: p.command, Env: p.env, Stdin: p.stdin, Dir: p.dir,
			Sudo: remote.Sudo{Enabled: c.Sudo || p.sudo}, Timeout: p.timeout},
		// RPort ignores abort_on_error in concurrent mode: every node runs.
		opt: remote.FanOut{Concurrent: p.concurrent, Parallelism: n.Parallelism, AbortOnError: p.abort && !p.concurrent},
	})
	if ctx.Err() != nil {
		return rep, context.Cause(ctx)
	}
	return rep, rep.err()
}
