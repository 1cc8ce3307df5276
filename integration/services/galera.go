package services

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// GaleraProvider is the wsrep provider library of Debian's galera-4.
const GaleraProvider = "/usr/lib/galera/libgalera_smm.so"

// Galera is a throwaway three-node MariaDB Galera cluster on 127.0.0.1; every
// node is a MariaDB of its own, with its own data directory and ports.
type Galera struct {
	Nodes []*MariaDB
}

var sharedGalera, breakableGalera shared[*Galera]

func startGalera() (*Galera, error) { return StartGalera(context.Background()) }

// SharedGalera starts one cluster for the test binary on first use; Main stops
// it. Tests get their own database on it with NewDatabase.
func SharedGalera(t testing.TB) *Galera {
	t.Helper()
	return sharedGalera.get(t, "Galera", startGalera)
}

// BreakableGalera is a second cluster of the test binary, for a test that
// kills its nodes while others use the shared one: one test at a time may
// use it, and must leave it whole.
func BreakableGalera(t testing.TB) *Galera {
	t.Helper()
	return breakableGalera.get(t, "Galera", startGalera)
}

// WarmGalera starts both clusters in the background, for the tests that use
// them to find them running.
func WarmGalera() {
	sharedGalera.warm(startGalera)
	breakableGalera.warm(startGalera)
}

// galeraNodes is the cluster's size: the smallest that keeps a majority when
// one node is away.
const galeraNodes = 3

// StartGalera bootstraps the cluster on its first node and joins the others
// one at a time, each by an rsync state transfer; mariadb-server, galera-4 and
// rsync must be installed.
func StartGalera(ctx context.Context) (*Galera, error) {
	provider, err := Find(GaleraProvider)
	if err != nil {
		return nil, err
	}
	if _, err := Find("rsync"); err != nil {
		return nil, err
	}
	// Per node: group communication, incremental and full state transfer.
	ports, err := freePorts("127.0.0.1", 3*galeraNodes)
	if err != nil {
		return nil, err
	}
	var members []string
	for i := range galeraNodes {
		members = append(members, fmt.Sprintf("127.0.0.1:%d", ports[3*i]))
	}
	g := &Galera{}
	for i := range galeraNodes {
		gcomm, ist, sst := ports[3*i], ports[3*i+1], ports[3*i+2]
		args := []string{"--binlog-format=ROW", "--innodb-autoinc-lock-mode=2", "--wsrep-on=ON",
			"--wsrep-provider=" + provider, "--wsrep-cluster-address=gcomm://" + strings.Join(members, ","),
			fmt.Sprintf("--wsrep-node-address=127.0.0.1:%d", gcomm),
			// A killed node is noticed in about 2 s (the default is 5 to 15 s,
			// for real networks), which is how long the others' commits stall.
			fmt.Sprintf("--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:%d;ist.recv_addr=127.0.0.1:%d;"+
				"evs.suspect_timeout=PT2S;evs.inactive_timeout=PT8S;evs.keepalive_period=PT0.5S", gcomm, ist),
			fmt.Sprintf("--wsrep-sst-receive-address=127.0.0.1:%d", sst), "--wsrep-sst-method=rsync"}
		if i == 0 {
			args = append(args, "--wsrep-new-cluster")
		}
		node, err := installMariaDB(ctx, fmt.Sprintf("cmon-galera%d-", i+1), args)
		if err != nil {
			g.Stop()
			return nil, err
		}
		if err := join(ctx, node, i > 0); err != nil {
			os.RemoveAll(node.dir)
			g.Stop()
			return nil, fmt.Errorf("galera node %d: %w", i+1, err)
		}
		g.Nodes = append(g.Nodes, node)
	}
	return g, nil
}

