// Command install installs, with apt-get, the Debian packages of the programs
// cmon's tests and tools run, when they are missing. It is the one step that
// changes the system: `make test-deps` runs it, and `make test` runs that
// before the tests, which only look for the programs (package services).
//
//	go run ./integration/services/install              # every test tool (services.TestTools)
//	go run ./integration/services/install sshd ...     # these programs (test or bench tools)
//
// Not run as root it runs apt-get through sudo -n.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/cmon-dev/cmon/integration/services"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, programs []string) error {
	tools, err := choose(programs)
	if err != nil {
		return err
	}
	var missing []string
	for _, t := range tools {
		if _, err := services.Find(t.Program); err != nil && !slices.Contains(missing, t.Package) {
			missing = append(missing, t.Package)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintln(os.Stderr, "install: apt-get install", strings.Join(missing, " "))
	for _, args := range [][]string{
		{"apt-get", "update", "-qq"},
		append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, missing...),
	} {
		if err := apt(ctx, args); err != nil {
			return err
		}
	}
	for _, t := range tools {
		if _, err := services.Find(t.Program); err != nil {
			return fmt.Errorf("after installing %s: %w", t.Package, err)
		}
	}
	return nil
}

// choose picks the named tools, or every test tool when none is named.
func choose(programs []string) ([]services.Tool, error) {
	if len(programs) == 0 {
		return services.TestTools(), nil
	}
	known := append(services.TestTools(), services.BenchTools()...)
	var out []services.Tool
	for _, p := range programs {
		i := slices.IndexFunc(known, func(t services.Tool) bool { return t.Program == p })
		if i < 0 {
			return nil, fmt.Errorf("unknown program %q: add it to services.TestTools or BenchTools", p)
		}
		out = append(out, known[i])
	}
	return out, nil
}

func apt(ctx context.Context, args []string) error {
	if os.Geteuid() != 0 {
		args = append([]string{"sudo", "-n"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return nil
}
