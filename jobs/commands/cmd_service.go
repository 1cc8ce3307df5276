package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// nodeRef is job_data.node of the commands that act on one node.
type nodeRef struct {
	Hostname string `json:"hostname"`
}

// serviceData is the job_data of start, stop and restart, as the
// reference's clients send it: {"clusterid": 21, "node": {"hostname": "192.168.20.53"}}.
type serviceData struct {
	ClusterID  int64    `json:"clusterid"`
	ClusterID2 int64    `json:"cluster_id"`
	Node       *nodeRef `json:"node"`
}

// parseServiceData checks start's, stop's and restart's job_data; the
// cluster ids in it are settled by the registry's Draft.
func parseServiceData(raw json.RawMessage) (*serviceData, error) {
	d, err := decoded[serviceData](raw)
	if err != nil {
		return nil, err
	}
	return d, d.checkNode()
}

// checkNode refuses job_data without a node.
func (d *serviceData) checkNode() error {
	if d.Node == nil || strings.TrimSpace(d.Node.Hostname) == "" {
		return errors.New("job_data needs \"node\": {\"hostname\": ...}")
	}
	return nil
}

// serviceCommand is "start", "stop" or "restart": the cluster's service
// command template, with {action} and {service} filled in, on one node, with
// the cluster's sudo setting.
func (n *nodes) serviceCommand(action string) jobs.Command {
	c := jobs.Command{
		Name:      action,
		Exclusive: true,
		Access:    jobs.Access{Need: rbac.Execute, ClusterInJobData: true},
	}
	c.Validate, c.Handler = jobs.Parsed(parseServiceData, func(ctx context.Context, job *jobs.Job, d *serviceData, log jobs.Logger) (any, error) {
		return n.service(ctx, job, d, log, action)
	})
	return c
}

func (n *nodes) service(ctx context.Context, job *jobs.Job, d *serviceData, log jobs.Logger, action string) (any, error) {
	c, err := n.clusterOf(ctx, action, job)
	if err != nil {
		return nil, err
	}
	h, ok := findHost(c, d.Node.Hostname)
	if !ok {
		return nil, fmt.Errorf("node %s is not in cluster %q", d.Node.Hostname, c.Name)
	}
	return n.serviceOn(ctx, job, log, c, []hosts.Host{h}, action, remote.FanOut{}, 0)
}

// serviceOn runs the cluster's service command for action on hs, one node
// after another in the order given, each bounded by timeout (0: the job's
// bound only). The result reports every node; the job fails if one did.
func (n *nodes) serviceOn(ctx context.Context, job *jobs.Job, log jobs.Logger, c *hosts.Cluster, hs []hosts.Host, action string,
	opt remote.FanOut, timeout time.Duration) (any, error) {
	command, err := serviceCommandLine(c, action)
	if err != nil {
		return nil, err
	}
	names := hostnames(hs)
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("%s: %s", strings.Join(names, ", "), command))
	n.Log.InfoContext(ctx, "service action", "job_id", job.ID, "cluster_id", c.ID, "nodes", names,
		"action", action, "service", c.ServiceName)
	rep := n.run(ctx, log, nodeRun{client: n.SSH, cluster: c, hosts: hs, opt: opt,
		req: remote.Request{Command: command, Sudo: remote.Sudo{Enabled: c.Sudo}, Timeout: timeout}})
	result := map[string]any{"action": action, "service": c.ServiceName, "command": command, "nodes": rep.Nodes}
	if ctx.Err() != nil {
		return result, context.Cause(ctx)
	}
	what := action
	if c.ServiceName != "" {
		what += " of service " + c.ServiceName
	}
	if len(hs) == 1 {
		if problem := rep.Nodes[0].problem; problem != "" {
			return result, &jobs.ExitError{Code: max(1, min(rep.Nodes[0].ExitStatus, 255)), Signal: rep.Nodes[0].ExitSignal,
				Err: fmt.Errorf("%s on %s failed: %s", what, hs[0].Hostname, problem)}
		}
	} else if err := rep.err(); err != nil {
		return result, fmt.Errorf("%s: %w", what, err) // its *ExitError holds the code
	}
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("%s on %s: done.", upperFirst(what), strings.Join(names, ", ")))
	return result, nil
}

// hostnames are the names of hs, in order.
func hostnames(hs []hosts.Host) []string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Hostname
	}
	return names
}

// serviceCommandLine fills in the cluster's template; the service name is
// quoted, since it comes from a client.
func serviceCommandLine(c *hosts.Cluster, action string) (string, error) {
	tmpl := c.ServiceCommand
	if strings.TrimSpace(tmpl) == "" {
		tmpl = hosts.DefaultServiceCommand
	}
	if strings.Contains(tmpl, "{service}") && c.ServiceName == "" {
		return "", fmt.Errorf("cluster %q has no service_name for its service command %q", c.Name, tmpl)
	}
	return strings.NewReplacer("{action}", action, "{service}", remote.ShellQuote(c.ServiceName)).Replace(tmpl), nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
