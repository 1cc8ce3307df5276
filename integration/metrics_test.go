package integration

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

// scrape reads one sample of a metric from a Prometheus text page; 0 when
// it is absent.
func scrape(page, metric string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + ` (\S+)$`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestMetricsFollowTheController: the metrics a login, a job and a failed
// request change, on the TLS port (loopback) and on the plain loopback
// metrics address.
func TestMetricsFollowTheController(t *testing.T) {
	port, err := services.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	plain := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	c := startController(t, controllerOptions{args: []string{"--metrics-address", fmt.Sprintf("127.0.0.1:%d", port)}})
	fetch := func(url string) string {
		t.Helper()
		out, err := runCurl("-sk", "--max-time", "30", "-f", url)
		if err != nil {
			t.Fatalf("%s: %v: %s", url, err, out)
		}
		return out
	}
	admin := c.session(t, "admin", adminPassword)
	before := fetch(c.URL + "/metrics")
	logins := `cmon_logins_total{result="ok"}`
	jobsEnded := `cmon_jobs_ended_total{command="success",status="FINISHED"}`
	notFound := `cmon_rpc_requests_total{module="jobs",operation="getJobInstance",status="ObjectNotFound"}`

	mustOk(t, c.login(t, "admin", adminPassword, jar(t)))
	id := admin.createJob(t, 0, "success", map[string]any{})
	admin.waitJob(t, id, 30*time.Second, "FINISHED")
	if r := admin.call(t, "jobs", `{"operation":"getJobInstance","job_id":999999}`); r.Status() != "ObjectNotFound" {
		t.Fatalf("missing job: %s", r.Raw)
	}
	after := fetch(c.URL + "/metrics")
	for _, m := range []string{logins, jobsEnded, notFound, "cmon_job_dispatch_seconds_count"} {
		if scrape(after, m) <= scrape(before, m) {
			t.Errorf("%s did not grow: %v then %v", m, scrape(before, m), scrape(after, m))
		}
	}
	for _, m := range []string{"cmon_sessions", `cmon_jobs{status="DEFINED"}`, "cmon_db_conflicts_retried_total", "cmon_db_failovers_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(after, m) {
			t.Errorf("no %s in /metrics", m)
		}
	}
	if scrape(after, "cmon_sessions") < 2 {
		t.Errorf("cmon_sessions %v with two logged-in sessions", scrape(after, "cmon_sessions"))
	}
	if page := fetch(plain); scrape(page, logins) < scrape(after, logins) {
		t.Errorf("the plain loopback address serves other figures: %v", scrape(page, logins))
	}
}
