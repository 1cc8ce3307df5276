// Package hosts is cmon's view of the nodes it manages: the inventory of
// clusters and their hosts, and the way to reach them. Commands run over SSH
// (golang.org/x/crypto/ssh) through a Client: connections are pooled per
// login, host keys are learned when a cluster is registered and checked
// strictly afterwards, command filters decide what may be sent, output is
// limited and streamed, a timeout or kill ends the remote processes, and
// RunMany fans a command out over many nodes.
package hosts
