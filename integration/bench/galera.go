package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// oneMariaDB names the Galera figures' baseline.
const oneMariaDB = "one controller on one MariaDB, same run"

// galeraJobs measures dispatch latency and queue throughput through three
// controllers sharing a three-node Galera cluster, controller i on node i,
// against one controller on one MariaDB.
func (b *bench) galeraJobs(ctx context.Context) error {
	mariadb, err := b.mariadbBackend(ctx)
	if err != nil {
		return err
	}
	dir, err := b.subdir("galera-baseline")
	if err != nil {
		return err
	}
	dsn, err := mariadb.dsn()
	if err != nil {
		return err
	}
	one, err := startCmon(ctx, b.bin, dir, dsn, "--monitor-interval", "24h")
	if err != nil {
		return err
	}
	defer one.stop()

	if b.galera == nil {
		start := time.Now()
		g, err := services.StartGalera(ctx)
		if err != nil {
			return fmt.Errorf("start galera: %w", err)
		}
		b.galera = g
		fmt.Fprintf(b.out, "# started a %d-node Galera cluster in %s\n", len(g.Nodes), time.Since(start).Round(time.Second))
	}
	dsns, _, err := b.galera.CreateDatabase(ctx)
	if err != nil {
		return err
	}
	var cs []*cmonProc
	defer func() {
		for _, c := range cs {
			c.stop()
		}
	}()
	// One after the other: the first migrates the schema, as when a
	// controller joins a running installation.
	for i, dsn := range dsns {
		dir, err := b.subdir(fmt.Sprintf("galera-%d", i+1))
		if err != nil {
			return err
		}
		c, err := startCmon(ctx, b.bin, dir, dsn, "--monitor-interval", "24h")
		if err != nil {
			return fmt.Errorf("controller on galera node %d: %w", i+1, err)
		}
		cs = append(cs, c)
	}
	where := fmt.Sprintf("galera, %d controllers", len(cs))

	base, _, err := b.dispatchTimes(ctx, []*cmonProc{one})
	if err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	running, _, err := b.dispatchTimes(ctx, cs)
	if err != nil {
		return fmt.Errorf("galera: %w", err)
	}
	b.add(fmt.Sprintf("dispatch to RUNNING p50 (%s)", where), "ms", percentile(running, 0.5), percentile(base, 0.5), oneMariaDB)

	baseRate, _, err := b.drain(ctx, []*cmonProc{one})
	if err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	rate, _, err := b.drain(ctx, cs)
	if err != nil {
		return fmt.Errorf("galera: %w", err)
	}
	b.add(fmt.Sprintf("queue drain %d jobs at once (%s)", b.size.queueJobs, where), "jobs/s", rate, baseRate, oneMariaDB)
	return nil
}
