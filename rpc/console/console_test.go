package console

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

// Every file the page or a module refers to is embedded: a renamed module
// fails here, not in an operator's browser.
func TestReferencesResolve(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="/console/([^"]+)"|from '\./([^']+)'`)
	for name, f := range h.files {
		for _, m := range refs.FindAllStringSubmatch(string(f.body), -1) {
			ref := m[1] + m[2]
			if _, ok := h.files[ref]; !ok {
				t.Errorf("%s refers to %s, which is not embedded", name, ref)
			}
		}
	}
}

func TestServes(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		console            bool
		status             int
	}{
		{name: "the page", method: "GET", path: "/", console: true, status: 200},
		{name: "a module", method: "GET", path: "/console/app.js", console: true, status: 200},
		{name: "HEAD", method: "HEAD", path: "/console/style.css", console: true, status: 200},
		{name: "a missing file", method: "GET", path: "/console/none.js", console: true, status: 404},
		{name: "no directory listing", method: "GET", path: "/console/", console: true, status: 404},
		{name: "the API", method: "POST", path: "/v2/auth", console: false},
		{name: "a POST to the page is the API's", method: "POST", path: "/", console: false},
		{name: "metrics", method: "GET", path: "/metrics", console: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if got := Serves(r); got != tt.console {
				t.Fatalf("Serves(%s %s) = %v, want %v", tt.method, tt.path, got, tt.console)
			}
			if !tt.console {
				return
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == http.StatusOK && w.Header().Get("Content-Security-Policy") == "" {
				t.Fatal("no Content-Security-Policy")
			}
		})
	}
}
