package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cmon-dev/cmon/sql"
)

// jobs measures dispatch latency and queue throughput on each backend.
func (b *bench) jobs(ctx context.Context) error {
	backends, err := b.backends(ctx)
	if err != nil {
		return err
	}
	for _, bk := range backends {
		dir, err := b.subdir("jobs-" + bk.name)
		if err != nil {
			return err
		}
		dsn, err := bk.dsn()
		if err != nil {
			return err
		}
		c, err := startCmon(ctx, b.bin, dir, dsn, "--monitor-interval", "24h")
		if err != nil {
			return err
		}
		err = b.dispatch(ctx, c, bk.name)
		if err == nil {
			err = b.queue(ctx, c, bk.name)
		}
		c.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", bk.name, err)
		}
	}
	return nil
}

// dispatch runs "success" jobs one at a time and reads, from each job's own
// timestamps, how long it took from creation to RUNNING and to FINISHED;
// the baseline is a ping's round trip, the floor of any request.
func (b *bench) dispatch(ctx context.Context, c *cmonProc, backend string) error {
	pings, err := latencies(b.size.samples, func(int) error {
		_, err := c.call("controller", `{"operation":"ping"}`)
		return err
	})
	if err != nil {
		return err
	}
	running, finished, err := b.dispatchTimes(ctx, []*cmonProc{c})
	if err != nil {
		return err
	}
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p99", 0.99}} {
		b.add(fmt.Sprintf("dispatch to RUNNING %s (%s)", q.name, backend), "ms", percentile(running, q.q), percentile(pings, q.q), "ping round trip "+q.name)
		b.add(fmt.Sprintf("dispatch to FINISHED %s (%s)", q.name, backend), "ms", percentile(finished, q.q), percentile(pings, q.q), "ping round trip "+q.name)
	}
	return nil
}

// dispatchTimes runs dispatchJobs "success" jobs one at a time, created
// round robin through the controllers cs and each waited for through the
// one that created it, and returns, sorted, how long each took from creation
// to RUNNING and to FINISHED by its own timestamps.
func (b *bench) dispatchTimes(ctx context.Context, cs []*cmonProc) (running, finished []time.Duration, err error) {
	for i := range b.size.dispatchJobs {
		job, err := cs[i%len(cs)].runJob(ctx, 0, "success", map[string]any{})
		if err != nil {
			return nil, nil, err
		}
		created := jobTime(job, "created")
		running = append(running, jobTime(job, "started").Sub(created))
		finished = append(finished, jobTime(job, "ended").Sub(created))
	}
	slices.Sort(running)
	slices.Sort(finished)
	return running, finished, nil
}

// queue submits queueJobs "success" jobs at once from many clients and
// measures how fast they all finish, against how fast they were accepted.
func (b *bench) queue(ctx context.Context, c *cmonProc, backend string) error {
	drained, arrived, err := b.drain(ctx, []*cmonProc{c})
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("queue %d jobs at once (%s)", b.size.queueJobs, backend), "jobs/s", drained, arrived,
		"createJobInstance submissions/s, the rate they arrived")
	return nil
}

