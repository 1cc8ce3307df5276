// Package hosts is cmon's view of the nodes it manages: the inventory of
// clusters and their hosts in the database, the store of their host keys,
// and the health monitor that checks them. Reaching a node is the business
// of hosts/remote; TargetOf says how to reach one host of a cluster.
package hosts
