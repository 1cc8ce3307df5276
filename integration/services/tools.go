package services

import (
	"context"
	"fmt"
	"os/exec"
	"os/user"
	"testing"
)

// Tool is a program that tests or tools run and the Debian package holding it.
type Tool struct{ Program, Package string }

// TestTools are the programs the tests run: `make test-deps` installs the
// missing ones before `make test` runs the tests, which only look for them.
func TestTools() []Tool {
	return []Tool{
		{Program: "mariadbd", Package: "mariadb-server"},
		{Program: "sshd", Package: "openssh-server"},
		{Program: "sudo", Package: "sudo"},
		// A three-node Galera cluster (StartGalera) and its state transfer.
		{Program: GaleraProvider, Package: "galera-4"},
		{Program: "rsync", Package: "rsync"},
		// The console's browser test (integration TestConsole).
		{Program: "chromium", Package: "chromium"},
		{Program: "node", Package: "nodejs"},
		{Program: "npm", Package: "npm"},
	}
}

// BenchTools are the programs `make bench` compares cmon's fan-out with.
func BenchTools() []Tool {
	return []Tool{
		{Program: "parallel-ssh", Package: "pssh"},
		{Program: "ansible", Package: "ansible-core"},
	}
}

// installCommand is the step that installs the tools (./install).
const installCommand = "go run ./integration/services/install"

// Find looks for one of TestTools or BenchTools; when it is missing, the error
// names the step that installs it.
func Find(program string) (string, error) {
	p, err := lookPath(program)
	if err == nil {
		return p, nil
	}
	for _, t := range append(TestTools(), BenchTools()...) {
		if t.Program == program {
			return "", fmt.Errorf("%w: `%s %s` installs Debian's %s (make test-deps installs every test tool)",
				err, installCommand, program, t.Package)
		}
	}
	return "", err
}

// PasswordlessSudo tells whether the user running the tests, who is also
// the user that SSHD's sessions log in as, may run commands with sudo -n.
// Granting that takes a sudoers entry, which the tests leave to the machine's
// owner (root has it by default).
func PasswordlessSudo(ctx context.Context) error {
	sudo, err := Find("sudo")
	if err != nil {
		return err
	}
	// -k: cached credentials of an earlier sudo would not carry over to a
	// node's session.
	if out, err := exec.CommandContext(ctx, sudo, "-k", "-n", "true").CombinedOutput(); err != nil {
		who := "the test user"
		if u, uerr := user.Current(); uerr == nil {
			who = u.Username
		}
		return fmt.Errorf("sudo -n for %s needs a password-less sudoers entry (%s ALL=(ALL) NOPASSWD: ALL): %w: %s",
			who, who, err, lastLines(out, 2))
	}
	return nil
}

// NeedSudo makes a test that runs commands through sudo -n unavailable
// without PasswordlessSudo: a skip, or a failure under CI.
func NeedSudo(t testing.TB) {
	t.Helper()
	if err := PasswordlessSudo(context.Background()); err != nil {
		Unavailable(t, "password-less sudo", err)
	}
}
