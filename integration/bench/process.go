package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
	"github.com/cmon-dev/cmon/rpc"
)

const password = "bench-admin-pw"

// process is a server the bench started: cmon or the bare server.
type process struct {
	cmd  *exec.Cmd
	done chan error
	base string // https://127.0.0.1:port
}

// rssMiB is the process's resident memory now.
func (p *process) rssMiB() float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpu is the processor time the process has used so far.
func (p *process) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which ends at the last ')'.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cmonProc is a running cmon with an admin session.
type cmonProc struct {
	process
	bin, dir, dsn string
	args          []string
	client        *http.Client
	cookie        string
}

// startCmon runs cmon on dir (and MariaDB when dsn is set) on a spare port,
// waits until it answers and logs in as admin.
func startCmon(ctx context.Context, bin, dir, dsn string, args ...string) (*cmonProc, error) {
	c := &cmonProc{bin: bin, dir: dir, dsn: dsn, args: args, client: newClient(64)}
	return c, c.start(ctx)
}

func (c *cmonProc) start(ctx context.Context) error {
	port, err := services.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	c.base = "https://127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{"--data-dir", c.dir, "--rpc-port", strconv.Itoa(port), "--log-level", "warn"}, c.args...)
	c.cmd = exec.Command(c.bin, args...)
	// The password goes in the environment, never on the command line.
	c.cmd.Env = append(os.Environ(), "CMON_ADMIN_PASSWORD="+password, "CMON_MYSQL_DSN="+c.dsn)
	logFile, err := os.OpenFile(filepath.Join(c.dir, "cmon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start cmon: %w", err)
	}
	c.done = make(chan error, 1)
	go func() { c.done <- c.cmd.Wait() }()
	if err := services.WaitFor(ctx, 60*time.Second, func() error {
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("cmon exited: %v", err)
		default:
		}
		_, err := c.post("controller", `{"operation":"ping"}`, "")
		return err
	}); err != nil {
		c.stop()
		log, _ := os.ReadFile(filepath.Join(c.dir, "cmon.log"))
		return fmt.Errorf("cmon did not come up: %w: %.2000s", err, log)
	}
	c.cookie, err = login(c.client, c.base)
	return err
}

// restart stops cmon and starts it again on the same database, with empty
// connection pools and caches.
func (c *cmonProc) restart(ctx context.Context) error {
	c.stop()
	return c.start(ctx)
}

// call posts body to /v2/<module> with the admin session and decodes the
// reply, failing unless it is Ok.
func (c *cmonProc) call(module, body string) (map[string]any, error) {
	raw, err := c.post(module, body, c.cookie)
	if err != nil {
		return nil, err
	}
	var reply map[string]any
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, err
	}
	return reply, nil
}

func (c *cmonProc) post(module, body, cookie string) ([]byte, error) {
	return post(c.client, c.base+"/v2/"+module, body, cookie)
}

func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

func post(client *http.Client, url, body, cookie string) ([]byte, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && !bytes.Contains(b, []byte(`"request_status": "Ok"`)) {
		err = fmt.Errorf("%s: %.300s", url, b)
	}
	return b, err
}

func login(client *http.Client, base string) (string, error) {
	body := fmt.Sprintf(`{"operation":"authenticateWithPassword","user_name":"admin","password":%q}`, password)
	resp, err := client.Post(base+"/v2/auth", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == rpc.SessionCookie {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", errors.New("login set no session cookie")
}

// waitJob polls a job until it has ended and returns it.
func (c *cmonProc) waitJob(ctx context.Context, id int64, poll time.Duration) (map[string]any, error) {
	for {
		reply, err := c.call("jobs", fmt.Sprintf(`{"operation":"getJobInstance","job_id":%d}`, id))
		if err != nil {
			return nil, err
		}
		job := reply["job"].(map[string]any)
		switch job["status"] {
		case "FINISHED", "FAILED", "ABORTED":
			return job, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// createJob submits a job and returns its id.
func (c *cmonProc) createJob(clusterID int64, command string, jobData any) (int64, error) {
	data, _ := json.Marshal(jobData)
	reply, err := c.call("jobs", fmt.Sprintf(`{"operation":"createJobInstance","cluster_id":%d,
		"job":{"class_name":"CmonJobInstance","title":"bench","job_spec":{"command":%q,"job_data":%s}}}`, clusterID, command, data))
	if err != nil {
		return 0, err
	}
	return int64(reply["job"].(map[string]any)["job_id"].(float64)), nil
}

// runJob submits a job, waits for its end and fails unless it finished.
func (c *cmonProc) runJob(ctx context.Context, clusterID int64, command string, jobData any) (map[string]any, error) {
	id, err := c.createJob(clusterID, command, jobData)
	if err != nil {
		return nil, err
	}
	job, err := c.waitJob(ctx, id, 5*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if job["status"] != "FINISHED" {
		return job, fmt.Errorf("job %d (%s) ended %v: %v", id, command, job["status"], job["status_text"])
	}
	return job, nil
}

// jobTime reads a job timestamp.
func jobTime(job map[string]any, field string) time.Time {
	s, _ := job[field].(string)
	t, _ := time.Parse("2006-01-02T15:04:05.000Z", s)
	return t
}
