package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/integration/fleet"
	"github.com/cmon-dev/cmon/integration/services"
)

// node is how a tool reaches the nodes of a fan-out.
type nodeAccess struct {
	addrs     []string
	port      int
	user, key string
}

// sshOptions make ssh trust the throwaway nodes and never prompt.
func (n nodeAccess) sshOptions() []string {
	return []string{"-i", n.key, "-p", strconv.Itoa(n.port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
}

// fanout runs "exec true" on 10 and 50 real sshd nodes, cold (a controller
// just started, no connection open) and pooled, against parallel-ssh,
// ansible and a sequential ssh loop doing the same, in the same run.
func (b *bench) fanout(ctx context.Context) error {
	most := slices.Max(b.size.fanout)
	sshd, err := services.StartSSHD(ctx, services.NodeAddrs(most))
	if err != nil {
		return err
	}
	defer sshd.Stop()
	dir, err := b.subdir("fanout")
	if err != nil {
		return err
	}
	c, err := startCmon(ctx, b.bin, dir, "", "--monitor-interval", "24h")
	if err != nil {
		return err
	}
	defer func() { c.stop() }()
	tools, err := findTools()
	if err != nil {
		return err
	}
	ids := map[int]int64{}
	for _, n := range b.size.fanout {
		id, err := register(ctx, c, fmt.Sprintf("fan%d", n), sshd.User, sshd.ClientKey, sshd.Port, sshd.Addrs[:n])
		if err != nil {
			return err
		}
		ids[n] = id
	}
	for _, n := range b.size.fanout {
		nodes := nodeAccess{addrs: sshd.Addrs[:n], port: sshd.Port, user: sshd.User, key: sshd.ClientKey}
		if err := c.restart(ctx); err != nil {
			return err
		}
		cold, err := execTrue(ctx, c, ids[n])
		if err != nil {
			return err
		}
		pooled, err := best(3, func() (time.Duration, error) { return execTrue(ctx, c, ids[n]) })
		if err != nil {
			return err
		}
		pssh, err := best(1, func() (time.Duration, error) { return tools.parallelSSH(ctx, dir, nodes, n) })
		if err != nil {
			return err
		}
		ansible, err := best(1, func() (time.Duration, error) { return tools.ansible(ctx, dir, nodes, n) })
		if err != nil {
			return err
		}
		loop, err := best(1, func() (time.Duration, error) { return sshLoop(ctx, nodes) })
		if err != nil {
			return err
		}
		name := fmt.Sprintf("fan-out exec true on %d sshd nodes", n)
		ps := fmt.Sprintf("parallel-ssh -p %d", n)
		b.add(name+", cold", "s", cold.Seconds(), pssh.Seconds(), ps)
		b.add(name+", pooled", "s", pooled.Seconds(), pssh.Seconds(), ps)
		b.add(name+", cold", "s", cold.Seconds(), ansible.Seconds(), fmt.Sprintf("ansible -f %d -m raw", n))
		b.add(name+", cold", "s", cold.Seconds(), loop.Seconds(), "a sequential ssh loop")
	}
	return nil
}

// register runs register_cluster for nodes and returns the cluster's id.
func register(ctx context.Context, c *cmonProc, name, user, key string, port int, addrs []string) (int64, error) {
	var nodes []map[string]any
	for _, a := range addrs {
		nodes = append(nodes, map[string]any{"hostname": a, "port": 3306, "role": "node"})
	}
	if _, err := c.runJob(ctx, 0, "register_cluster", map[string]any{"cluster_name": name, "cluster_type": "galera",
		"ssh_user": user, "ssh_keyfile": key, "ssh_port": port, "nodes": nodes}); err != nil {
		return 0, err
	}
	info, err := c.call("clusters", fmt.Sprintf(`{"operation":"getClusterInfo","cluster_name":%q,"with_hosts":false}`, name))
	if err != nil {
		return 0, err
	}
	return int64(info["cluster"].(map[string]any)["cluster_id"].(float64)), nil
}

// execTrue runs "true" on every node of a cluster at once and returns the
// time from submitting the job to seeing it finished.
func execTrue(ctx context.Context, c *cmonProc, clusterID int64) (time.Duration, error) {
	start := time.Now()
	_, err := c.runJob(ctx, clusterID, "exec", map[string]any{"command": "true", "execute_concurrently": true, "timeout_sec": 120})
	return time.Since(start), err
}

// best is the shortest of n runs.
func best(n int, fn func() (time.Duration, error)) (time.Duration, error) {
	var out time.Duration
	for i := range n {
		d, err := fn()
		if err != nil {
			return 0, err
		}
		if i == 0 || d < out {
			out = d
		}
	}
	return out, nil
}

// tools are the programs cmon's fan-out is compared with (services.BenchTools,
// which make bench installs when missing).
type tools struct{ pssh, ansibleBin string }

func findTools() (*tools, error) {
	pssh, err := services.Find("parallel-ssh")
	if err != nil {
		return nil, err
	}
	ansible, err := services.Find("ansible")
	if err != nil {
		return nil, err
	}
	return &tools{pssh: pssh, ansibleBin: ansible}, nil
}

func timeCommand(ctx context.Context, cmd *exec.Cmd) (time.Duration, error) {
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %.500s", filepath.Base(cmd.Path), err, out)
	}
	return time.Since(start), ctx.Err()
}

func (t *tools) parallelSSH(ctx context.Context, dir string, n nodeAccess, parallel int) (time.Duration, error) {
	hostsFile := filepath.Join(dir, "pssh-hosts")
	if err := os.WriteFile(hostsFile, []byte(strings.Join(n.addrs, "\n")+"\n"), 0o600); err != nil {
		return 0, err
	}
	return timeCommand(ctx, exec.CommandContext(ctx, t.pssh, "-h", hostsFile, "-l", n.user, "-p", strconv.Itoa(parallel),
		"-t", "120", "-x", strings.Join(n.sshOptions(), " "), "true"))
}

func (t *tools) ansible(ctx context.Context, dir string, n nodeAccess, forks int) (time.Duration, error) {
	inventory := filepath.Join(dir, "ansible-hosts")
	var b strings.Builder
	b.WriteString("[nodes]\n")
	for _, a := range n.addrs {
		b.WriteString(a + "\n")
	}
	fmt.Fprintf(&b, "[nodes:vars]\nansible_user=%s\nansible_port=%d\nansible_ssh_private_key_file=%s\n"+
		"ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n", n.user, n.port, n.key)
	if err := os.WriteFile(inventory, []byte(b.String()), 0o600); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, t.ansibleBin, "nodes", "-i", inventory, "-f", strconv.Itoa(forks), "-m", "raw", "-a", "true")
	cmd.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_LOCAL_TEMP="+dir, "ANSIBLE_NOCOLOR=1")
	return timeCommand(ctx, cmd)
}

