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

// registerData is the job_data of register_cluster.
type registerData struct {
	ClusterName    string     `json:"cluster_name"`
	ClusterType    string     `json:"cluster_type"`
	Vendor         string     `json:"vendor"`
	Version        string     `json:"version"`
	Tags           []string   `json:"tags"`
	SSHUser        string     `json:"ssh_user"`
	SSHKeyFile     string     `json:"ssh_keyfile"`
	SSHPort        int        `json:"ssh_port"`
	Sudo           bool       `json:"sudo"`
	ServiceName    string     `json:"service_name"`
	ServiceCommand string     `json:"service_command"`
	RebootCommand  string     `json:"reboot_command"`
	Nodes          []nodeSpec `json:"nodes"`
}

// registration is register_cluster's checked job_data: the cluster to store
// (without facts, owner or state yet) and the host keys its nodes must have.
type registration struct {
	cluster      *hosts.Cluster
	fingerprints fingerprints
}

// parseRegister checks register_cluster's job_data.
func parseRegister(raw json.RawMessage) (*registration, error) {
	var d registerData
	if err := jobs.DecodeJobData(raw, &d); err != nil {
		return nil, err
	}
	fps := fingerprints{}
	c := &hosts.Cluster{Name: d.ClusterName, Type: d.ClusterType, Vendor: d.Vendor, Version: d.Version, Tags: d.Tags,
		SSHUser: d.SSHUser, SSHKeyFile: d.SSHKeyFile, SSHPort: d.SSHPort, Sudo: d.Sudo,
		ServiceName: d.ServiceName, ServiceCommand: d.ServiceCommand, RebootCommand: d.RebootCommand}
	if c.SSHPort == 0 {
		c.SSHPort = 22
	}
	for _, s := range d.Nodes {
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		if err := fps.add(s); err != nil {
			return nil, err
		}
		// Host names are case-insensitive, and so are the nodes' host key entries.
		if _, dup := findHost(c, h.Hostname); dup {
			return nil, fmt.Errorf("node %s is listed twice", h.Hostname)
		}
		c.Hosts = append(c.Hosts, h)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// The columns' sizes, so that a bad request fails here and not at the insert.
	switch {
	case len(c.Vendor) > 64 || len(c.Version) > 64:
		return nil, errors.New("vendor and version are at most 64 characters")
	case len(c.ServiceName) > 255:
		return nil, errors.New("service_name is at most 255 characters")
	case len(c.ServiceCommand) > 1024 || len(c.RebootCommand) > 1024 || len(c.SSHKeyFile) > 1024:
		return nil, errors.New("service_command, reboot_command and ssh_keyfile are at most 1024 characters")
	case len(c.SSHUser) > 64:
		return nil, errors.New("ssh_user is at most 64 characters")
	case strings.ContainsAny(c.ServiceName, "\x00\n"):
		return nil, errors.New("service_name must be one line")
	}
	if err := checkTags("tags", c.Tags); err != nil {
		return nil, err
	}
	return &registration{cluster: c, fingerprints: fps}, nil
}

// registerClusterCommand is "register_cluster" (alias "add_cluster"): it
// connects to every node (learning host keys), reads their facts, and stores
// the cluster only if every node answered; the job's user owns it.
func (n *nodes) registerClusterCommand() jobs.Command {
	c := jobs.Command{
		Name:      "register_cluster",
		Access:    jobs.Access{Need: rbac.Write, OnRoot: true, ClusterOptional: true, SuperuserFields: []string{"ssh_keyfile"}},
		Aliases:   []string{"add_cluster"},
		Exclusive: true,
	}
	c.Validate, c.Handler = jobs.Parsed(parseRegister, n.registerCluster)
	return c
}

func (n *nodes) registerCluster(ctx context.Context, job *jobs.Job, r *registration, log jobs.Logger) (any, error) {
	if err := n.ready("register_cluster"); err != nil {
		return nil, err
	}
	c, fps := r.cluster, r.fingerprints
	// Checked early to spare the nodes; Create settles a race for the name.
	if err := n.Inventory.Unlike(ctx, c.Name); errors.Is(err, hosts.ErrClusterExists) {
		return nil, fmt.Errorf("a cluster named %q exists", c.Name)
	} else if err != nil {
		return nil, err
	}
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Registering cluster %q with %d nodes.", c.Name, len(c.Hosts)))
	filled, reports, err := n.probe(ctx, log, c, c.Hosts, fps)
	result := map[string]any{"cluster_name": c.Name, "nodes": reports}
	if err != nil {
		return result, fmt.Errorf("cluster %q was not registered: %w", c.Name, err)
	}
	c.Hosts = filled
	c.State, c.StatusText = hosts.DeriveState(len(filled), len(filled))
	if err := n.Inventory.Create(ctx, c); err != nil {
		if errors.Is(err, hosts.ErrClusterExists) {
			err = fmt.Errorf("a cluster named %q exists", c.Name)
		}
		return result, fmt.Errorf("cluster %q was not registered: %w", c.Name, err)
	}
	// The cluster is created first, so that of two registrations racing for a
	// name only the winner creates (or replaces a stale) tree object.
	if err := n.Tree.CreateObject(ctx, rbac.ClusterPath(c.Name), job.UserID, job.GroupID); err != nil {
		if derr := n.Inventory.Delete(context.WithoutCancel(ctx), c.ID); derr != nil {
			err = errors.Join(err, derr)
		}
		return result, fmt.Errorf("cluster %q was not registered: %w", c.Name, err)
	}
	result["cluster_id"] = c.ID
	n.Log.InfoContext(ctx, "cluster registered", "job_id", job.ID, "cluster_id", c.ID, "cluster", c.Name, "nodes", len(c.Hosts))
	n.event(ctx, c.ID, "", fmt.Sprintf("Cluster %s registered with %d node(s) by %s (job %d).", c.Name, len(c.Hosts), job.UserName, job.ID))
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Cluster %q registered with id %d and %d nodes.", c.Name, c.ID, len(c.Hosts)))
	return result, nil
}

// clusterRefData is the job_data of remove_cluster: the cluster may also be
// named there (the registry's Draft settles it as the job's cluster).
type clusterRefData struct {
	ClusterID  int64 `json:"cluster_id"`
	ClusterID2 int64 `json:"clusterid"`
}

// removeClusterCommand is "remove_cluster": it deletes the cluster and its
// hosts from the inventory (its jobs stay) and forgets the host keys of its
// nodes that no other cluster uses.
func (n *nodes) removeClusterCommand() jobs.Command {
	c := jobs.Command{
		Name:      "remove_cluster",
		Access:    jobs.Access{Need: rbac.Write, OnRoot: true, ClusterInJobData: true},
		Exclusive: true,
	}
	c.Validate, c.Handler = jobs.Parsed(decoded[clusterRefData], n.removeCluster)
	return c
}

func (n *nodes) removeCluster(ctx context.Context, job *jobs.Job, _ *clusterRefData, log jobs.Logger) (any, error) {
	c, err := n.clusterOf(ctx, "remove_cluster", job)
	if err != nil {
		return nil, err
	}
	if err := n.Inventory.Delete(ctx, c.ID); err != nil {
		return nil, fmt.Errorf("remove cluster %q: %w", c.Name, err)
	}
	if err := n.Tree.DeleteObject(ctx, rbac.ClusterPath(c.Name)); err != nil {
		// The cluster is gone; a stale object is replaced when the name is
		// registered again.
		log.Message(ctx, jobs.MessageWarning, fmt.Sprintf("The access-control object of cluster %q was not removed: %v.", c.Name, err))
	}
	n.Log.InfoContext(ctx, "cluster removed", "job_id", job.ID, "cluster_id", c.ID, "cluster", c.Name)
	n.event(ctx, c.ID, "", fmt.Sprintf("Cluster %s removed by %s (job %d).", c.Name, job.UserName, job.ID))
	log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Cluster %q (id %d) removed with its %d nodes.", c.Name, c.ID, len(c.Hosts)))
	addrs := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		addrs[i] = hosts.TargetOf(c, h).Addr()
	}
	n.forget(ctx, log, addrs)
	return map[string]any{"cluster_id": c.ID, "cluster_name": c.Name}, nil
}
