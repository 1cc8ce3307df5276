// Package remote runs commands on nodes over SSH (golang.org/x/crypto/ssh)
// through a Client: connections are pooled per login, host keys are learned
// when a cluster is registered and checked strictly afterwards (against a
// KnownHosts store), command filters decide what may be sent, output is
// limited and streamed, and RunMany fans a command out over many nodes.
//
// A stop has one grace period: when a Run's context ends, the command's
// process group on the node gets SIGTERM, then SIGKILL after KillGrace, and
// Run returns within StopBound whatever the node does, dropping the
// connection if it must.
package remote
