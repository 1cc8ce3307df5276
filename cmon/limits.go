package main

import (
	"fmt"
	"log/slog"
	"syscall"

	"github.com/cmon-dev/cmon/rpc"
)

// fdReserveMin is the fewest file descriptors kept from client connections
// for the controller's own: its database, SSH sessions to nodes, files.
const fdReserveMin = 256

// connLimits are the configured connection limits, the total lowered to what
// the file-descriptor limit leaves after the controller's own needs: a
// controller out of descriptors can neither accept nor reach its nodes.
func connLimits(log *slog.Logger, cfg *Config) rpc.ConnLimits {
	limits := rpc.ConnLimits{Total: cfg.MaxConnections, PerAddress: cfg.MaxConnectionsPerAddress}
	files, err := raiseFileLimit()
	if err != nil {
		log.Warn("file descriptor limit", "err", err)
	}
	if files == 0 {
		return limits
	}
	sized := sizeConnLimits(limits, files)
	if sized.Total != limits.Total {
		log.Warn("max connections lowered to fit the file descriptor limit",
			"max_connections", sized.Total, "configured", limits.Total, "open_files_limit", files)
	}
	log.Info("connection limits", "max_connections", sized.Total,
		"max_connections_per_address", sized.PerAddress, "open_files_limit", files)
	return sized
}

// sizeConnLimits bounds the total by the descriptors files leaves to clients.
func sizeConnLimits(limits rpc.ConnLimits, files uint64) rpc.ConnLimits {
	reserve := min(max(fdReserveMin, files/4), files/2)
	room := int(min(files-reserve, 1_000_000)) // the configuration's own ceiling
	if limits.Total <= 0 || limits.Total > room {
		limits.Total = room
	}
	return limits
}

// raiseFileLimit raises the soft limit on open files to the hard one and
// returns it. The Go runtime does so too on Linux; doing it here keeps the
// sizing right wherever it does not.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if lim.Cur >= lim.Max {
		return lim.Cur, nil
	}
	raised := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		return lim.Cur, fmt.Errorf("raise the open files limit from %d to %d: %w", lim.Cur, lim.Max, err)
	}
	return lim.Max, nil
}
