package remote

import (
	"fmt"
	"regexp"
	"strings"
)

// Order says which of a filter's lists is applied first, as in RPort's
// remote-commands settings.
type Order string

const (
	// AllowDeny: a command must match an allow pattern and then no deny pattern.
	AllowDeny Order = "allow,deny"
	// DenyAllow: a command matching a deny pattern is refused unless it also
	// matches an allow pattern; anything else passes.
	DenyAllow Order = "deny,allow"
)

// FilterConfig is a command filter as configured: regular expressions (Go
// syntax, unanchored unless they say ^ or $) matched against the command text.
type FilterConfig struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
	// Order is "allow,deny" (the default) or "deny,allow".
	Order Order `json:"order,omitempty"`
}

// Filter decides whether a command may be sent to a node. A nil *Filter allows
// every command.
type Filter struct {
	allow, deny []*regexp.Regexp
	order       Order
}

// NewFilter compiles a filter configuration. With order allow,deny an empty
// allow list allows every command, so that a configuration with only deny
// patterns means what it says.
func NewFilter(cfg FilterConfig) (*Filter, error) {
	f := &Filter{}
	switch o := Order(strings.ToLower(strings.ReplaceAll(string(cfg.Order), " ", ""))); o {
	case "", AllowDeny:
		f.order = AllowDeny
	case DenyAllow:
		f.order = DenyAllow
	default:
		return nil, fmt.Errorf("command filter order %q is neither %q nor %q", cfg.Order, AllowDeny, DenyAllow)
	}
	var err error
	if f.allow, err = compileAll("allow", cfg.Allow); err != nil {
		return nil, err
	}
	if f.deny, err = compileAll("deny", cfg.Deny); err != nil {
		return nil, err
	}
	return f, nil
}

func compileAll(list string, patterns []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("command filter %s pattern %q: %w", list, p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// Check returns nil when the command may run, else an error that says which
// rule refused it (the caller wraps it as ErrRefused).
func (f *Filter) Check(command string) error {
	if f == nil {
		return nil
	}
	allowed := firstMatch(f.allow, command)
	denied := firstMatch(f.deny, command)
	switch f.order {
	case DenyAllow:
		if denied != nil && allowed == nil {
			return fmt.Errorf("command matches deny pattern %q", denied)
		}
		return nil
	default:
		if len(f.allow) > 0 && allowed == nil {
			return fmt.Errorf("command matches no allow pattern")
		}
		if denied != nil {
			return fmt.Errorf("command matches deny pattern %q", denied)
		}
		return nil
	}
}

func firstMatch(res []*regexp.Regexp, s string) *regexp.Regexp {
	for _, re := range res {
		if re.MatchString(s) {
			return re
		}
	}
	return nil
}

// Filters holds the configured filters: a default and, optionally, one per
// cluster that replaces the default for that cluster's nodes.
type Filters struct {
	Default  *Filter
	Clusters map[string]*Filter
}

// For returns the filter that applies to a cluster's nodes (nil: no filter).
func (fs Filters) For(cluster string) *Filter {
	if f, ok := fs.Clusters[cluster]; ok && cluster != "" {
		return f
	}
	return fs.Default
}
