package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// splitAddresses takes a list of servers out of the tcp(...) part of dsn,
// for a Galera cluster's nodes: tcp(db1:3306,db2:3306,db3). It returns dsn
// naming the first of them, which the driver can parse, and every address
// with its port; a DSN naming one server comes back as it is, with no list.
func splitAddresses(dsn string) (string, []string, error) {
	// The driver's own reading: the database follows the last slash, the
	// credentials end at the last @ before it.
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		return dsn, nil, nil
	}
	at := strings.LastIndex(dsn[:slash], "@")
	list, ok := strings.CutPrefix(dsn[at+1:slash], "tcp(")
	if !ok || !strings.HasSuffix(list, ")") || !strings.Contains(list, ",") {
		return dsn, nil, nil
	}
	var addrs []string
	for addr := range strings.SplitSeq(strings.TrimSuffix(list, ")"), ",") {
		addr = strings.TrimSpace(addr)
		if addr == "" {
			return "", nil, errors.New("an empty server address in the list of tcp(...)")
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), "3306")
		}
		host, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return "", nil, fmt.Errorf("server address %q in tcp(...) is not host:port with a port from 1 to 65535", addr)
		}
		addrs = append(addrs, addr)
	}
	return dsn[:at+1] + "tcp(" + addrs[0] + ")" + dsn[slash:], addrs, nil
}

// failoverDialTimeout bounds the connection attempt to each listed server,
// so that a node that does not answer at all costs seconds, not the
// system's TCP timeout, before the next is tried.
const failoverDialTimeout = 5 * time.Second

// failoverConnector connects to the first live server of a list, starting
// with the one that served last, so that the pool stays on one node until it
// fails (a controller spreading its transactions over the nodes would only
// collide with itself in certification). A Galera node is live when it is
// Synced: a joiner or a node cut off from the majority has no current data
// to serve.
type failoverConnector struct {
	addrs []string
	nodes []driver.Connector
	// current is the index of the server the last connection went to.
	current atomic.Int32
	// failovers counts the times a new connection went to another server
	// than the one before it.
	failovers atomic.Int64
}

func newFailoverConnector(cfg *mysql.Config, addrs []string) (*failoverConnector, error) {
	f := &failoverConnector{addrs: addrs}
	for _, addr := range addrs {
		node := cfg.Clone()
		node.Addr = addr
		if node.Timeout == 0 {
			node.Timeout = failoverDialTimeout
		}
		connector, err := mysql.NewConnector(node)
		if err != nil {
			return nil, fmt.Errorf("mysql connector for %s: %w", addr, err)
		}
		f.nodes = append(f.nodes, connector)
	}
	return f, nil
}

// Connect tries the servers in turn, from the last one that served, and
// returns a connection to the first live one; the error names every server
// and why it was passed over.
func (f *failoverConnector) Connect(ctx context.Context) (driver.Conn, error) {
	start := int(f.current.Load())
	var errs []error
	for k := range f.nodes {
		i := (start + k) % len(f.nodes)
		conn, err := f.nodes[i].Connect(ctx)
		if err == nil {
			if err = checkSynced(ctx, conn); err != nil {
				conn.Close()
			}
		}
		if err == nil {
			if i != start && f.current.CompareAndSwap(int32(start), int32(i)) {
				f.failovers.Add(1)
			}
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", f.addrs[i], err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no database server of %s is live: %w", strings.Join(f.addrs, ","), errors.Join(errs...))
}

func (f *failoverConnector) Driver() driver.Driver { return f.nodes[0].Driver() }

// errNotSynced says a Galera node is up but not a current member of the
// cluster's primary component.
var errNotSynced = errors.New("the galera node is not synced")

// checkSynced tells whether conn's server may serve: a server without
// Galera may; a Galera node only when Synced.
func checkSynced(ctx context.Context, conn driver.Conn) error {
	queryer, ok := conn.(driver.QueryerContext)
	if !ok {
		return nil
	}
	rows, err := queryer.QueryContext(ctx, "SHOW STATUS LIKE 'wsrep_local_state_comment'", nil)
	if err != nil {
		return fmt.Errorf("read wsrep_local_state_comment: %w", err)
	}
	defer rows.Close()
	row := make([]driver.Value, len(rows.Columns()))
	switch err := rows.Next(row); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("read wsrep_local_state_comment: %w", err)
	case len(row) < 2:
		return nil
	}
	if state := fmt.Sprintf("%s", row[1]); state != "Synced" {
		return fmt.Errorf("%w (%s)", errNotSynced, state)
	}
	return nil
}