// drain submits queueJobs "success" jobs at once from rpcClients clients
// spread over the controllers cs, which share one database, and returns in
// jobs/s how fast they all finished and how fast they were accepted.
func (b *bench) drain(ctx context.Context, cs []*cmonProc) (drained, arrived float64, err error) {
	finishedJobs := func() (int, error) {
		r, err := cs[0].call("jobs", `{"operation":"getJobInstances","show_finished":true,"limit":1}`)
		if err != nil {
			return 0, err
		}
		return int(r["total"].(float64)), nil
	}
	done0, err := finishedJobs()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	jobs := make(chan struct{}, b.size.queueJobs)
	for range b.size.queueJobs {
		jobs <- struct{}{}
	}
	close(jobs)
	errs := make(chan error, rpcClients)
	var wg sync.WaitGroup
	for i := range rpcClients {
		c := cs[i%len(cs)]
		wg.Go(func() {
			for range jobs {
				if _, err := c.createJob(0, "success", map[string]any{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	submitted := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	for {
		done, err := finishedJobs()
		if err != nil {
			return 0, 0, err
		}
		if done-done0 >= b.size.queueJobs {
			break
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	n := float64(b.size.queueJobs)
	return n / time.Since(start).Seconds(), n / submitted.Seconds(), nil
}

// latencies runs fn n times and returns its sorted durations.
func latencies(n int, fn func(i int) error) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := range n {
		t := time.Now()
		if err := fn(i); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	slices.Sort(out)
	return out, nil
}

// history seeds a long job history on each backend and measures the p99 of
// a page of one cluster's jobs and of a page of a job's log, against a bare
// HTTPS server sending the same bytes.
func (b *bench) history(ctx context.Context) error {
	backends, err := b.backends(ctx)
	if err != nil {
		return err
	}
	for _, bk := range backends {
		if err := b.historyOn(ctx, bk); err != nil {
			return fmt.Errorf("%s: %w", bk.name, err)
		}
	}
	return nil
}

func (b *bench) historyOn(ctx context.Context, bk backend) error {
	dir, err := b.subdir("history-" + bk.name)
	if err != nil {
		return err
	}
	dsn, err := bk.dsn()
	if err != nil {
		return err
	}
	seeded := time.Now()
	if err := b.seedHistory(ctx, dir, dsn); err != nil {
		return fmt.Errorf("seed history: %w", err)
	}
	fmt.Fprintf(b.out, "# seeded and settled %d jobs and %d messages on %s in %s\n", b.size.historyJobs, b.size.historyLogs, bk.name, time.Since(seeded).Round(time.Second))
	c, err := startCmon(ctx, b.bin, dir, dsn, "--monitor-interval", "24h")
	if err != nil {
		return err
	}
	defer c.stop()
	for _, tc := range []struct {
		name string
		body func(i int) string
	}{
		{name: "getJobInstances limit 50 of one cluster", body: func(int) string {
			return fmt.Sprintf(`{"operation":"getJobInstances","cluster_id":%d,"limit":50}`, 1+rand.IntN(historyClusters))
		}},
		{name: "getJobLog limit 300", body: func(int) string {
			return fmt.Sprintf(`{"operation":"getJobLog","job_id":%d,"limit":300}`, 1+rand.IntN(b.size.logJobs))
		}},
	} {
		read := func(i int) error {
			_, err := c.post("jobs", tc.body(i), c.cookie)
			return err
		}
		// A first pass warms the caches, as a controller's steady state has them.
		if _, err := latencies(b.size.samples, read); err != nil {
			return err
		}
		got, err := latencies(b.size.samples, read)
		if err != nil {
			return err
		}
		reply, err := c.post("jobs", tc.body(0), c.cookie)
		if err != nil {
			return err
		}
		bare, err := startBare(ctx, dir, reply)
		if err != nil {
			return err
		}
		client := newClient(1)
		base, err := latencies(b.size.samples, func(i int) error {
			_, err := post(client, bare.base, tc.body(i), "")
			return err
		})
		bare.stop()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("history %s p99 (%s, %d jobs, %d messages)", tc.name, bk.name, b.size.historyJobs, b.size.historyLogs)
		b.add(name, "ms", percentile(got, 0.99), percentile(base, 0.99), "bare Go HTTPS server, same reply bytes")
	}
	return nil
}

// historyClusters are the clusters the history's jobs belong to.
const historyClusters = 100

// seedChunk is how many rows one seeding statement inserts.
const seedChunk = 100_000

// seedHistory writes historyJobs finished jobs over historyClusters clusters
// and historyLogs messages over the first logJobs jobs, straight into the
// database, in statements of seedChunk rows generated by the server itself.
func (b *bench) seedHistory(ctx context.Context, dir, dsn string) error {
	db, err := sql.Open(ctx, dsn, dir)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	if err := seedClusters(ctx, db, historyClusters, 1); err != nil {
		return err
	}
	// n counts 0..seedChunk-1 from the cross product of five digit tables.
	if _, err := db.ExecContext(ctx, "CREATE TABLE bench_digits (d INTEGER NOT NULL)"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO bench_digits (d) VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"); err != nil {
		return err
	}
	const numbers = `(SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d AS n
		FROM bench_digits a, bench_digits b, bench_digits c, bench_digits e, bench_digits f) nums`
	now := time.Now().UnixMilli()
	for off := 0; off < b.size.historyJobs; off += seedChunk {
		if _, err := db.ExecContext(ctx, `INSERT INTO jobs (cluster_id, title, command, job_data, tags, status, status_text,
			created, started, ended, user_id, user_name, result)
			SELECT ((n + ?) % ?) + 1, 'history', 'success', '{}', '[]', 'FINISHED', 'Job finished.', ?, ?, ?, 1, 'admin', '{}'
			FROM `+numbers+` WHERE n + ? < ?`,
			off, historyClusters, now, now, now+5, off, b.size.historyJobs); err != nil {
			return fmt.Errorf("seed jobs: %w", err)
		}
	}
	for off := 0; off < b.size.historyLogs; off += seedChunk {
		if _, err := db.ExecContext(ctx, `INSERT INTO job_messages (job_id, created, message_status, message_text)
			SELECT ((n + ?) % ?) + 1, ?, 'JOB_SUCCESS', 'a line of a long job log, as a node printed it'
			FROM `+numbers+` WHERE n + ? < ?`,
			off, b.size.logJobs, now, off, b.size.historyLogs); err != nil {
			return fmt.Errorf("seed messages: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, "DROP TABLE bench_digits"); err != nil {
		return err
	}
	return settle(ctx, db)
}

// settle waits until MariaDB has written out the pages the seeding dirtied
// and purged the undo records it left: a history of a year is not freshly
// written, and the background work of a fresh one would be measured as the
// controller's slowness.
func settle(ctx context.Context, db *sql.DB) error {
	if db.Dialect != sql.MySQL {
		return nil
	}
	for _, table := range []string{"jobs", "job_messages"} {
		if _, err := db.ExecContext(ctx, "ANALYZE TABLE "+table); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_pages_dirty', 'Innodb_history_list_length')")
		if err != nil {
			return err
		}
		busy := false
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				rows.Close()
				return err
			}
			busy = busy || n > 1000
		}
		rows.Close()
		if !busy || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
