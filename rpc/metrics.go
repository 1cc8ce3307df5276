package rpc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/jobs"
	"github.com/cmon-dev/cmon/rbac"
)

// Metrics are what /metrics serves, in a registry of their own: requests,
// logins, jobs and SSH as this controller saw them (counters add up across
// controllers), and the shared state (sessions, queue, hosts, clusters) as
// the database and the inventory hold it at each scrape.
type Metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	jobsEnded   *prometheus.CounterVec
	dispatch    prometheus.Histogram
	jobRun      *prometheus.HistogramVec
	sshDials    *prometheus.CounterVec
	sshOpen     prometheus.Gauge
	sshCommands *prometheus.HistogramVec
}

// MetricsState is the shared state read at each scrape.
type MetricsState struct {
	Sessions interface {
		Count(context.Context) (int, error)
	}
	Jobs interface {
		Active(context.Context) (map[jobs.Status]int, error)
	}
	Inventory interface {
		Snapshot(context.Context) (*hosts.Snapshot, error)
	}
	// Database, when set, counts the transactions it ran again after a
	// conflict with another (sql.DB; on Galera, certification conflicts)
	// and its moves to another of the listed database servers.
	Database interface {
		ConflictsRetried() int64
		Failovers() int64
	}
}

// NewMetrics registers cmon's metrics and the Go runtime's; Watch adds the
// shared state once what holds it exists.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cmon_rpc_requests_total",
			Help: "RPC requests answered, by module, operation and request_status."}, []string{"module", "operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cmon_rpc_request_duration_seconds",
			Help: "Time to answer an RPC request.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"module", "operation"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cmon_logins_total",
			Help: "Login attempts by result: ok, failed, throttled, busy."}, []string{"result"}),
		jobsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cmon_jobs_ended_total",
			Help: "Jobs this controller ran to an end, by command and final state."}, []string{"command", "status"}),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cmon_job_dispatch_seconds",
			Help: "Time from a job's creation to its start.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		jobRun: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cmon_job_run_seconds",
			Help: "How long jobs ran, by command.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, []string{"command"}),
		sshDials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cmon_ssh_connections_opened_total",
			Help: "SSH connection attempts by result: ok or failed."}, []string{"result"}),
		sshOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cmon_ssh_connections_open",
			Help: "SSH connections open now."}),
		sshCommands: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cmon_ssh_command_duration_seconds",
			Help: "How long commands ran on nodes, by outcome: ok or failed.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 10)}, []string{"outcome"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.logins, m.jobsEnded, m.dispatch, m.jobRun, m.sshDials, m.sshOpen, m.sshCommands,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Watch serves the shared state in state at each scrape.
func (m *Metrics) Watch(state MetricsState) {
	m.registry.MustRegister(&stateCollector{state: state})
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *Metrics) request(module, operation string, status Status, took time.Duration) {
	if m == nil || module == "" {
		return
	}
	m.requests.WithLabelValues(module, operation, string(status)).Inc()
	m.latency.WithLabelValues(module, operation).Observe(took.Seconds())
}

func (m *Metrics) login(err error) {
	if m == nil {
		return
	}
	result := "failed"
	switch {
	case err == nil:
		result = "ok"
	case errors.Is(err, rbac.ErrThrottled):
		result = "throttled"
	case errors.Is(err, rbac.ErrBusy):
		result = "busy"
	}
	m.logins.WithLabelValues(result).Inc()
}

// JobStarted and JobEnded make Metrics a jobs.Observer.
func (m *Metrics) JobStarted(_ *jobs.Job, waited time.Duration) { m.dispatch.Observe(waited.Seconds()) }

func (m *Metrics) JobEnded(j *jobs.Job, status jobs.Status, ran time.Duration) {
	m.jobsEnded.WithLabelValues(j.Command, string(status)).Inc()
	m.jobRun.WithLabelValues(j.Command).Observe(ran.Seconds())
}

