package commands

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cmon-dev/cmon/hosts"
)

// findHost finds a cluster's host by its name (case-insensitively, as DNS
// names are) or its IP address.
func findHost(c *hosts.Cluster, name string) (hosts.Host, bool) {
	name = strings.TrimSpace(name)
	for _, h := range c.Hosts {
		if strings.EqualFold(h.Hostname, name) || (h.IP != "" && h.IP == name) {
			return h, true
		}
	}
	return hosts.Host{}, false
}

// tagSelector picks hosts by their tags (RPort's {operator, tags}).
type tagSelector struct {
	Operator string   `json:"operator"`
	Tags     []string `json:"tags"`
}

// check normalizes the operator (default OR, as in RPort) and the tags.
func (s *tagSelector) check() error {
	op := strings.ToUpper(strings.TrimSpace(s.Operator))
	switch op {
	case "":
		op = "OR"
	case "AND", "OR":
	default:
		return fmt.Errorf("job_data field \"host_tags.operator\" must be \"AND\" or \"OR\", not %q", s.Operator)
	}
	s.Operator = op
	var tags []string
	for _, t := range s.Tags {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return errors.New("job_data field \"host_tags.tags\" must list at least one tag")
	}
	s.Tags = tags
	return nil
}

func (s *tagSelector) matches(h hosts.Host) bool {
	has := func(t string) bool { return slices.Contains(h.Tags, t) }
	if s.Operator == "AND" {
		for _, t := range s.Tags {
			if !has(t) {
				return false
			}
		}
		return true
	}
	return slices.ContainsFunc(s.Tags, has)
}

// pickHosts selects hosts of c: those named (in the order given), those
// matching tags (in the cluster's order), or all of them.
func pickHosts(c *hosts.Cluster, names []string, tags *tagSelector) ([]hosts.Host, error) {
	var out []hosts.Host
	switch {
	case len(names) > 0:
		var unknown []string
		seen := map[int64]bool{}
		for _, name := range names {
			h, ok := findHost(c, name)
			if !ok {
				unknown = append(unknown, name)
				continue
			}
			if !seen[h.ID] {
				seen[h.ID] = true
				out = append(out, h)
			}
		}
		if len(unknown) == 1 {
			return nil, fmt.Errorf("node %s is not in cluster %q", unknown[0], c.Name)
		}
		if len(unknown) > 1 {
			return nil, fmt.Errorf("nodes %s are not in cluster %q", strings.Join(unknown, ", "), c.Name)
		}
	case tags != nil:
		for _, h := range c.Hosts {
			if tags.matches(h) {
				out = append(out, h)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no node of cluster %q has the tags %s (%s)", c.Name, strings.Join(tags.Tags, ", "), tags.Operator)
		}
	default:
		out = c.Hosts
		if len(out) == 0 {
			return nil, fmt.Errorf("cluster %q has no nodes", c.Name)
		}
	}
	return out, nil
}
