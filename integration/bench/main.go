// Command bench measures cmon against baselines taken side by side in the
// same run, and prints each figure as "name: value unit (baseline: value,
// ratio: x)", also as JSON:
//
//	bench [--smoke] [--only rpc,jobs,galera,history,fanout,fleet] <cmon binary> <results.json>
//
// It starts what it needs: cmon itself, a bare Go HTTPS server (this
// program, re-run as "bench bare"), MariaDB, a three-node Galera cluster,
// OpenSSH sshd nodes and the fleet simulator, all on loopback, and stops them
// at the end. --smoke runs every part at a token size, to prove the bench
// still works (make test runs it).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cmon-dev/cmon/integration/services"
)

// figure is one measured result beside its baseline.
type figure struct {
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	// BaselineName says what the baseline is.
	BaselineName string  `json:"baseline_name"`
	Ratio        float64 `json:"ratio"`
}

// sizes are how much each part does: the full bench or a smoke run.
type sizes struct {
	rounds        int           // alternating throughput rounds per side
	round         time.Duration // one round's length
	clusters      int           // clusters × nodes registered for the RPC reads
	nodes         int
	dispatchJobs  int
	queueJobs     int
	historyJobs   int
	historyLogs   int // messages, spread over historyLogJobs jobs
	logJobs       int
	samples       int // requests per latency figure
	fanout        []int
	fleetHosts    int
	fleetClusters int
	fleetWide     int // nodes of the wide fan-out on the fleet
	fleetRounds   int
}

var full = sizes{rounds: 3, round: 2 * time.Second, clusters: 100, nodes: 5, dispatchJobs: 1000, queueJobs: 2000,
	historyJobs: 1_000_000, historyLogs: 5_000_000, logJobs: 1000, samples: 500, fanout: []int{10, 50},
	fleetHosts: 2000, fleetClusters: 100, fleetWide: 500, fleetRounds: 2}

var smoke = sizes{rounds: 1, round: 200 * time.Millisecond, clusters: 3, nodes: 2, dispatchJobs: 5, queueJobs: 20,
	historyJobs: 2000, historyLogs: 5000, logJobs: 10, samples: 10, fanout: []int{2},
	fleetHosts: 20, fleetClusters: 2, fleetWide: 10, fleetRounds: 1}

// parts are the bench's sections, in the order they run.
var parts = []string{"rpc", "jobs", "galera", "history", "fanout", "fleet"}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		if err := serveBare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench bare:", err)
			os.Exit(1)
		}
		return
	}
	fs := pflag.NewFlagSet("bench", pflag.ExitOnError)
	smokeRun := fs.Bool("smoke", false, "run every part at a token size")
	only := fs.StringSlice("only", nil, "run only these parts: "+strings.Join(parts, ","))
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: bench [--smoke] [--only parts] <cmon binary> <results.json>")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	size := full
	if *smokeRun {
		size = smoke
	}
	if err := run(ctx, os.Stdout, fs.Arg(0), fs.Arg(1), size, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one run: its settings and the figures measured so far.
type bench struct {
	bin     string
	dir     string
	size    sizes
	out     io.Writer
	figures []figure
	mariadb *services.MariaDB
	galera  *services.Galera
}

func run(ctx context.Context, out io.Writer, bin, results string, size sizes, only []string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cmon-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{bin: bin, dir: dir, size: size, out: out}
	defer func() {
		if b.mariadb != nil {
			b.mariadb.Stop()
		}
		if b.galera != nil {
			b.galera.Stop()
		}
	}()
	steps := map[string]func(context.Context) error{"rpc": b.rpc, "jobs": b.jobs, "galera": b.galeraJobs, "history": b.history, "fanout": b.fanout, "fleet": b.fleet}
	for _, part := range parts {
		if len(only) > 0 && !slices.Contains(only, part) {
			continue
		}
		start := time.Now()
		if err := steps[part](ctx); err != nil {
			return fmt.Errorf("%s: %w", part, err)
		}
		fmt.Fprintf(out, "# %s took %s\n", part, time.Since(start).Round(time.Second))
	}
	data, _ := json.MarshalIndent(b.figures, "", "  ")
	if err := os.MkdirAll(filepath.Dir(results), 0o755); err != nil {
		return err
	}
	return os.WriteFile(results, append(data, '\n'), 0o644)
}

// add prints a figure and keeps it for the JSON file.
func (b *bench) add(name, unit string, value, baseline float64, baselineName string) {
	f := figure{Name: name, Unit: unit, Value: value, Baseline: baseline, BaselineName: baselineName}
	if baseline != 0 {
		f.Ratio = value / baseline
	}
	b.figures = append(b.figures, f)
	fmt.Fprintf(b.out, "%s: %s %s (baseline: %s, ratio: %.2f) [baseline: %s]\n", name, num(value), unit, num(baseline), f.Ratio, baselineName)
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.4f", v)
	}
}

// backends are the databases the job figures run on: the embedded one and
// a MariaDB database of the bench's own MariaDB.
func (b *bench) backends(ctx context.Context) ([]backend, error) {
	mariadb, err := b.mariadbBackend(ctx)
	if err != nil {
		return nil, err
	}
	return []backend{{name: "sqlite"}, mariadb}, nil
}

// mariadbBackend is a new database on the bench's own MariaDB, which it
// starts on first use.
func (b *bench) mariadbBackend(ctx context.Context) (backend, error) {
	if b.mariadb == nil {
		// A production-sized buffer pool (the history figures read several
		// hundred MiB, which the tests' 64 MiB would turn into a disk
		// benchmark), flushing at SSD speed and no deferred index changes,
		// so that the seeded history settles before it is measured.
		m, err := services.StartMariaDB(ctx, "--innodb-buffer-pool-size=1G", "--innodb-io-capacity=10000",
			"--innodb-io-capacity-max=20000", "--innodb-change-buffering=none")
		if err != nil {
			return backend{}, fmt.Errorf("start mariadb: %w", err)
		}
		b.mariadb = m
	}
	return backend{name: "mariadb", newDSN: func() (string, error) {
		dsn, _, err := b.mariadb.CreateDatabase(ctx)
		return dsn, err
	}}, nil
}

// backend is a database cmon runs on in a figure.
type backend struct {
	name   string
	newDSN func() (string, error) // nil: SQLite in the data directory
}

func (bk backend) dsn() (string, error) {
	if bk.newDSN == nil {
		return "", nil
	}
	return bk.newDSN()
}

// percentile is the q-quantile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))]) / float64(time.Millisecond)
}

// subdir makes a fresh directory for one part.
func (b *bench) subdir(name string) (string, error) {
	return os.MkdirTemp(b.dir, name+"-")
}
