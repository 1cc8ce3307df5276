// Command demo starts cmon on the embedded database with two throwaway sshd
// nodes on loopback (each with a host key of its own), registers them as a
// cluster through a job, and prints the curl commands that run an exec job
// on it and read its log. SIGINT or SIGTERM stops everything; so does cmon
// dying, which the demo reports.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cmon-dev/cmon/integration/services"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const password = "demo-admin-pw"

func run() error {
	bin := flag.String("cmon", "bin/cmon", "the cmon binary")
	dataDir := flag.String("data", ".cmon-demo", "cmon's data directory (emptied first)")
	port := flag.Int("port", 9501, "cmon's RPC port on 127.0.0.1")
	flag.Parse()
	url := "https://127.0.0.1:" + strconv.Itoa(*port)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	nodes, err := services.StartSSHDPerNode(ctx, []string{"127.0.0.2", "127.0.0.3"})
	if err != nil {
		return fmt.Errorf("start sshd nodes: %w", err)
	}
	defer nodes.Stop()

	os.RemoveAll(*dataDir) // a demo starts clean: its nodes' host keys are new every time
	logDir, err := os.MkdirTemp("", "cmon-demo-")
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, "cmon.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(*bin, "--data-dir", *dataDir, "--rpc-port", strconv.Itoa(*port), "--monitor-interval", "10s")
	cmd.Env = append(os.Environ(), "CMON_ADMIN_PASSWORD="+password, "CMON_MYSQL_DSN=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cmon: %w", err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() { exitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-exited
		}
	}()
	// Whatever the demo waits for, cmon dying ends the wait.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-exited:
			cancel(&cmonExited{err: exitErr, log: logFile.Name()})
		case <-ctx.Done():
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the demo's own self-signed certificate
	auth := map[string]any{"username": "admin", "password": password}
	if err := services.WaitFor(ctx, 30*time.Second, func() error {
		_, err := call(client, url, "controller", map[string]any{"operation": "ping"})
		return err
	}); err != nil {
		return died(ctx, fmt.Errorf("cmon did not come up (log: %s): %w", logFile.Name(), err))
	}
	reply, err := call(client, url, "jobs", map[string]any{"operation": "createJobInstance", "authenticate": auth,
		"job": map[string]any{"title": "Register the demo cluster", "job_spec": map[string]any{
			"command": "register_cluster", "job_data": map[string]any{
				"cluster_name": "demo", "cluster_type": "generic", "ssh_user": nodes.User,
				"ssh_keyfile": nodes.ClientKey, "ssh_port": nodes.Port,
				"nodes": []map[string]any{{"hostname": "127.0.0.2"}, {"hostname": "127.0.0.3"}}}}}})
	if err != nil {
		return died(ctx, err)
	}
	jobID := reply["job"].(map[string]any)["job_id"]
	if err := waitRegistered(ctx, client, url, jobID, auth); err != nil {
		return died(ctx, err)
	}
	fmt.Printf(`cmon is running on %[1]s with the cluster "demo" (nodes 127.0.0.2:%[4]d and 127.0.0.3:%[4]d).
Log: %[2]s. Stop everything with Ctrl-C.

  curl -k %[1]s/v2/auth -c cookies.jar -d '{"operation":"authenticateWithPassword","user_name":"admin","password":"%[3]s"}'
  curl -k %[1]s/v2/clusters -b cookies.jar -d '{"operation":"getAllClusterInfo","with_hosts":true}'
  curl -k %[1]s/v2/jobs -b cookies.jar -d '{"operation":"createJobInstance","cluster_name":"demo","job":{"class_name":"CmonJobInstance","title":"uptime","job_spec":{"command":"exec","job_data":{"command":"uptime; hostname"}}}}'
  curl -k %[1]s/v2/jobs -b cookies.jar -d '{"operation":"getJobLog","job_id":JOB_ID_FROM_ABOVE,"ascending":true,"limit":-1}'
`, url, logFile.Name(), password, nodes.Port)
	<-ctx.Done()
	return died(ctx, nil)
}

// cmonExited is why the demo stopped when cmon died under it.
type cmonExited struct {
	err error
	log string
}

func (e *cmonExited) Error() string {
	return fmt.Sprintf("cmon exited (%v): stopping the demo; cmon's log: %s", e.err, e.log)
}

// died is the demo's end: cmon's death if that is what ended it, else err
// (nil for a signal, which is how a demo is meant to end).
func died(ctx context.Context, err error) error {
	var exited *cmonExited
	if errors.As(context.Cause(ctx), &exited) {
		return exited
	}
	return err
}

// waitRegistered polls the registration job until it ends.
func waitRegistered(ctx context.Context, client *http.Client, url string, jobID any, auth map[string]any) error {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		r, err := call(client, url, "jobs", map[string]any{"operation": "getJobInstance", "job_id": jobID, "authenticate": auth})
		if err != nil {
			return err
		}
		job := r["job"].(map[string]any)
		switch job["status"] {
		case "FINISHED":
			return nil
		case "FAILED", "ABORTED":
			return fmt.Errorf("registration %v: %v", job["status"], job["status_text"])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("registration did not finish within 60s")
}

// call posts one RPC v2 request and returns the reply, or an error for a
// transport failure or a status other than Ok.
func call(client *http.Client, url, module string, body map[string]any) (map[string]any, error) {
	b, _ := json.Marshal(body)
	resp, err := client.Post(url+"/v2/"+module, "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var reply map[string]any
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("reply is not JSON: %s", raw)
	}
	if reply["request_status"] != "Ok" {
		return nil, errors.New(string(raw))
	}
	return reply, nil
}
