package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// ClusterChecker checks a cluster's hosts now (the health monitor does).
type ClusterChecker interface {
	CheckCluster(ctx context.Context, c *hosts.Cluster) (*hosts.ClusterHealth, error)
}

// CheckHostsCommand is "check_hosts": one health check of every host of the
// job's cluster, on demand, recorded as the monitor records its own. It
// finishes when the check ran; offline hosts are warnings in the log.
func CheckHostsCommand(inv *hosts.Inventory, checker ClusterChecker) jobs.Command {
	return jobs.Command{
		Name:   "check_hosts",
		Access: jobs.Access{Need: rbac.Execute},
		Handler: jobs.HandlerFunc(func(ctx context.Context, job *jobs.Job, log jobs.Logger) (any, error) {
			if job.ClusterID <= 0 {
				return nil, errors.New("check_hosts needs a cluster_id")
			}
			c, err := inv.Get(ctx, job.ClusterID)
			if err != nil {
				return nil, fmt.Errorf("cluster %d: %w", job.ClusterID, err)
			}
			health, err := checker.CheckCluster(ctx, c)
			if err != nil {
				return nil, err
			}
			nodes := make([]map[string]any, len(c.Hosts))
			for i, h := range c.Hosts {
				check := health.Hosts[i]
				status := jobs.MessageSuccess
				if !check.Online {
					status = jobs.MessageWarning
				}
				log.Message(ctx, status, fmt.Sprintf("%s: %s", h.Hostname, check.Message))
				nodes[i] = map[string]any{"hostname": h.Hostname, "online": check.Online, "message": check.Message}
			}
			log.Message(ctx, jobs.MessageSuccess, fmt.Sprintf("Cluster state: %s.", health.After))
			return map[string]any{"state": health.After, "hosts": nodes}, nil
		}),
	}
}
