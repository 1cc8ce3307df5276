package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeInstallStagesAService: make install with DESTDIR and PREFIX puts
// the binary, a hardened unit that starts it, and a configuration file the
// binary accepts, and keeps a configuration file that is already there.
func TestMakeInstallStagesAService(t *testing.T) {
	dest := t.TempDir()
	install := func() string {
		t.Helper()
		// -o build: the binary under test is installed, not rebuilt under the other tests.
		cmd := exec.Command("make", "--no-print-directory", "-o", "build", "install", "BIN="+cmonBinary, "DESTDIR="+dest, "PREFIX=/usr")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
		return string(out)
	}
	install()
	unit, err := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/cmon.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/cmon --config /etc/default/cmon", "User=cmon", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "StateDirectory=cmon", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	config := filepath.Join(dest, "etc/default/cmon")
	out, err := exec.Command(filepath.Join(dest, "usr/bin/cmon"), "--config", config, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cmon ") {
		t.Fatalf("the installed binary with the installed configuration: %v: %s", err, out)
	}
	if err := os.WriteFile(config, []byte("CMON_LOG_LEVEL=\"warn\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "kept") {
		t.Errorf("a second install says nothing of the configuration it kept:\n%s", out)
	}
	if got, _ := os.ReadFile(config); string(got) != "CMON_LOG_LEVEL=\"warn\"\n" {
		t.Errorf("a second install replaced the operator's configuration: %q", got)
	}
}
