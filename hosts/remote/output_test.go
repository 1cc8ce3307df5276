package remote

import (
	"bytes"
	"strings"
	"testing"
)

func TestPgidWriter(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantPgid int // 0: none reported
		wantOut  string
	}{
		{name: "pgid line first", input: pgidPrefix + "1234\nhello\n", wantPgid: 1234, wantOut: "hello\n"},
		{name: "login shell noise first", input: "welcome\n" + pgidPrefix + "99\nout", wantPgid: 99, wantOut: "welcome\nout"},
		{name: "no pgid line", input: "just output", wantOut: "just output"},
		{name: "pgid 1 refused", input: pgidPrefix + "1\nx", wantOut: "x"},
		{name: "garbage pgid", input: pgidPrefix + "abc\nx", wantOut: "x"},
		{name: "later marker is output", input: pgidPrefix + "7\n" + pgidPrefix + "8\n", wantPgid: 7, wantOut: pgidPrefix + "8\n"},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 3, 1 << 10} {
			t.Run(tt.name, func(t *testing.T) {
				o := newOutputs("n", 1<<20, nil)
				w := newPgidWriter(streamWriter{o, Stdout}, nil)
				for in := []byte(tt.input); len(in) > 0; {
					n := min(size, len(in))
					if got, err := w.Write(in[:n]); got != n || err != nil {
						t.Fatalf("Write = %d, %v", got, err)
					}
					in = in[n:]
				}
				w.flush()
				var r Result
				o.seal(&r)
				if string(r.Stdout) != tt.wantOut {
					t.Errorf("chunks of %d: stdout %q, want %q", size, r.Stdout, tt.wantOut)
				}
				got := 0
				select {
				case g, ok := <-w.pgid:
					if ok {
						got = g
					}
				default:
				}
				if got != tt.wantPgid {
					t.Errorf("chunks of %d: pgid %d, want %d", size, got, tt.wantPgid)
				}
			})
		}
	}
}

func TestOutputsLimit(t *testing.T) {
	var streamed bytes.Buffer
	chunks := 0
	o := newOutputs("n", 10, func(c Chunk) {
		if c.Node != "n" || c.Stream != Stdout {
			return
		}
		chunks++
		streamed.Write(c.Data)
	})
	w := streamWriter{o, Stdout}
	for range 5 {
		if n, err := w.Write([]byte("abcd")); n != 4 || err != nil {
			t.Fatalf("Write = %d, %v: output past the limit must still be consumed", n, err)
		}
	}
	streamWriter{o, Stderr}.Write([]byte("err"))
	var r Result
	o.seal(&r)
	if string(r.Stdout) != "abcdabcdab" || !r.StdoutTruncated {
		t.Errorf("stdout %q truncated %v", r.Stdout, r.StdoutTruncated)
	}
	if string(r.Stderr) != "err" || r.StderrTruncated {
		t.Errorf("stderr %q truncated %v", r.Stderr, r.StderrTruncated)
	}
	if streamed.String() != "abcdabcdab" || chunks != 3 {
		t.Errorf("streamed %q in %d chunks", streamed.String(), chunks)
	}
	// After sealing (a kill), late output is dropped.
	w.Write([]byte("late"))
	var again Result
	o.seal(&again)
	if strings.Contains(string(again.Stdout), "late") {
		t.Error("output after seal was kept")
	}
}

// FuzzStdout: whatever a node prints on stdout, in chunks of any size, is
// passed on byte for byte but for the bootstrap's one pgid line, and never
// panics the writer.
func FuzzStdout(f *testing.F) {
	f.Add([]byte(pgidPrefix+"1234\nhello\n"), []byte{1})
	f.Add([]byte("motd\n"+pgidPrefix+"99\n\xff\x00\r"), []byte{3, 200})
	f.Add(bytes.Repeat([]byte("A"), 3*maxPending+1), []byte{64, 0})
	f.Add([]byte(pgidPrefix+strings.Repeat("9", 40)+"\n"), []byte{7})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		o := newOutputs("n", len(data)+1, nil)
		w := newPgidWriter(streamWriter{o, Stdout}, nil)
		for i, rest := 0, data; len(rest) > 0; i++ {
			size := len(rest)
			if len(sizes) > 0 {
				size = min(len(rest), 1+int(sizes[i%len(sizes)]))
			}
			if n, err := w.Write(rest[:size]); n != size || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			rest = rest[size:]
		}
		w.flush()
		var r Result
		if err := o.seal(&r); err != nil {
			t.Fatal(err)
		}
		// The pgid line is taken only while nothing longer than maxPending
		// is held back before it.
		if !bytes.Contains(data, []byte(pgidPrefix)) && !bytes.Equal(r.Stdout, data) {
			t.Fatalf("stdout %q, want %q", r.Stdout, data)
		}
		if len(r.Stdout) > len(data) {
			t.Fatalf("%d bytes out of %d in", len(r.Stdout), len(data))
		}
	})
}
