package remote

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// How a command travels: the SSH exec request carries only a fixed bootstrap,
// which anyone on the node may see in the process list. Everything else (the
// sudo password, environment, working directory, the command itself) goes over
// the session's stdin, followed by the caller's stdin bytes:
//
//	[sudo password "\n"]   read by sudo -S, only when a password is given
//	scriptMarker "\n"      lines before it are skipped (a password sudo did not ask for)
//	N "\n"                 the number of script lines that follow
//	N script lines         export K='v' ... ; cd -- 'dir' || exit 1 ; command
//	caller's stdin         left unread for the command
//
// The shell's read builtin never reads past a newline on a pipe, so the
// command's stdin starts exactly after the script. sshd's default AcceptEnv
// refuses the SSH "env" request, which is why the environment is not sent that way.
//
// Before reading anything the bootstrap prints "cmon-pgid:<pgid>" as the first
// stdout line: sshd starts each non-pty command in a session of its own, so that
// process group holds the command and its children, and a timeout or kill ends
// the whole group over a second session (OpenSSH ignores the SSH "signal"
// request for commands in many versions, and it reaches only the top process).
const (
	scriptMarker = "cmon-exec-v1"
	pgidPrefix   = "cmon-pgid:"
	bootstrap    = `g=$$; [ -r /proc/$$/stat ] && read -r _ _ _ _ g _ </proc/$$/stat; echo "` + pgidPrefix + `$g"; ` +
		`m=; while [ "$m" != ` + scriptMarker + ` ]; do IFS= read -r m || exit 97; done; IFS= read -r n || exit 97; ` +
		`nl=$(printf "\n_"); nl=${nl%_}; s=; while [ "$n" -gt 0 ]; do IFS= read -r l || exit 97; s="$s$l$nl"; n=$((n-1)); done; ` +
		`unset g m n l nl; eval "$s"`
)

// Sudo says whether and how the command is run as root on the node.
type Sudo struct {
	// Enabled runs the command with sudo -n: sudo must not need a password.
	Enabled bool
	// Password, when set, is fed to sudo -S on stdin (never on the command
	// line) and implies Enabled.
	Password string
}

func (s Sudo) on() bool { return s.Enabled || s.Password != "" }

// EnvVar is one environment variable for the remote command.
type EnvVar struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Check refuses a variable the remote shell cannot be given as it is.
func (e EnvVar) Check() error {
	if !envName.MatchString(e.Key) {
		return fmt.Errorf("%q is not a valid variable name", e.Key)
	}
	if strings.IndexByte(e.Value, 0) >= 0 {
		return fmt.Errorf("variable %s contains a NUL byte", e.Key)
	}
	return nil
}

// invocation is what goes over the wire for one command.
type invocation struct {
	line  string // the exec request: no secrets
	stdin []byte
}

// commandLine is the exec request. It holds no secrets, only the bootstrap.
func commandLine(sudo Sudo) string {
	sh := "/bin/sh -c '" + bootstrap + "'"
	switch {
	case sudo.Password != "":
		// -k ignores cached credentials so that sudo reads the password line
		// when it needs one; -p '' keeps the prompt out of stderr.
		return "exec sudo -S -k -p '' -- " + sh
	case sudo.Enabled:
		return "exec sudo -n -- " + sh
	default:
		return "exec " + sh
	}
}

// script is the shell text run on the node: exports, directory, command.
func script(command, dir string, env []EnvVar) (string, error) {
	if strings.TrimSpace(command) == "" {
		return "", fmt.Errorf("empty command")
	}
	if strings.IndexByte(command, 0) >= 0 {
		return "", fmt.Errorf("command contains a NUL byte")
	}
	var b strings.Builder
	for _, e := range env {
		if err := e.Check(); err != nil {
			return "", fmt.Errorf("environment: %w", err)
		}
		b.WriteString("export " + e.Key + "=" + ShellQuote(e.Value) + "\n")
	}
	if dir != "" {
		if strings.IndexByte(dir, 0) >= 0 {
			return "", fmt.Errorf("working directory contains a NUL byte")
		}
		b.WriteString("cd -- " + ShellQuote(dir) + " || exit 1\n")
	}
	b.WriteString(command)
	if !strings.HasSuffix(command, "\n") {
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// ShellQuote makes s one single-quoted shell word: inside single quotes
// nothing is special, and an embedded quote closes the quoting, adds an
// escaped quote and opens it again.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// newInvocation builds the exec request and stdin for a command.
func newInvocation(command, dir string, env []EnvVar, sudo Sudo, stdin []byte) (invocation, error) {
	if strings.ContainsAny(sudo.Password, "\n\r\x00") {
		return invocation{}, fmt.Errorf("sudo password contains a line break or NUL byte")
	}
	text, err := script(command, dir, env)
	if err != nil {
		return invocation{}, err
	}
	var in bytes.Buffer
	if sudo.Password != "" {
		in.WriteString(sudo.Password + "\n")
	}
	in.WriteString(scriptMarker + "\n")
	in.WriteString(strconv.Itoa(strings.Count(text, "\n")) + "\n")
	in.WriteString(text)
	in.Write(stdin)
	return invocation{line: commandLine(sudo), stdin: in.Bytes()}, nil
}

// EndGroupCommand is the shell command that ends process group pgid: TERM
// first so that programs may clean up, then KILL for whatever is left after
// grace. A group that is gone already is no error.
func EndGroupCommand(pgid int, grace time.Duration) string {
	tries := max(1, int(grace/(100*time.Millisecond)))
	// "kill -SIG -N" rather than "kill -s SIG -- -N": dash knows neither -s
	// with a group nor "--".
	return fmt.Sprintf("kill -TERM -%[1]d 2>/dev/null || exit 0; i=0; "+
		"while kill -0 -%[1]d 2>/dev/null && [ $i -lt %[2]d ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done; "+
		"kill -KILL -%[1]d 2>/dev/null; exit 0", pgid, tries)
}