func sshLoop(ctx context.Context, n nodeAccess) (time.Duration, error) {
	start := time.Now()
	for _, a := range n.addrs {
		args := append(n.sshOptions(), n.user+"@"+a, "true")
		if out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("ssh %s: %w: %s", a, err, out)
		}
	}
	return time.Since(start), nil
}

// fleet registers fleetHosts simulated nodes in fleetClusters clusters and
// measures what the health monitor costs per full round, and a wide fan-out
// against parallel-ssh on the same simulated nodes.
func (b *bench) fleet(ctx context.Context) error {
	dir, err := b.subdir("fleet")
	if err != nil {
		return err
	}
	f, err := fleet.Start(ctx, dir, fleet.Addrs(b.size.fleetHosts), 0)
	if err != nil {
		return err
	}
	defer f.Stop()
	const interval = 5 * time.Second
	c, err := startCmon(ctx, b.bin, dir, "", "--monitor-interval", interval.String())
	if err != nil {
		return err
	}
	defer c.stop()
	tools, err := findTools()
	if err != nil {
		return err
	}
	per := b.size.fleetHosts / b.size.fleetClusters
	start := time.Now()
	errs := make(chan error, b.size.fleetClusters)
	for i := range b.size.fleetClusters {
		go func() {
			_, err := register(ctx, c, fmt.Sprintf("fleet%03d", i), f.User, f.ClientKey, f.Port, f.Addrs[i*per:(i+1)*per])
			errs <- err
		}()
	}
	for range b.size.fleetClusters {
		if err := <-errs; err != nil {
			return err
		}
	}
	registered := time.Since(start)
	all := nodeAccess{addrs: f.Addrs[:per*b.size.fleetClusters], user: f.User, key: f.ClientKey, port: f.Port}
	touch, err := tools.parallelSSH(ctx, dir, all, 100)
	if err != nil {
		return err
	}
	hosts := len(all.addrs)
	b.add(fmt.Sprintf("fleet: register %d simulated hosts in %d clusters", hosts, b.size.fleetClusters), "s",
		registered.Seconds(), touch.Seconds(), "parallel-ssh -p 100 running true on every host")

	rounds, err := monitorRounds(ctx, f, c, hosts, b.size.fleetRounds)
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("fleet: health monitor round over %d hosts", hosts), "s", rounds.wall.Seconds(), interval.Seconds(), "the monitor interval")
	b.add(fmt.Sprintf("fleet: controller CPU per monitor round over %d hosts", hosts), "s", rounds.cpu.Seconds(), rounds.wall.Seconds(), "the round's wall time")
	b.add(fmt.Sprintf("fleet: ssh connections open after monitor rounds over %d hosts", hosts), "connections", float64(f.Open()), float64(hosts), "one per host")

	wide, err := register(ctx, c, "wide", f.User, f.ClientKey, f.Port, f.Addrs[:b.size.fleetWide])
	if err != nil {
		return err
	}
	took, err := best(3, func() (time.Duration, error) { return execTrue(ctx, c, wide) })
	if err != nil {
		return err
	}
	wideNodes := nodeAccess{addrs: f.Addrs[:b.size.fleetWide], user: f.User, key: f.ClientKey, port: f.Port}
	pssh, err := tools.parallelSSH(ctx, dir, wideNodes, b.size.fleetWide)
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("fleet: fan-out exec true on %d simulated nodes, pooled", b.size.fleetWide), "s", took.Seconds(), pssh.Seconds(),
		fmt.Sprintf("parallel-ssh -p %d", b.size.fleetWide))
	return nil
}

