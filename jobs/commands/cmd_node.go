package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// nodeData is the job_data of add_node and remove_node.
type nodeData struct {
	Node *nodeSpec `json:"node"`
}

func parseNodeData(raw json.RawMessage, full bool) (*nodeSpec, error) {
	var d nodeData
	if err := jobs.DecodeJobData(raw, &d); err != nil {
		return nil, err
	}
	if d.Node == nil || strings.TrimSpace(d.Node.Hostname) == "" {
		return nil, errors.New("job_data needs \"node\": {\"hostname\": ...}")
	}
	if full {
		if _, err := d.Node.host(); err != nil {
			return nil, err
		}
		if err := (fingerprints{}).add(*d.Node); err != nil {
			return nil, err
		}
	}
	return d.Node, nil
}

// addNodeCommand is "add_node": it connects to the node (learning its host
// key), reads its facts and adds it to the job's cluster.
func (n *nodes) addNodeCommand() jobs.Command {
	c := jobs.Command{
		Name:      "add_node",
		Aliases:   []string{"addnode"}, // the reference controller's name
		Access:    jobs.Access{Need: rbac.Write | rbac.Execute},
		Exclusive: true,
	}
	c.Validate, c.Handler = jobs.Parsed(func(raw json.RawMessage) (*nodeSpec, error) { return parseNodeData(raw, true) }, n.addNode)
	return c
}

func (n *nodes) addNode(ctx context.Context, job *jobs.Job, spec *nodeSpec, log jobs.Logger) (any, error) {
	c, err := n.clusterOf(ctx, "add_node", job)
	if err != nil {
		return nil, err
	}
	h, _ := spec.host()
	fps := fingerprints{}
	if err := fps.add(*spec); err != nil {
		return nil, err
	}
	if _, dup := findHost(c, h.Hostname); dup {
		return nil, fmt.Errorf("node %s is already in cluster %q", h.Hostname, c.Name)
	}
	filled, reports, err := n.probe(ctx, log, c, []hosts.Host{h}, fps)
	result := map[string]any{"cluster_id": c.ID, "nodes": reports}
	if err != nil {
		return result, fmt.Errorf("node %s was not added: %w", h.Hostname, err)
	}
	h = filled[0]
	if err := n.Inventory.AddHost(ctx, c.ID, &h); err != nil {
		n.forget(ctx, log, []string{hosts.TargetOf(c, h).Addr()})
		return result, fmt.Errorf("node %s was not added: %w", h.Hostname, err)
	}
	// Recomputes the cluster's state with the new node online.
	check := hosts.HostCheck{HostID: h.ID, Online: true, Message: h.Message, At: h.LastSeen}
	if _, state, err := n.Inventory.RecordChecks(ctx, c.ID, []hosts.HostCheck{check}); err != nil {
		n.Log.WarnContext(ctx, "update cluster state", "cluster_id", c.ID, "err", err)
	} else {
		result["state"] = state
	}
	result["host_id"] = h.ID
	n.Log.InfoContext(ctx, "node added", "job_id", job.ID, "cluster_id", c.ID, "node", h.Hostname)
	n.event(ctx, c.ID, h.Hostname, fmt.Sprintf("Node %s added by %s (job %d).", h.Hostname, job.UserName, job.ID))
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Node %s added to cluster %q.", h.Hostname, c.Name))
	return result, nil
}

// removeNodeCommand is "remove_node": it removes a node from the job's
// cluster and forgets its host key if no other cluster uses the node.
func (n *nodes) removeNodeCommand() jobs.Command {
	c := jobs.Command{
		Name:      "remove_node",
		Aliases:   []string{"removenode"}, // the reference controller's name
		Access:    jobs.Access{Need: rbac.Write | rbac.Execute},
		Exclusive: true,
	}
	c.Validate, c.Handler = jobs.Parsed(func(raw json.RawMessage) (*nodeSpec, error) { return parseNodeData(raw, false) }, n.removeNode)
	return c
}

func (n *nodes) removeNode(ctx context.Context, job *jobs.Job, spec *nodeSpec, log jobs.Logger) (any, error) {
	c, err := n.clusterOf(ctx, "remove_node", job)
	if err != nil {
		return nil, err
	}
	h, ok := findHost(c, spec.Hostname)
	if !ok {
		return nil, fmt.Errorf("node %s is not in cluster %q", spec.Hostname, c.Name)
	}
	if err := n.Inventory.RemoveHost(ctx, c.ID, h.Hostname); err != nil {
		return nil, err
	}
	result := map[string]any{"cluster_id": c.ID, "hostname": h.Hostname}
	// No checks: only the state is derived again, from the nodes left.
	if _, state, err := n.Inventory.RecordChecks(ctx, c.ID, nil); err != nil {
		n.Log.WarnContext(ctx, "update cluster state", "cluster_id", c.ID, "err", err)
	} else {
		result["state"] = state
	}
	n.Log.InfoContext(ctx, "node removed", "job_id", job.ID, "cluster_id", c.ID, "node", h.Hostname)
	n.event(ctx, c.ID, h.Hostname, fmt.Sprintf("Node %s removed by %s (job %d).", h.Hostname, job.UserName, job.ID))
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Node %s removed from cluster %q.", h.Hostname, c.Name))
	n.forget(ctx, log, []string{hosts.TargetOf(c, h).Addr()})
	return result, nil
}
