package remote

import (
	"bytes"
	"io"
	"strconv"
	"sync"
)

// Stream names an output stream of a remote command.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Chunk is a piece of output as it arrives. Data is only valid during the
// callback that receives it.
type Chunk struct {
	Node   string
	Stream Stream
	Data   []byte
}

// DefaultOutputLimit is how much of each stream a result keeps (RPort's
// send_back_limit).
const DefaultOutputLimit = 4 << 20

// outputs collects both streams of one command. Callbacks are serialized, so
// a consumer of chunks needs no locking of its own.
type outputs struct {
	mu     sync.Mutex
	node   string
	limit  int
	emit   func(Chunk)
	sealed bool
	bufs   map[Stream]*bytes.Buffer
	trunc  map[Stream]bool

	faultMu sync.Mutex
	fault   error // the first panic in handling the output
}

func newOutputs(node string, limit int, emit func(Chunk)) *outputs {
	return &outputs{
		node: node, limit: limit, emit: emit,
		bufs:  map[Stream]*bytes.Buffer{Stdout: {}, Stderr: {}},
		trunc: map[Stream]bool{},
	}
}

// write keeps at most limit bytes of a stream and drops the rest, still
// consuming it so that the remote command is never blocked on a full pipe.
func (o *outputs) write(s Stream, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sealed {
		return
	}
	buf := o.bufs[s]
	room := o.limit - buf.Len()
	if len(p) > room {
		o.trunc[s] = true
		p = p[:max(room, 0)]
	}
	if len(p) == 0 {
		return
	}
	buf.Write(p)
	if o.emit != nil {
		o.emit(Chunk{Node: o.node, Stream: s, Data: p})
	}
}

// contain runs f, which handles the output, under Contain; the first panic
// is kept as the command's fault, and what comes after it is dropped.
func (o *outputs) contain(f func()) {
	o.faultMu.Lock()
	failed := o.fault != nil
	o.faultMu.Unlock()
	if failed {
		return
	}
	if err := Contain(f); err != nil {
		o.faultMu.Lock()
		if o.fault == nil {
			o.fault = err
		}
		o.faultMu.Unlock()
	}
}

// seal stops collecting (late writes after a kill are dropped), fills in
// the result and returns the fault that cut the output short, if any.
func (o *outputs) seal(r *Result) error {
	o.faultMu.Lock()
	fault := o.fault
	o.faultMu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sealed = true
	r.Stdout = bytes.Clone(o.bufs[Stdout].Bytes())
	r.Stderr = bytes.Clone(o.bufs[Stderr].Bytes())
	r.StdoutTruncated = o.trunc[Stdout]
	r.StderrTruncated = o.trunc[Stderr]
	return fault
}

// guardedWriter is what the SSH session copies a stream into: the stream's
// handling runs under the outputs' contain, and the writer always takes all
// of p, so the node is never blocked on a full pipe, even after a fault.
type guardedWriter struct {
	o    *outputs
	next io.Writer
}

func (g guardedWriter) Write(p []byte) (int, error) {
	g.o.contain(func() { _, _ = g.next.Write(p) })
	return len(p), nil
}

// streamWriter is the io.Writer the SSH session copies one stream into.
type streamWriter struct {
	o *outputs
	s Stream
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.o.write(w.s, p)
	return len(p), nil
}

// pgidWriter takes the bootstrap's "cmon-pgid:N" line off stdout and passes
// everything else on. Lines a login shell may print before it (a chatty
// .bashrc) are passed on too: they are the node's output, not ours.
type pgidWriter struct {
	next    streamWriter
	pending []byte
	found   bool
	pgid    chan int // receives the process group once
	onPgid  func(int)
}

// maxPending bounds what is held back while looking for the pgid line.
const maxPending = 4096

// newPgidWriter passes stdout on to next; onPgid, when not nil, hears the
// process group too.
func newPgidWriter(next streamWriter, onPgid func(int)) *pgidWriter {
	return &pgidWriter{next: next, pgid: make(chan int, 1), onPgid: onPgid}
}

func (w *pgidWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.found {
		w.next.Write(p)
		return n, nil
	}
	w.pending = append(w.pending, p...)
	for !w.found {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			if len(w.pending) > maxPending {
				w.next.Write(w.pending)
				w.pending = w.pending[:0]
			}
			return n, nil
		}
		line := w.pending[:i]
		if v, ok := bytes.CutPrefix(line, []byte(pgidPrefix)); ok {
			w.found = true
			// A group id of 0 or 1 would make kill hit far more than the command.
			if g, err := strconv.Atoi(string(v)); err == nil && g > 1 {
				w.pgid <- g
				if w.onPgid != nil {
					w.onPgid(g)
				}
			}
			close(w.pgid)
		} else {
			w.next.Write(w.pending[:i+1])
		}
		w.pending = w.pending[i+1:]
	}
	if len(w.pending) > 0 {
		w.next.Write(w.pending)
	}
	w.pending = nil
	return n, nil
}

// flush passes on anything held back when the stream ends without the pgid line.
func (w *pgidWriter) flush() {
	if !w.found && len(w.pending) > 0 {
		w.next.Write(w.pending)
		w.pending = nil
	}
}
