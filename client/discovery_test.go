package client

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

func TestDiscoveryVariants(t *testing.T) {
	tests := []struct {
		name        string
		ao          oauthtest.ASOptions
		ro          oauthtest.ResourceOptions
		wantPRM     string // path of the PRM used
		wantASPath  string // path of the AS metadata used
		wantASHits  []string
		wantPRMHits []string
	}{
		{
			name:        "resource_metadata from the 401 header",
			ro:          oauthtest.ResourceOptions{HeaderPRMPath: "/meta/prm", NoPathPRM: true, NoRootPRM: true},
			wantPRM:     "/meta/prm",
			wantASPath:  "/.well-known/oauth-authorization-server",
			wantASHits:  []string{"/.well-known/oauth-authorization-server"},
			wantPRMHits: []string{"/meta/prm"},
		},
		{
			name:        "path-suffixed PRM when the header names none",
			ro:          oauthtest.ResourceOptions{NoHeaderMetadata: true},
			wantPRM:     "/.well-known/oauth-protected-resource/mcp",
			wantASPath:  "/.well-known/oauth-authorization-server",
			wantPRMHits: []string{"/.well-known/oauth-protected-resource/mcp"},
		},
		{
			name:        "root PRM when the path-suffixed one is an SPA page",
			ro:          oauthtest.ResourceOptions{NoHeaderMetadata: true, NoPathPRM: true},
			wantPRM:     "/.well-known/oauth-protected-resource",
			wantASPath:  "/.well-known/oauth-authorization-server",
			wantPRMHits: []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"},
		},
		{
			name:       "issuer with a path",
			ao:         oauthtest.ASOptions{IssuerPath: "/t1"},
			wantPRM:    "/.well-known/oauth-protected-resource/mcp",
			wantASPath: "/.well-known/oauth-authorization-server/t1",
			wantASHits: []string{"/.well-known/oauth-authorization-server/t1"},
		},
		{
			name:       "OIDC-only server at the root",
			ao:         oauthtest.ASOptions{OIDCOnly: true},
			wantPRM:    "/.well-known/oauth-protected-resource/mcp",
			wantASPath: "/.well-known/openid-configuration",
			wantASHits: []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
		},
		{
			name:       "OIDC-only server with a path",
			ao:         oauthtest.ASOptions{OIDCOnly: true, IssuerPath: "/t1"},
			wantPRM:    "/.well-known/oauth-protected-resource/mcp",
			wantASPath: "/t1/.well-known/openid-configuration",
			wantASHits: []string{"/.well-known/oauth-authorization-server/t1", "/.well-known/openid-configuration/t1", "/t1/.well-known/openid-configuration"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.ao, tt.ro)
			c, _ := e.client(t, nil)
			d, err := c.Discover(ctxT(t), nil)
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if want := e.res.Server.URL + tt.wantPRM; d.PRMURL != want {
				t.Errorf("PRM URL = %s, want %s", d.PRMURL, want)
			}
			if want := e.as.Server.URL + tt.wantASPath; d.ASMetadataURL != want {
				t.Errorf("AS metadata URL = %s, want %s", d.ASMetadataURL, want)
			}
			if d.Issuer != e.as.Issuer || d.AS.Issuer != e.as.Issuer || d.PRM.Resource != e.res.URL {
				t.Errorf("issuer %s / %s, resource %s", d.Issuer, d.AS.Issuer, d.PRM.Resource)
			}
			if tt.wantASHits != nil && !reflect.DeepEqual(e.as.MetadataHits(), tt.wantASHits) {
				t.Errorf("AS metadata requests = %v, want %v", e.as.MetadataHits(), tt.wantASHits)
			}
			if tt.wantPRMHits != nil && !reflect.DeepEqual(e.res.PRMHits(), tt.wantPRMHits) {
				t.Errorf("PRM requests = %v, want %v", e.res.PRMHits(), tt.wantPRMHits)
			}
			if !reflect.DeepEqual(d.Scopes(), []string{"mcp:read"}) {
				t.Errorf("scopes = %v, want the challenge's [mcp:read]", d.Scopes())
			}
			// The whole login and a tool list work with this discovery.
			tools, err := c.Tools(ctxT(t))
			if err != nil {
				t.Fatalf("Tools: %v", err)
			}
			if len(tools) != 4 {
				t.Fatalf("got %d tools", len(tools))
			}
		})
	}
}

