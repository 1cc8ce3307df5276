package jobs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cmon-dev/cmon/hosts"
	"github.com/cmon-dev/cmon/hosts/remote"
)

// outputLog turns streamed output into job messages: whole lines prefixed
// with the host name, stdout as JOB_SUCCESS and stderr as JOB_WARNING, at most
// max lines per job. The hosts client serializes the output of one node, and
// each node has its own buffers, so only the counters are shared.
type outputLog struct {
	log   Logger
	max   int64
	index map[string]int
	nodes []*nodeLines
	sent  atomic.Int64
}

type nodeLines struct {
	name           string
	stdout, stderr []byte
}

func newOutputLog(log Logger, max int, hs []hosts.Host, index map[string]int) *outputLog {
	o := &outputLog{log: log, max: int64(max), index: index, nodes: make([]*nodeLines, len(hs))}
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
	buf, status := &nl.stdout, MessageSuccess
	if c.Stream == remote.Stderr {
		buf, status = &nl.stderr, MessageWarning
	}
	data := append(*buf, c.Data...)
	start := 0
	for {
		end := bytes.IndexByte(data[start:], '\n')
		if end >= 0 {
			o.emit(ctx, nl.name, status, data[start:start+end])
			start += end + 1
			continue
		}
		if len(data)-start < maxMessageLine {
			break
		}
		// A very long line goes out in pieces, each cut at a rune boundary.
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

// flush logs a node's unterminated last lines once its command has ended.
func (o *outputLog) flush(ctx context.Context, i int) {
	nl := o.nodes[i]
	if len(nl.stdout) > 0 {
		o.emit(ctx, nl.name, MessageSuccess, nl.stdout)
		nl.stdout = nil
	}
	if len(nl.stderr) > 0 {
		o.emit(ctx, nl.name, MessageWarning, nl.stderr)
		nl.stderr = nil
	}
}

func (o *outputLog) emit(ctx context.Context, name string, status MessageStatus, line []byte) {
	switch n := o.sent.Add(1); {
	case n == o.max+1:
		o.log.Message(ctx, MessageWarning, fmt.Sprintf("More output than %d lines: the rest is in the job result only.", o.max))
		return
	case n > o.max:
		return
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	o.log.Message(ctx, status, name+": "+strings.ToValidUTF8(string(line), "\uFFFD"))
}