// join starts a node and waits until it has the cluster's data; on failure the
// node is not running.
func join(ctx context.Context, node *MariaDB, joiner bool) error {
	if joiner && os.Geteuid() == 0 {
		// The rsync daemon receiving the state transfer drops root for nobody.
		if out, err := exec.CommandContext(ctx, "chown", "-R", "nobody:nogroup", node.dir).CombinedOutput(); err != nil {
			return fmt.Errorf("chown data directory: %w: %s", err, lastLines(out, 3))
		}
	}
	if err := node.start(ctx); err != nil {
		return err
	}
	err := WaitFor(ctx, 60*time.Second, func() error {
		state, err := node.query(ctx, "SHOW STATUS LIKE 'wsrep_local_state_comment'")
		if err != nil {
			return err
		}
		if !strings.HasSuffix(state, "Synced") {
			return fmt.Errorf("state %q", state)
		}
		return nil
	})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(node.dir, "err.log"))
		stopProcess(node.cmd, node.done)
		return fmt.Errorf("%w: %s", err, lastLines(log, 5))
	}
	return nil
}

// freePorts finds n distinct free TCP ports on addr, holding each until all are found.
func freePorts(addr string, n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", addr, err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// NewDatabase creates an empty database with its own user, reachable through
// every node, and returns one DSN per node; it is dropped when the test ends.
func (g *Galera) NewDatabase(t testing.TB) []string {
	t.Helper()
	return newDatabase(t, "Galera", g.CreateDatabase)
}

// CreateDatabase is NewDatabase for callers without a testing.TB. It returns
// once every node has the database and its user.
func (g *Galera) CreateDatabase(ctx context.Context) (dsns []string, drop func(), err error) {
	name, password, drop, err := g.Nodes[0].createDatabase(ctx)
	if err != nil {
		return nil, nil, err
	}
	// wsrep_sync_wait=15 makes the check wait until the node has applied
	// everything the cluster committed before it.
	check := fmt.Sprintf("SET SESSION wsrep_sync_wait=15; SHOW GRANTS FOR '%s'@'127.0.0.1'", name)
	for i, node := range g.Nodes {
		err := WaitFor(ctx, 30*time.Second, func() error {
			grants, err := node.query(ctx, check)
			if err == nil && !strings.Contains(grants, "ALL PRIVILEGES") {
				err = errors.New("grant not replicated yet")
			}
			return err
		})
		if err != nil {
			drop()
			return nil, nil, fmt.Errorf("database on galera node %d: %w", i+1, err)
		}
		dsns = append(dsns, databaseDSN(name, password, node.Port))
	}
	return dsns, drop, nil
}

// Kill ends node i (from 0) with SIGKILL, as a crash would, keeping its data
// directory for Restart.
func (g *Galera) Kill(i int) {
	node := g.Nodes[i]
	_ = node.cmd.Process.Kill()
	node.done <- <-node.done // Stop still finds the exit
}

// Restart starts node i again after Kill, on its old ports, and returns once
// it has rejoined the cluster and is Synced.
func (g *Galera) Restart(ctx context.Context, i int) error {
	node := g.Nodes[i]
	// The first node bootstrapped the cluster; it now joins the survivors.
	node.serverArgs = slices.DeleteFunc(node.serverArgs, func(arg string) bool { return arg == "--wsrep-new-cluster" })
	if err := join(ctx, node, true); err != nil {
		return fmt.Errorf("galera node %d: %w", i+1, err)
	}
	return nil
}

// ServerList is one DSN naming every node of dsns (as NewDatabase returns
// them), node first first: what a controller that moves to a live node
// when its own dies is given.
func ServerList(dsns []string, first int) string {
	var addrs []string
	for k := range dsns {
		dsn := dsns[(first+k)%len(dsns)]
		open, closing := strings.Index(dsn, "tcp(")+len("tcp("), strings.Index(dsn, ")/")
		addrs = append(addrs, dsn[open:closing])
	}
	dsn := dsns[first]
	return dsn[:strings.Index(dsn, "tcp(")] + "tcp(" + strings.Join(addrs, ",") + dsn[strings.Index(dsn, ")/"):]
}

// Stop ends the nodes, joiners first, and removes their data.
func (g *Galera) Stop() {
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		g.Nodes[i].Stop()
	}
}
