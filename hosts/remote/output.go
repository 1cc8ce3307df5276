package remote

import (
	"bytes"
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

// seal stops collecting (late writes after a kill are dropped) and fills in
// the result.
func (o *outputs) seal(r *Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sealed = true
	r.Stdout = bytes.Clone(o.bufs[Stdout].Bytes())
	r.Stderr = bytes.Clone(o.bufs[Stderr].Bytes())
	r.StdoutTruncated = o.trunc[Stdout]
	r.StderrTruncated = o.trunc[Stderr]
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
}

// maxPending bounds what is held back while looking for the pgid line.
const maxPending = 4096

func newPgidWriter(next streamWriter) *pgidWriter {
	return &pgidWriter{next: next, pgid: make(chan int, 1)}
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