// monitorCost is the average full monitor round.
type monitorCost struct{ wall, cpu time.Duration }

// monitorRounds waits for n full rounds of the monitor (each host checked
// once: hosts commands on the simulator) and measures their wall time and
// the controller's processor time over them.
func monitorRounds(ctx context.Context, f *fleet.Fleet, c *cmonProc, hosts, n int) (monitorCost, error) {
	var cost monitorCost
	deadline := time.Now().Add(10 * time.Minute)
	for range n {
		// A round starts when commands flow after a quiet moment.
		for last := f.Commands(); ; {
			time.Sleep(300 * time.Millisecond)
			now := f.Commands()
			if now == last {
				break
			}
			last = now
		}
		base := f.Commands()
		for f.Commands() == base {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return cost, fmt.Errorf("no monitor round started")
			}
			time.Sleep(time.Millisecond)
		}
		start, cpu := time.Now(), c.cpu()
		for f.Commands() < base+int64(hosts) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return cost, fmt.Errorf("a monitor round did not finish")
			}
			time.Sleep(time.Millisecond)
		}
		cost.wall += time.Since(start)
		cost.cpu += c.cpu() - cpu
	}
	cost.wall /= time.Duration(n)
	cost.cpu /= time.Duration(n)
	return cost, nil
}
