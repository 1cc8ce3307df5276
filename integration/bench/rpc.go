package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/rbac"
	"github.com/cmon-dev/cmon/rpc"
	"github.com/cmon-dev/cmon/sql"
)

// rpcClients is how many keep-alive clients load a server.
const rpcClients = 32

// rpc measures the read path against a bare HTTPS server sending the same
// bytes, the login rate against bcrypt alone, and cmon's memory against the
// bare server's.
func (b *bench) rpc(ctx context.Context) error {
	dir, err := b.subdir("rpc")
	if err != nil {
		return err
	}
	if err := seed(ctx, dir, b.size.clusters, b.size.nodes); err != nil {
		return fmt.Errorf("seed the inventory: %w", err)
	}
	c, err := startCmon(ctx, b.bin, dir, "", "--monitor-interval", "24h")
	if err != nil {
		return err
	}
	defer c.stop()
	idle := c.rssMiB()
	var loadedRSS, bareIdle, bareLoaded float64
	listing := fmt.Sprintf("rpc getAllClusterInfo %dx%d with a session", b.size.clusters, b.size.nodes)
	for _, tc := range []struct{ name, module, body string }{
		{name: "rpc ping with a session", module: "controller", body: `{"operation":"ping"}`},
		{name: listing, module: "clusters", body: `{"operation":"getAllClusterInfo","with_hosts":true}`},
	} {
		reply, err := c.post(tc.module, tc.body, c.cookie)
		if err != nil {
			return err
		}
		bare, err := startBare(ctx, dir, reply)
		if err != nil {
			return err
		}
		bareIdle = max(bareIdle, bare.rssMiB())
		var got, baseline rate
		for range b.size.rounds {
			got.add(throughput(c.base+"/v2/"+tc.module, tc.body, c.cookie, b.size.round, &c.process, &loadedRSS))
			baseline.add(throughput(bare.base, tc.body, c.cookie, b.size.round, bare, &bareLoaded))
		}
		bare.stop()
		b.add(tc.name, "req/s", got.perSecond(), baseline.perSecond(), "bare Go HTTPS server, same reply bytes")
	}
	b.add("controller RSS idle", "MiB", idle, bareIdle, "bare Go HTTPS server idle")
	b.add("controller RSS under RPC load", "MiB", loadedRSS, bareLoaded, "bare Go HTTPS server under the same load")
	return b.logins(ctx, c)
}

// rate sums requests and time over rounds.
type rate struct {
	n       int64
	elapsed time.Duration
}

func (r *rate) add(o rate) { r.n += o.n; r.elapsed += o.elapsed }

func (r rate) perSecond() float64 { return float64(r.n) / r.elapsed.Seconds() }

// throughput is what rpcClients keep-alive clients get from url for d,
// noting the server's peak memory in peak.
func throughput(url, body, cookie string, d time.Duration, server *process, peak *float64) rate {
	client := newClient(rpcClients)
	defer client.CloseIdleConnections()
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range rpcClients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := post(client, url, body, cookie); err == nil {
					done.Add(1)
				}
			}
		})
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			*peak = max(*peak, server.rssMiB())
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	close(stopSampling)
	<-sampled
	return rate{n: done.Load(), elapsed: time.Since(start)}
}

// logins measures password logins per second and their p99 against bcrypt
// comparisons at the same cost and concurrency: the floor of a login.
func (b *bench) logins(ctx context.Context, c *cmonProc) error {
	const clients = 4
	body := fmt.Sprintf(`{"operation":"authenticateWithPassword","user_name":"admin","password":%q}`, password)
	d := b.size.round * time.Duration(b.size.rounds)
	got, lat := timed(clients, d, func() error {
		_, err := post(c.client, c.base+"/v2/auth", body, "")
		return err
	})
	hash, err := bcrypt.GenerateFromPassword([]byte(password), rbac.DefaultBcryptCost)
	if err != nil {
		return err
	}
	base, baseLat := timed(clients, d, func() error {
		return bcrypt.CompareHashAndPassword(hash, []byte(password))
	})
	if got.n == 0 {
		return fmt.Errorf("no login succeeded")
	}
	b.add("password logins", "logins/s", got.perSecond(), base.perSecond(), "bcrypt comparisons at the same cost and concurrency")
	b.add("password login p99", "ms", percentile(lat, 0.99), percentile(baseLat, 0.99), "bcrypt comparison p99")
	return ctx.Err()
}

// timed runs fn from clients goroutines for d and returns the rate of
// successes and their sorted latencies.
func timed(clients int, d time.Duration, fn func() error) (rate, []time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t := time.Now()
				if fn() == nil {
					mu.Lock()
					lat = append(lat, time.Since(t))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return rate{n: int64(len(lat)), elapsed: time.Since(start)}, lat
}

// seed registers clusters × nodes in the embedded database cmon will open,
// on loopback addresses that nothing probes (the monitor waits a day).
func seed(ctx context.Context, dir string, clusters, nodes int) error {
	db, err := sql.Open(ctx, "", dir)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	return seedClusters(ctx, db, clusters, nodes)
}

func seedClusters(ctx context.Context, db *sql.DB, clusters, nodes int) error {
	inv := hosts.NewInventory(db)
	for i := range clusters {
		c := &hosts.Cluster{Name: fmt.Sprintf("bench%03d", i), Type: "galera", SSHUser: "cmon", SSHPort: 22}
		for n := range max(nodes, 1) {
			c.Hosts = append(c.Hosts, hosts.Host{Hostname: fmt.Sprintf("127.1.%d.%d", i, n+1), Port: 3306, Role: "node"})
		}
		if err := inv.Create(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// startBare runs this program as a bare HTTPS server sending reply to every
// request: what a controller that did no work at all would answer, in a
// process of its own as cmon is.
func startBare(ctx context.Context, dir string, reply []byte) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bareDir, err := os.MkdirTemp(dir, "bare-")
	if err != nil {
		return nil, err
	}
	replyFile := filepath.Join(bareDir, "reply")
	if err := os.WriteFile(replyFile, reply, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "bare", bareDir, replyFile)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bare server: %w", err)
	}
	go func() { p.done <- cmd.Wait() }()
	p.base = "https://" + addr[:len(addr)-1]
	return p, nil
}

// serveBare is "bench bare <dir> <reply file>": it prints its address and
// serves the reply over HTTPS until interrupted.
func serveBare(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: bench bare <dir> <reply file>")
	}
	reply, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	cert, err := rpc.LoadCertificate(slog.New(slog.NewTextHandler(io.Discard, nil)), "", "", args[0], rpc.CertNames([]string{"127.0.0.1"}, nil))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr().String())
	// The controller's own timeouts and limits: their cost is net/http's,
	// not the controller's handling of a request.
	srv := rpc.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
		_, _ = w.Write(reply)
	}))
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(tls.NewListener(l, rpc.TLSConfig(cert))); err != http.ErrServerClosed {
		return err
	}
	return nil
}
