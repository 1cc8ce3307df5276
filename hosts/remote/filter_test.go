package remote

import "testing"

func TestFilter(t *testing.T) {
	rport := FilterConfig{ // RPort's defaults
		Allow: []string{`^/usr/bin/.*`, `^/usr/local/bin/.*`},
		Deny:  []string{`(\||<|>|;|,|\n|&)`},
	}
	tests := []struct {
		name    string
		cfg     FilterConfig
		command string
		allowed bool
	}{
		{name: "no patterns allow all", cfg: FilterConfig{}, command: "rm -rf /tmp/x", allowed: true},
		{name: "allow,deny: allowed path", cfg: rport, command: "/usr/bin/date", allowed: true},
		{name: "allow,deny: no allow match", cfg: rport, command: "date", allowed: false},
		{name: "allow,deny: allowed but denied", cfg: rport, command: "/usr/bin/date; rm -rf /", allowed: false},
		{name: "allow,deny: newline denied", cfg: rport, command: "/usr/bin/date\nrm x", allowed: false},
		{name: "allow,deny: only deny given", cfg: FilterConfig{Deny: []string{`^rm `}}, command: "ls", allowed: true},
		{name: "allow,deny: only deny given, denied", cfg: FilterConfig{Deny: []string{`^rm `}}, command: "rm x", allowed: false},
		{name: "allow,deny: zip excluded", cfg: FilterConfig{Allow: []string{`^/usr/bin/.*`}, Deny: []string{`^/usr/bin/zip`}},
			command: "/usr/bin/zip a", allowed: false},
		{name: "deny,allow: denied unless allowed", cfg: FilterConfig{Order: DenyAllow, Deny: []string{`.*`}, Allow: []string{`zip$`}},
			command: "gzip", allowed: true},
		{name: "deny,allow: denied", cfg: FilterConfig{Order: DenyAllow, Deny: []string{`.*`}, Allow: []string{`zip$`}},
			command: "ls", allowed: false},
		{name: "deny,allow: no match passes", cfg: FilterConfig{Order: DenyAllow, Deny: []string{`^rm`}},
			command: "ls", allowed: true},
		{name: "order with spaces and case", cfg: FilterConfig{Order: "Deny, Allow", Deny: []string{`^rm`}},
			command: "rm x", allowed: false},
		{name: "sudo -n prefix allowed", cfg: FilterConfig{Allow: []string{`^sudo -n .*`}}, command: "sudo -n ls", allowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFilter(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = f.Check(tt.command)
			if (err == nil) != tt.allowed {
				t.Errorf("Check(%q) = %v, want allowed %v", tt.command, err, tt.allowed)
			}
		})
	}
}

func TestFilterConfigErrors(t *testing.T) {
	for _, cfg := range []FilterConfig{
		{Order: "allow-deny"},
		{Allow: []string{"("}},
		{Deny: []string{"[a-"}},
	} {
		if _, err := NewFilter(cfg); err == nil {
			t.Errorf("NewFilter(%+v) accepted", cfg)
		}
	}
}

func TestFiltersPerCluster(t *testing.T) {
	strict, err := NewFilter(FilterConfig{Allow: []string{`^echo `}})
	if err != nil {
		t.Fatal(err)
	}
	fs := Filters{Clusters: map[string]*Filter{"prod": strict}}
	if err := fs.For("").Check("rm x"); err != nil {
		t.Errorf("no default filter: %v", err)
	}
	if err := fs.For("dev").Check("rm x"); err != nil {
		t.Errorf("cluster without a filter: %v", err)
	}
	if err := fs.For("prod").Check("rm x"); err == nil {
		t.Error("prod filter allowed rm")
	}
	var nilFilter *Filter
	if err := nilFilter.Check("anything"); err != nil {
		t.Errorf("nil filter: %v", err)
	}
}
