package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
)

// FuzzJobData: any job_data for any command is accepted or refused as a bad
// request, never with another error or a panic.
func FuzzJobData(f *testing.F) {
	reg := declaredRegistry(f)
	names := reg.Names()
	for i := range names {
		for _, d := range []string{`{}`, `{"command":"uptime","nodes":["a"],"timeout_sec":5}`, `{"clusterid":1,"node":{"hostname":"a"}}`,
			`{"cluster_name":"c","cluster_type":"galera","ssh_user":"u","ssh_port":22,"nodes":[{"hostname":"a","port":3306}]}`,
			`{"node":{"hostname":"a","port":"x"}}`, `{"message":"m","exit_code":300}`, `{"command_base64":"dHJ1ZQ==","env":[{"key":"A","value":"b"}]}`,
			`[]`, `null`, `{"timeout_sec":"10"}`, `{"command":"true","timeout":2,"nodes":[{"hostname":"a","port":3306},"b",{"port":1}]}`} {
			f.Add(uint8(i), d, int64(1))
		}
	}
	f.Fuzz(func(t *testing.T, cmd uint8, data string, cluster int64) {
		d, err := reg.Draft(names[int(cmd)%len(names)], json.RawMessage(data), cluster)
		var invalid *jobs.InvalidError
		if err != nil && !errors.As(err, &invalid) {
			t.Fatalf("job_data %q: %T %v is not an *InvalidError", data, err, err)
		}
		if err == nil && d.Command.Validate != nil {
			// The engine refuses whatever Validate returns as bad job_data:
			// a panic is what would fail here.
			_ = d.Command.Validate(d.JobData)
		}
	})
}

// FuzzOutputLog: whatever a node prints, in chunks of any size, becomes job
// messages without a panic: each piece of at most maxMessageLine bytes, valid
// UTF-8, and (for valid UTF-8 without carriage returns) exactly the output
// without its line breaks.
func FuzzOutputLog(f *testing.F) {
	for _, n := range []int{1, maxMessageLine - 1, maxMessageLine, maxMessageLine + 1, 2 * maxMessageLine, 3*maxMessageLine + 7} {
		line := bytes.Repeat([]byte("A"), n)
		f.Add(line, []byte{0}, false)
		f.Add(append(line, '\n'), []byte{16, 255}, true)
		f.Add(bytes.Repeat([]byte("é"), n/2+1), []byte{3, 7}, false)
	}
	f.Add([]byte("\xff\xfe\x00\x1b[31mred\x1b[0m\rno line feed\r\r\n\x00"), []byte{1, 2, 3}, false)
	f.Add([]byte(strings.Repeat("\r", maxMessageLine+1)), []byte{64}, true)
	hs := []hosts.Host{{Hostname: "n1"}}
	f.Fuzz(func(t *testing.T, data, sizes []byte, stderr bool) {
		l := &recordingLogger{}
		o := newOutputLog(context.Background(), l, 1<<20, hs, map[string]int{"n1:22": 0})
		stream := remote.Stdout
		if stderr {
			stream = remote.Stderr
		}
		for i, rest := 0, data; len(rest) > 0; i++ {
			// Chunk sizes from the fuzzer, in steps of 64 bytes, so that
			// chunks cross and hit multiples of maxMessageLine.
			size := len(rest)
			if len(sizes) > 0 {
				size = min(len(rest), 1+int(sizes[i%len(sizes)])*64)
			}
			o.write(context.Background(), remote.Chunk{Node: "n1:22", Stream: stream, Data: rest[:size]})
			rest = rest[size:]
		}
		o.flush(context.Background(), 0)
		var joined strings.Builder
		for _, m := range l.msgs {
			_, text, ok := strings.Cut(m, " n1: ")
			if !ok {
				t.Fatalf("message %q has no node prefix", m)
			}
			if !utf8.ValidString(text) {
				t.Fatalf("message %q is not valid UTF-8", text)
			}
			// Each invalid byte becomes U+FFFD, three bytes.
			if len(text) > 3*maxMessageLine {
				t.Fatalf("message of %d bytes", len(text))
			}
			joined.WriteString(text)
		}
		if utf8.Valid(data) && !bytes.ContainsRune(data, '\r') {
			if want := strings.ReplaceAll(string(data), "\n", ""); joined.String() != want {
				t.Fatalf("messages join to %d bytes, want the %d bytes of output", joined.Len(), len(want))
			}
		}
	})
}