// Dialed, Closed and CommandEnded make Metrics a remote.Observer.
func (m *Metrics) Dialed(err error) {
	if err != nil {
		m.sshDials.WithLabelValues("failed").Inc()
		return
	}
	m.sshDials.WithLabelValues("ok").Inc()
	m.sshOpen.Inc()
}

func (m *Metrics) Closed() { m.sshOpen.Dec() }

func (m *Metrics) CommandEnded(took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	m.sshCommands.WithLabelValues(outcome).Observe(took.Seconds())
}

// stateCollector reads the shared state at each scrape.
type stateCollector struct{ state MetricsState }

var (
	sessionsDesc = prometheus.NewDesc("cmon_sessions", "Logged-in sessions in the database.", nil, nil)
	jobsDesc     = prometheus.NewDesc("cmon_jobs", "Jobs not ended yet, by state (DEFINED is the queue).", []string{"status"}, nil)
	hostsDesc    = prometheus.NewDesc("cmon_hosts", "Hosts by status.", []string{"status"}, nil)
	clustersDesc = prometheus.NewDesc("cmon_clusters", "Clusters by state.", []string{"state"}, nil)
	scrapeDesc   = prometheus.NewDesc("cmon_state_scrape_errors", "Shared state that could not be read for this scrape.", nil, nil)
	retriedDesc  = prometheus.NewDesc("cmon_db_conflicts_retried_total",
		"Database transactions run again after losing to a concurrent one (a deadlock, or on Galera a certification conflict).", nil, nil)
	failoversDesc = prometheus.NewDesc("cmon_db_failovers_total",
		"Times the controller moved to another of the database servers its DSN lists because the one it used was not live.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sessionsDesc, jobsDesc, hostsDesc, clustersDesc, scrapeDesc, retriedDesc, failoversDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0
	if n, err := c.state.Sessions.Count(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n))
	} else {
		failed++
	}
	if active, err := c.state.Jobs.Active(ctx); err == nil {
		for _, st := range []jobs.Status{jobs.StatusDefined, jobs.StatusDequeued, jobs.StatusRunning, jobs.StatusScheduled, jobs.StatusPaused} {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(active[st]), string(st))
		}
	} else {
		failed++
	}
	if snap, err := c.state.Inventory.Snapshot(ctx); err == nil {
		byStatus := map[string]int{hosts.HostOnline: 0, hosts.HostOffline: 0, hosts.HostUnknown: 0}
		byState := map[string]int{hosts.StateStarted: 0, hosts.StateDegraded: 0, hosts.StateFailure: 0, hosts.StateUnknown: 0}
		for _, cl := range snap.Clusters {
			byState[cl.State]++
			for _, h := range cl.Hosts {
				byStatus[h.Status]++
			}
		}
		for k, n := range byStatus {
			ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(n), k)
		}
		for k, n := range byState {
			ch <- prometheus.MustNewConstMetric(clustersDesc, prometheus.GaugeValue, float64(n), k)
		}
	} else {
		failed++
	}
	ch <- prometheus.MustNewConstMetric(scrapeDesc, prometheus.GaugeValue, float64(failed))
	if c.state.Database != nil {
		ch <- prometheus.MustNewConstMetric(retriedDesc, prometheus.CounterValue, float64(c.state.Database.ConflictsRetried()))
		ch <- prometheus.MustNewConstMetric(failoversDesc, prometheus.CounterValue, float64(c.state.Database.Failovers()))
	}
}

// serveMetrics answers /metrics on the TLS port: to loopback clients, and
// elsewhere to superusers' sessions only.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	ip := net.ParseIP(remoteIP(r))
	if ip == nil || !ip.IsLoopback() {
		req := &Request{HTTP: r, RemoteIP: remoteIP(r)}
		u, err := s.authenticate(r.Context(), req)
		if err != nil || !u.IsSuperuser() {
			http.Error(w, "metrics are served to loopback clients and superusers' sessions only", http.StatusForbidden)
			return
		}
	}
	s.metrics.Handler().ServeHTTP(w, r)
}
