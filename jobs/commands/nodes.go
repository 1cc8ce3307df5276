package commands

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
)

// NodeDeps are what node commands need; cmon's main builds them. Zero values
// of the tuning fields take the defaults named on each.
type NodeDeps struct {
	Inventory *hosts.Inventory
	// Tree keeps each cluster's access-control object in step with the
	// inventory: it is created with the cluster, owned by who registered it.
	Tree ClusterObjects
	// SSH checks host keys strictly: every command after registration uses it.
	SSH Runner
	// Learn records the host keys of nodes not seen before, in the same store
	// as SSH: registration and add_node only. A key on record is checked even
	// by Learn, so a reinstalled node is never re-trusted silently.
	Learn Runner
	// HostKeys is the store behind SSH and Learn (hosts.DBKnownHosts). When
	// set, the keys of nodes that no cluster uses any more are forgotten: after
	// remove_cluster, remove_node, and the keys a failed registration or
	// add_node learned. Removing a cluster and registering it again is then
	// how an operator re-trusts a reinstalled node. Nil keeps every key.
	HostKeys HostKeyStore
	// OutputLimit is how many bytes of each stream of each node a result
	// keeps (default 256 KiB).
	OutputLimit int
	// ResultLimit bounds the output kept over all nodes and streams of one
	// job (default 2 MiB), so that a result, escaped as JSON, still fits the
	// database's result column and packet size.
	ResultLimit int
	// MaxMessages bounds the output lines logged as job messages per job
	// (default 1000); the job result holds the rest.
	MaxMessages int
	// FactsTimeout bounds connecting to a node and reading its facts when it
	// is registered (default 30s).
	FactsTimeout time.Duration
	// Parallelism bounds the nodes reached at once by a concurrent exec and by
	// registration (default remote.DefaultParallelism).
	Parallelism int
	// Events, when set, hears registrations, node changes and removals for
	// the controller's event log (hosts.Alarms).
	Events EventLog
	Log    *slog.Logger // default slog.Default()
}

// EventLog records what happened to a cluster, as hosts.Alarms.Log does.
type EventLog interface {
	Log(ctx context.Context, clusterID int64, hostname, severity, component, message string)
}

// event records an event when there is an event log.
func (n *nodes) event(ctx context.Context, clusterID int64, hostname, message string) {
	if n.Events != nil {
		n.Events.Log(ctx, clusterID, hostname, hosts.LogInfo, "Cluster", message)
	}
}

// Runner runs one command on many nodes, as *remote.Client does. It returns
// within the transport's stop bound after ctx ends, having ended the remote
// commands, so the commands here simply wait for it.
type Runner interface {
	RunMany(ctx context.Context, targets []remote.Target, req remote.Request, opt remote.FanOut) *remote.FanOutResult
}

// ClusterObjects creates and deletes tree objects, such as rbac.Store does.
type ClusterObjects interface {
	CreateObject(ctx context.Context, path string, ownerUserID, ownerGroupID int64) error
	DeleteObject(ctx context.Context, path string) error
}

// HostKeyStore is a host-key store that can forget a node, such as
// hosts.DBKnownHosts.
type HostKeyStore interface {
	remote.KnownHosts
	Forget(ctx context.Context, hostport string) error
}

// Defaults of NodeDeps.
const (
	defaultNodeOutputLimit  = 256 << 10
	defaultNodeResultLimit  = 2 << 20
	defaultNodeMaxMessages  = 1000
	defaultNodeFactsTimeout = 30 * time.Second
	maxMessageLine          = 4096 // longer output lines are split over several messages
	minNodeOutputLimit      = 4 << 10
	maxFailuresInStatusText = 5
)

func (d NodeDeps) withDefaults() NodeDeps {
	if d.OutputLimit <= 0 {
		d.OutputLimit = defaultNodeOutputLimit
	}
	if d.ResultLimit <= 0 {
		d.ResultLimit = defaultNodeResultLimit
	}
	if d.MaxMessages <= 0 {
		d.MaxMessages = defaultNodeMaxMessages
	}
	if d.FactsTimeout <= 0 {
		d.FactsTimeout = defaultNodeFactsTimeout
	}
	if d.Parallelism <= 0 {
		d.Parallelism = remote.DefaultParallelism
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Learn == nil {
		// Registration then refuses unknown nodes with a clear host key error.
		d.Learn = d.SSH
	}
	return d
}

// NodeCommands lists the commands that reach nodes over SSH: exec, start,
// stop, restart, register_cluster, remove_cluster, add_node, remove_node,
// stop_cluster, start_cluster, rolling_restart and reboot.
func NodeCommands(d NodeDeps) []jobs.Command {
	n := &nodes{d.withDefaults()}
	return []jobs.Command{
		n.execCommand(),
		n.serviceCommand("start"),
		n.serviceCommand("stop"),
		n.serviceCommand("restart"),
		n.registerClusterCommand(),
		n.removeClusterCommand(),
		n.addNodeCommand(),
		n.removeNodeCommand(),
		n.clusterServiceCommand("stop_cluster", "stop", true),
		n.clusterServiceCommand("start_cluster", "start", false),
		n.rollingRestartCommand(),
		n.rebootCommand(),
	}
}

// nodes holds the dependencies of the node commands, defaults applied.
type nodes struct{ NodeDeps }

// ready reports a controller built without what node commands need.
func (n *nodes) ready(command string) error {
	if n.Inventory == nil || n.SSH == nil || n.Tree == nil {
		return fmt.Errorf("%s is not available: this controller has no inventory, access tree or ssh client", command)
	}
	return nil
}

// clusterOf loads the cluster a job of command acts on, on a controller
// ready to run it.
func (n *nodes) clusterOf(ctx context.Context, command string, job *jobs.Job) (*hosts.Cluster, error) {
	if err := n.ready(command); err != nil {
		return nil, err
	}
	c, err := n.Inventory.Get(ctx, job.ClusterID)
	if err != nil {
		return nil, fmt.Errorf("cluster %d: %w", job.ClusterID, err)
	}
	return c, nil
}
