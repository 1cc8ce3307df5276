package rpc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cmon-dev/cmon/jobs"
)

func TestRenderJob(t *testing.T) {
	created := time.Date(2021, 2, 9, 9, 33, 45, 0, time.UTC)
	j := &jobs.Job{ID: 21, Title: "x", Command: "success", JobData: json.RawMessage(`{"path": "/a"}`), Status: jobs.StatusFinished,
		StatusText: jobs.TextFinished, HasProgress: true, Progress: 100, Created: created, Started: created,
		Ended: created.Add(1500 * time.Millisecond), Owner: jobs.Owner{UserID: 4, UserName: "pipas", IPAddress: "127.0.0.1"}}
	b, err := json.Marshal(renderJob(j))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"class_name": "CmonJobInstance", "job_id": 21.0, "status": "FINISHED", "status_text": "Job finished.",
		"created": "2021-02-09T09:33:45.000Z", "ended": "2021-02-09T09:33:46.500Z", "rpc_version": "2.0",
		"can_be_aborted": false, "can_be_deleted": true, "has_progress": true, "progress_percent": 100.0,
		"cluster_id": 0.0, "exit_code": 0.0, "user_name": "pipas",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	spec, _ := got["job_spec"].(map[string]any)
	if spec["command"] != "success" || spec["job_data"].(map[string]any)["path"] != "/a" {
		t.Errorf("job_spec = %v", spec)
	}
	for _, absent := range []string{"scheduled", "recurrence", "parent_job_id", "result", "tags"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s present in %s", absent, b)
		}
	}
	m, _ := json.Marshal(renderMessage(jobs.Message{ID: 7, JobID: 21, Created: created, Status: jobs.MessageWarning, Text: "hi"}))
	if string(m) != `{"class_name":"CmonJobMessage","message_id":7,"job_id":21,"created":"2021-02-09T09:33:45.000Z","message_status":"JOB_WARNING","message_text":"hi"}` {
		t.Errorf("message = %s", m)
	}
}

func TestRedactedJobData(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{name: "nothing secret", data: `{"command":"uptime","nodes":["n1"],"timeout_sec":12345678901234567890}`,
			want: `{"command":"uptime","nodes":["n1"],"timeout_sec":12345678901234567890}`},
		{name: "env values, names stay", data: `{"env":[{"key":"SECRET_VAR","value":"EnvSecret999"},{"key":"B","value":""}]}`,
			want: `{"env":[{"key":"SECRET_VAR","value":"***"},{"key":"B","value":"***"}]}`},
		{name: "env as an object", data: `{"env":{"A":"x"}}`, want: `{"env":{"A":"***"}}`},
		{name: "env name not a string", data: `{"env":[{"key":{"a":"x"}}]}`, want: `{"env":[{"key":{"a":"***"}}]}`},
		{name: "stdin", data: `{"stdin_base64":"c2VjcmV0"}`, want: `{"stdin_base64":"***"}`},
		{name: "secret-looking fields, nested", data: `{"node":{"sudo_password":"p","ssh_private_key":["k"],"api_token":7}}`,
			want: `{"node":{"api_token":"***","ssh_private_key":["***"],"sudo_password":"***"}}`},
		{name: "env under a secret field", data: `{"credentials":{"env":[{"key":"A","value":"x"}]}}`,
			want: `{"credentials":{"env":[{"key":"***","value":"***"}]}}`},
		{name: "not JSON", data: `{"password":`, want: ``},
		{name: "not JSON, nothing secret", data: `{"command":`, want: ``},
		{name: "a secret name spelt with escapes", data: `{"pa\u0073sword":"p"}`, want: `{"password":"***"}`},
		{name: "a secret word in a value only", data: `{"command":"echo password"}`, want: `{"command":"echo password"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(redactedJobData(json.RawMessage(tt.data))); got != tt.want {
				t.Errorf("redactedJobData(%s) = %s, want %s", tt.data, got, tt.want)
			}
		})
	}
}

func TestWithJobTimeout(t *testing.T) {
	two, half := 2.0, 0.5
	tests := []struct {
		name    string
		data    string
		timeout *float64
		want    string
	}{
		{name: "none given", data: `{"command":"true"}`, want: `{"command":"true"}`},
		{name: "into job_data", data: `{"command":"true"}`, timeout: &two, want: `{"timeout":2,"command":"true"}`},
		{name: "into an empty object", data: ` { } `, timeout: &half, want: `{"timeout":0.5 }`},
		{name: "into no job_data", data: ``, timeout: &two, want: `{"timeout":2}`},
		{name: "into null", data: `null`, timeout: &two, want: `{"timeout":2}`},
		{name: "job_data's own wins", data: `{"timeout":5}`, timeout: &two, want: `{"timeout":5}`},
		{name: "not an object is left to refuse", data: `[1]`, timeout: &two, want: `[1]`},
		{name: "not JSON is left to refuse", data: `{"a":`, timeout: &two, want: `{"a":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(withJobTimeout(json.RawMessage(tt.data), tt.timeout)); got != tt.want {
				t.Errorf("withJobTimeout(%s) = %s, want %s", tt.data, got, tt.want)
			}
		})
	}
}
