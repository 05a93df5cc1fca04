package idp

import (
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/loopback"
)

// The loopback predicate is internal/loopback's (shared with the rest of mcpgate); registration
// accepts http only on a host it names.
func TestValidateRedirectURILoopback(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1/cb", true},
		{"http://[::1]:8080/cb", true},
		{"http://LocalHost/cb", true},
		{"http://[::ffff:127.0.0.1]/cb", true},
		{"http://localhost.example.com/cb", false},
		{"http://foo.localhost/cb", false},
		{"http://10.0.0.1/cb", false},
		{"http://[::ffff:10.0.0.1]/cb", false},
	} {
		if err := validateRedirectURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("validateRedirectURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestMatchRedirectURI(t *testing.T) {
	cases := []struct {
		reg, req string
		ok       bool
	}{
		{"https://a.example/cb", "https://a.example/cb", true},
		{"https://a.example/cb", "https://A.example/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:1/cb", true},
		{"http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb", true},
		{"http://[::1]/cb", "http://[::1]:9090/cb", true},
		{"http://localhost/cb", "http://localhost:9090/cb", true},
		{"http://localhost/cb", "http://127.0.0.1:9090/cb", false},
		{"http://127.0.0.1/cb", "http://localhost:9090/cb", false},
		{"http://127.0.0.1/cb", "http://[::ffff:127.0.0.1]:9090/cb", false}, // loopback, but not the registered host
		{"http://LOCALHOST/cb", "http://LOCALHOST:9090/cb", true},
		{"http://LOCALHOST/cb", "http://localhost:9090/cb", false},
		{"http://127.0.0.2/cb", "http://127.0.0.2:9090/cb", true},
		{"http://127.0.0.1/cb?a=1", "http://127.0.0.1:5/cb?a=1", true},
		{"http://127.0.0.1/cb?a=1", "http://127.0.0.1:5/cb?a=2", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:99999/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5/cb?", false},
		{"com.example.app:/cb", "com.example.app:/cb", true},
		{"com.example.app:/cb", "com.example.app:/cb2", false},
	}
	for _, tc := range cases {
		if got := matchRedirectURI(tc.reg, tc.req); got != tc.ok {
			t.Errorf("match(%q, %q) = %v", tc.reg, tc.req, got)
		}
	}
}

// FuzzRedirectURI checks invariants of registration validation and matching on arbitrary input.
func FuzzRedirectURI(f *testing.F) {
	for _, s := range []string{"https://a.example/cb", "http://127.0.0.1/cb", "javascript:alert(1)", "JAVASCRIPT:x",
		"data:text/html,x", " https://a", "https://a#f", "https://*.a", "https://u@a/cb", "http://127.0.0.1:8/cb?x=1",
		"com.example:/cb", "http://[::1]/cb", "http://localhost./cb", "https://a/%2e%2e/cb"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, reg, req string) {
		if validateRedirectURI(reg) == nil {
			lower := strings.ToLower(reg)
			if strings.ContainsAny(reg, "#* \t\r\n") || strings.HasPrefix(lower, "javascript:") || strings.HasPrefix(lower, "data:") {
				t.Fatalf("accepted %q", reg)
			}
			u, err := url.Parse(reg)
			if err != nil || u.User != nil {
				t.Fatalf("accepted %q", reg)
			}
			if u.Scheme == "http" && !loopback.Host(u.Hostname()) {
				t.Fatalf("accepted non-loopback http %q", reg)
			}
		}
		if matchRedirectURI(reg, req) && reg != req {
			ru, _ := url.Parse(reg)
			qu, err := url.Parse(req)
			if err != nil || ru.Scheme != "http" || qu.Hostname() != ru.Hostname() || qu.EscapedPath() != ru.EscapedPath() || qu.RawQuery != ru.RawQuery || strings.Contains(req, "#") {
				t.Fatalf("match(%q, %q) true", reg, req)
			}
		}
	})
}