func TestDiscoveryFailures(t *testing.T) {
	tests := []struct {
		name string
		ao   oauthtest.ASOptions
		ro   oauthtest.ResourceOptions
		want string
	}{
		{"metadata issuer mismatch", oauthtest.ASOptions{MetadataIssuer: "https://elsewhere.example"}, oauthtest.ResourceOptions{}, "the server's metadata names issuer https://elsewhere.example, expected http://127.0.0.1:"},
		{"trailing-slash issuer mismatch", oauthtest.ASOptions{IssuerPath: "/t1", MetadataIssuerSlash: true}, oauthtest.ResourceOptions{}, "/t1/, expected http://127.0.0.1:"},
		{"no PKCE S256", oauthtest.ASOptions{NoS256: true}, oauthtest.ResourceOptions{}, "does not advertise PKCE S256"},
		{"PRM for another resource", oauthtest.ASOptions{}, oauthtest.ResourceOptions{PRMResource: "http://127.0.0.1:1/other"}, "is for http://127.0.0.1:1/other, not for"},
		{"no PRM anywhere", oauthtest.ASOptions{}, oauthtest.ResourceOptions{NoHeaderMetadata: true, NoPathPRM: true, NoRootPRM: true}, "no protected resource metadata for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.ao, tt.ro)
			c, _ := e.client(t, nil)
			_, err := c.Discover(ctxT(t), nil)
			mustContain(t, err, tt.want)
			// Login fails with the same message and never opens the browser.
			err = c.Login(ctxT(t))
			mustContain(t, err, tt.want)
			if e.browser.count() != 0 {
				t.Fatal("the browser was opened")
			}
		})
	}
}

func TestResourceMatches(t *testing.T) {
	tests := []struct {
		resource, mcp string
		want          bool
	}{
		{"https://a.example/mcp", "https://a.example/mcp", true},
		{"https://A.example/mcp/", "HTTPS://a.example/mcp", true},
		{"https://a.example:443/mcp", "https://a.example/mcp", true},
		{"https://a.example", "https://a.example/mcp", true},
		{"https://a.example/", "https://a.example/mcp", true},
		{"https://a.example/mc", "https://a.example/mcp", false},
		{"https://a.example/mcp/x", "https://a.example/mcp", false},
		{"http://a.example/mcp", "https://a.example/mcp", false},
		{"https://a.example:8443/mcp", "https://a.example/mcp", false},
		{"https://b.example/mcp", "https://a.example/mcp", false},
		{"https://a.example/mcp#f", "https://a.example/mcp", false},
		{"/mcp", "https://a.example/mcp", false},
	}
	for _, tt := range tests {
		if got := resourceMatches(tt.resource, tt.mcp); got != tt.want {
			t.Errorf("resourceMatches(%q, %q) = %v, want %v", tt.resource, tt.mcp, got, tt.want)
		}
	}
}

func TestWellKnownURLs(t *testing.T) {
	tests := []struct {
		in   string
		prm  []string
		asMD []string
	}{
		{"https://h.example/mcp", []string{"https://h.example/.well-known/oauth-protected-resource/mcp", "https://h.example/.well-known/oauth-protected-resource"},
			[]string{"https://h.example/.well-known/oauth-authorization-server/mcp", "https://h.example/.well-known/openid-configuration/mcp", "https://h.example/mcp/.well-known/openid-configuration"}},
		{"https://h.example", []string{"https://h.example/.well-known/oauth-protected-resource"},
			[]string{"https://h.example/.well-known/oauth-authorization-server", "https://h.example/.well-known/openid-configuration"}},
		{"https://h.example/a/b/", []string{"https://h.example/.well-known/oauth-protected-resource/a/b", "https://h.example/.well-known/oauth-protected-resource"},
			[]string{"https://h.example/.well-known/oauth-authorization-server/a/b", "https://h.example/.well-known/openid-configuration/a/b", "https://h.example/a/b/.well-known/openid-configuration"}},
	}
	for _, tt := range tests {
		u, _ := canonicalResource(tt.in)
		if got := prmURLs(u); !slices.Equal(got, tt.prm) {
			t.Errorf("prmURLs(%s) = %v, want %v", tt.in, got, tt.prm)
		}
		got, err := asMetadataURLs(tt.in)
		if err != nil || !slices.Equal(got, tt.asMD) {
			t.Errorf("asMetadataURLs(%s) = %v, %v, want %v", tt.in, got, err, tt.asMD)
		}
	}
	if _, err := asMetadataURLs("https://h.example/?x=1"); err == nil || !strings.Contains(err.Error(), "query") {
		t.Errorf("issuer with a query accepted: %v", err)
	}
}

func TestCheckEndpointURL(t *testing.T) {
	tests := []struct {
		mcp, endpoint string
		wantErr       string
	}{
		{"https://h.example/mcp", "https://as.example/token", ""},
		{"https://h.example/mcp", "http://as.example/token", "is not https"},
		{"https://h.example/mcp", "http://127.0.0.1:9000/token", ""},
		{"https://h.example/mcp", "http://localhost:9000/token", ""},
		{"https://h.example/mcp", "http://[::1]:9000/token", ""},
		{"http://h.example/mcp", "http://as.example/token", ""},
		{"https://h.example/mcp", "https://as.example/token#f", "must not have a fragment"},
		{"https://h.example/mcp", "https://user@as.example/token", "must not have a fragment or user info"},
		{"https://h.example/mcp", "javascript:alert(1)", "not an absolute http(s) URL"},
		{"https://h.example/mcp", "/token", "not an absolute http(s) URL"},
	}
	for _, tt := range tests {
		c, err := New(Config{MCPURL: tt.mcp, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		err = c.checkEndpointURL(tt.endpoint, "token_endpoint")
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s with %s: %v", tt.endpoint, tt.mcp, err)
			}
			continue
		}
		mustContain(t, err, tt.wantErr)
	}
}
