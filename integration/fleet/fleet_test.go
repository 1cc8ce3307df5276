package fleet

import (
	"context"
	"strings"
	"testing"

	"github.com/cmon-dev/cmon/hosts/remote"
)

// TestFleetAnswersCmon: cmon's own SSH client runs the simulated command set
// on simulated nodes, one pooled connection per node.
func TestFleetAnswersCmon(t *testing.T) {
	ctx := context.Background()
	f, err := Start(ctx, t.TempDir(), Addrs(3), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	client, err := remote.New(remote.Config{KnownHosts: remote.NewMemoryKnownHosts(), LearnHostKeys: true, KeyFile: f.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tests := []struct {
		name, command, stdout string
		status                int
	}{
		{name: "true", command: "true", status: 0},
		{name: "hostname", command: "hostname", stdout: "node-" + f.Addrs[1] + "\n", status: 0},
		{name: "facts", command: "sed -n 's/^PRETTY_NAME=//p' /etc/os-release", stdout: "os=", status: 0},
		{name: "anything else", command: "rm -rf /", status: 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := client.Run(ctx, remote.Target{Host: f.Addrs[1], Port: f.Port, User: f.User}, remote.Request{Command: tt.command})
			if tt.status != 0 {
				if res == nil || res.ExitStatus != tt.status {
					t.Fatalf("%q: %+v, %v; want exit %d", tt.command, res, err, tt.status)
				}
				return
			}
			if err != nil || res.ExitStatus != 0 || !strings.HasPrefix(string(res.Stdout), tt.stdout) {
				t.Fatalf("%q: %+v, %v", tt.command, res, err)
			}
		})
	}
	targets := make([]remote.Target, len(f.Addrs))
	for i, a := range f.Addrs {
		targets[i] = remote.Target{Host: a, Port: f.Port, User: f.User}
	}
	res := client.RunMany(ctx, targets, remote.Request{Command: "true"}, remote.FanOut{Concurrent: true})
	for _, n := range res.Nodes {
		if n.Err != nil {
			t.Fatalf("fan-out: %+v", n)
		}
	}
	if got := f.Opened(); got != int64(len(f.Addrs)) {
		t.Fatalf("%d connections for %d nodes: the pool should keep one per node", got, len(f.Addrs))
	}
}
