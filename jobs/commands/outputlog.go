package commands

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
	"github.com/cmon-dev/cmon/jobs"
)

// outputLog turns streamed output into job messages: whole lines prefixed
// with the host name, stdout as JOB_SUCCESS and stderr as JOB_WARNING, at most
// max lines per job. The transport serializes the output of one node, and
// each node has its own buffers; the lines wait in one batch, written when
// it is full or a few milliseconds old, so output costs the database a
// statement per batch rather than per line, and the log stays current.
type outputLog struct {
	log   jobs.Logger
	ctx   context.Context
	max   int64
	index map[string]int
	nodes []*nodeLines
	sent  atomic.Int64

	mu      sync.Mutex
	pending []jobs.LogLine
	size    int
	timer   *time.Timer
}

// Batches of output lines go to the log when they hold batchLines lines or
// batchBytes bytes, or are batchDelay old.
const (
	batchLines = 100
	batchBytes = 64 << 10
	batchDelay = 5 * time.Millisecond
)

type nodeLines struct {
	name           string
	stdout, stderr []byte
}

func newOutputLog(ctx context.Context, log jobs.Logger, max int, hs []hosts.Host, index map[string]int) *outputLog {
	o := &outputLog{log: log, ctx: ctx, max: int64(max), index: index, nodes: make([]*nodeLines, len(hs))}
	for i, h := range hs {
		o.nodes[i] = &nodeLines{name: h.Hostname}
	}
	return o
}

func (o *outputLog) write(ctx context.Context, c remote.Chunk) {
	i, ok := o.index[c.Node]
	if !ok || o.sent.Load() > o.max {
		return
	}
	nl := o.nodes[i]
	buf, status := &nl.stdout, jobs.MessageSuccess
	if c.Stream == remote.Stderr {
		buf, status = &nl.stderr, jobs.MessageWarning
	}
	data := append(*buf, c.Data...)
	start := 0
	for {
		// Only the next maxMessageLine+1 bytes are searched: a line longer
		// than that goes out in pieces whether or not its end has come.
		window := data[start:min(len(data), start+maxMessageLine+1)]
		if end := bytes.IndexByte(window, '\n'); end >= 0 {
			o.emit(ctx, nl.name, status, data[start:start+end])
			start += end + 1
			continue
		}
		if len(window) <= maxMessageLine {
			break // the line may still end within the limit
		}
		// A very long line goes out in pieces, each cut at a rune boundary;
		// the window holds a byte past the cut, so the cut is inside data.
		cut := start + maxMessageLine
		for cut > start && !utf8.RuneStart(data[cut]) {
			cut--
		}
		if cut == start {
			cut = start + maxMessageLine
		}
		o.emit(ctx, nl.name, status, data[start:cut])
		start = cut
	}
	*buf = append(data[:0], data[start:]...)
}

// flush logs a node's unterminated last lines once its command has ended,
// and everything waiting before them.
func (o *outputLog) flush(ctx context.Context, i int) {
	nl := o.nodes[i]
	if len(nl.stdout) > 0 {
		o.emit(ctx, nl.name, jobs.MessageSuccess, nl.stdout)
		nl.stdout = nil
	}
	if len(nl.stderr) > 0 {
		o.emit(ctx, nl.name, jobs.MessageWarning, nl.stderr)
		nl.stderr = nil
	}
	o.writeBatch()
}

func (o *outputLog) emit(_ context.Context, name string, status jobs.MessageStatus, line []byte) {
	switch n := o.sent.Add(1); {
	case n == o.max+1:
		o.queue(jobs.LogLine{Status: jobs.MessageWarning, Text: fmt.Sprintf("More output than %d lines: the rest is in the job result only.", o.max)})
		return
	case n > o.max:
		return
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	o.queue(jobs.LogLine{Status: status, Text: name + ": " + strings.ToValidUTF8(string(line), "\uFFFD")})
}

// queue adds a line to the batch, writing it when full and else making sure
// it is written within batchDelay.
func (o *outputLog) queue(l jobs.LogLine) {
	o.mu.Lock()
	o.pending = append(o.pending, l)
	o.size += len(l.Text)
	full := len(o.pending) >= batchLines || o.size >= batchBytes
	if !full && o.timer == nil {
		o.timer = time.AfterFunc(batchDelay, o.writeBatch)
	}
	o.mu.Unlock()
	if full {
		o.writeBatch()
	}
}

// writeBatch writes the waiting lines, in the order they came. It holds the
// lock while writing, so batches reach the log in order too.
func (o *outputLog) writeBatch() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	if len(o.pending) == 0 {
		return
	}
	writeLines(o.ctx, o.log, o.pending)
	o.pending, o.size = nil, 0
}
