package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
)

// nodeRef is job_data.node of the commands that act on one node.
type nodeRef struct {
	Hostname string `json:"hostname"`
}

// serviceData is the job_data of start, stop and restart: the seed's stop
// example, {"clusterid": 21, "node": {"hostname": "192.168.20.53"}}.
type serviceData struct {
	ClusterID  int64    `json:"clusterid"`
	ClusterID2 int64    `json:"cluster_id"`
	Node       *nodeRef `json:"node"`
}

func parseServiceData(raw json.RawMessage) (*serviceData, error) {
	var d serviceData
	if err := DecodeJobData(raw, &d); err != nil {
		return nil, err
	}
	if d.Node == nil || strings.TrimSpace(d.Node.Hostname) == "" {
		return nil, errors.New("job_data needs \"node\": {\"hostname\": ...}")
	}
	if _, err := jobCluster(0, d.ClusterID, d.ClusterID2); err != nil && !errors.Is(err, errNoCluster) {
		return nil, err
	}
	return &d, nil
}

// errNoCluster: neither the job nor its job_data names a cluster.
var errNoCluster = errors.New("no cluster given")

// jobCluster settles which cluster a job acts on: the job's cluster_id and
// the ids job_data may carry must agree, so that access granted on the job's
// cluster never reaches another one.
func jobCluster(jobClusterID int64, dataIDs ...int64) (int64, error) {
	id := jobClusterID
	for _, d := range dataIDs {
		switch {
		case d < 0:
			return 0, fmt.Errorf("job_data cluster id %d is not valid", d)
		case d == 0:
		case id == 0:
			id = d
		case id != d:
			return 0, fmt.Errorf("job_data names cluster %d but the job is for cluster %d", d, id)
		}
	}
	if id <= 0 {
		return 0, errNoCluster
	}
	return id, nil
}

// serviceCommand is "start", "stop" or "restart": the cluster's service
// command template, with {action} and {service} filled in, on one node, with
// the cluster's sudo setting.
func (n *nodes) serviceCommand(action string) Command {
	return Command{
		Name:      action,
		Exclusive: true,
		Access:    Access{Need: rbac.Execute, ClusterInJobData: true},
		Validate: func(raw json.RawMessage) error {
			_, err := parseServiceData(raw)
			return err
		},
		Handler: HandlerFunc(func(ctx context.Context, job *Job, log Logger) (any, error) {
			return n.service(ctx, job, log, action)
		}),
	}
}

func (n *nodes) service(ctx context.Context, job *Job, log Logger, action string) (any, error) {
	if err := n.ready(action); err != nil {
		return nil, err
	}
	d, err := parseServiceData(job.JobData)
	if err != nil {
		return nil, err
	}
	id, err := jobCluster(job.ClusterID, d.ClusterID, d.ClusterID2)
	if errors.Is(err, errNoCluster) {
		return nil, fmt.Errorf("%s needs a cluster_id", action)
	}
	if err != nil {
		return nil, err
	}
	c, err := n.cluster(ctx, id)
	if err != nil {
		return nil, err
	}
	h, ok := findHost(c, d.Node.Hostname)
	if !ok {
		return nil, fmt.Errorf("node %s is not in cluster %q", d.Node.Hostname, c.Name)
	}
	command, err := serviceCommandLine(c, action)
	if err != nil {
		return nil, err
	}
	log.Message(ctx, MessageSuccess, fmt.Sprintf("%s: %s", h.Hostname, command))
	n.Log.InfoContext(ctx, "service action", "job_id", job.ID, "cluster_id", c.ID, "node", h.Hostname,
		"action", action, "service", c.ServiceName)
	rep := n.run(ctx, log, nodeRun{client: n.SSH, cluster: c, hosts: []hosts.Host{h},
		req: hosts.Request{Command: command, Sudo: hosts.Sudo{Enabled: c.Sudo}}})
	result := map[string]any{"action": action, "service": c.ServiceName, "command": command, "nodes": rep.Nodes}
	if ctx.Err() != nil {
		return result, context.Cause(ctx)
	}
	what := action
	if c.ServiceName != "" {
		what += " of service " + c.ServiceName
	}
	if problem := rep.Nodes[0].problem; problem != "" {
		return result, &ExitError{Code: max(1, min(rep.Nodes[0].ExitStatus, 255)),
			Err: fmt.Errorf("%s on %s failed: %s", what, h.Hostname, problem)}
	}
	log.Message(ctx, MessageSuccess, fmt.Sprintf("%s on %s: done.", upperFirst(what), h.Hostname))
	return result, nil
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
	return strings.NewReplacer("{action}", action, "{service}", shellQuote(c.ServiceName)).Replace(tmpl), nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
