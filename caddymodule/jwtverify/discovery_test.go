package jwtverify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// metadataServer serves documents by path and records the request order.
type metadataServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
	docs map[string]func(base string) any // path -> document (nil: 404)
}

func newMetadataServer(t *testing.T, docs map[string]func(base string) any) *metadataServer {
	m := &metadataServer{docs: docs}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.seen = append(m.seen, r.URL.Path)
		m.mu.Unlock()
		doc, ok := m.docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch d := doc(m.srv.URL).(type) {
		case []byte:
			_, _ = w.Write(d)
		default:
			_ = json.NewEncoder(w).Encode(d)
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func TestMetadataURLs(t *testing.T) {
	tests := []struct {
		issuer string
		want   []string
	}{
		{"https://as.example.com", []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration"}},
		{"https://as.example.com/", []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration"}},
		{"https://as.example.com/realms/mcp", []string{
			"https://as.example.com/.well-known/oauth-authorization-server/realms/mcp",
			"https://as.example.com/realms/mcp/.well-known/openid-configuration",
			"https://as.example.com/.well-known/openid-configuration/realms/mcp"}},
		{"https://as.example.com/tenant/", []string{
			"https://as.example.com/.well-known/oauth-authorization-server/tenant",
			"https://as.example.com/tenant/.well-known/openid-configuration",
			"https://as.example.com/.well-known/openid-configuration/tenant"}},
	}
	for _, tc := range tests {
		got, err := metadataURLs(tc.issuer)
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("metadataURLs(%q) = %q, %v; want %q", tc.issuer, got, err, tc.want)
		}
	}
}

func TestDiscoverJWKSURI(t *testing.T) {
	const path = "/realms/mcp"
	as := "/.well-known/oauth-authorization-server" + path
	oidcAppended := path + "/.well-known/openid-configuration"
	oidcInserted := "/.well-known/openid-configuration" + path
	md := func(issuerSuffix, jwks string) func(string) any {
		return func(base string) any {
			d := map[string]any{"issuer": base + path + issuerSuffix}
			if jwks != "" {
				d["jwks_uri"] = base + jwks
			}
			return d
		}
	}
	tests := []struct {
		name     string
		docs     map[string]func(string) any
		wantJWKS string // path on the server; "" = error
		wantSeen []string
		errHas   string
	}{
		{"RFC 8414 path-aware first", map[string]func(string) any{
			as: md("", "/as-jwks"), oidcAppended: md("", "/oidc-jwks")},
			"/as-jwks", []string{as}, ""},
		{"OIDC appended second", map[string]func(string) any{
			oidcAppended: md("", "/oidc-jwks"), oidcInserted: md("", "/other")},
			"/oidc-jwks", []string{as, oidcAppended}, ""},
		{"OIDC inserted third", map[string]func(string) any{oidcInserted: md("", "/third")},
			"/third", []string{as, oidcAppended, oidcInserted}, ""},
		{"issuer mismatch (trailing slash) everywhere", map[string]func(string) any{
			as: md("/", "/as-jwks"), oidcAppended: md("/", "/x"), oidcInserted: md("/", "/y")},
			"", []string{as, oidcAppended, oidcInserted}, "does not equal"},
		{"mismatching RFC 8414 doc skipped for a matching OIDC doc", map[string]func(string) any{
			as: md("/other", "/evil"), oidcAppended: md("", "/good")},
			"/good", []string{as, oidcAppended}, ""},
		{"RFC 8414 doc without jwks_uri, OIDC has it", map[string]func(string) any{
			as: md("", ""), oidcAppended: md("", "/oidc-jwks")},
			"/oidc-jwks", []string{as, oidcAppended}, ""},
		{"no jwks_uri anywhere", map[string]func(string) any{as: md("", "")},
			"", []string{as, oidcAppended, oidcInserted}, "no jwks_uri"},
		{"relative jwks_uri", map[string]func(string) any{as: func(base string) any {
			return map[string]any{"issuer": base + path, "jwks_uri": "/jwks"}
		}}, "", nil, "not an absolute"},
		{"not JSON", map[string]func(string) any{as: func(string) any { return []byte("<html>") }},
			"", nil, "not a JSON object"},
		{"body over 1 MiB", map[string]func(string) any{as: func(string) any { return []byte(strings.Repeat(" ", 1<<20+10) + "{}") }},
			"", nil, "too large"},
		{"nothing found", map[string]func(string) any{}, "", []string{as, oidcAppended, oidcInserted}, "status 404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetadataServer(t, tc.docs)
			got, err := DiscoverJWKSURI(context.Background(), m.srv.Client(), m.srv.URL+path)
			if tc.wantJWKS == "" {
				if err == nil {
					t.Fatalf("want error, got %q", got)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %q lacks %q", err, tc.errHas)
				}
			} else if err != nil || got != m.srv.URL+tc.wantJWKS {
				t.Fatalf("got %q, %v; want %q", got, err, m.srv.URL+tc.wantJWKS)
			}
			if tc.wantSeen != nil && strings.Join(m.seen, " ") != strings.Join(tc.wantSeen, " ") {
				t.Fatalf("requests %q, want %q", m.seen, tc.wantSeen)
			}
		})
	}
}

func TestDiscoverJWKSURIRootIssuer(t *testing.T) {
	m := newMetadataServer(t, map[string]func(string) any{
		"/.well-known/openid-configuration": func(base string) any {
			return map[string]any{"issuer": base, "jwks_uri": base + "/certs"}
		},
	})
	got, err := DiscoverJWKSURI(context.Background(), nil, m.srv.URL)
	if err != nil || got != m.srv.URL+"/certs" {
		t.Fatalf("got %q, %v", got, err)
	}
	if strings.Join(m.seen, " ") != "/.well-known/oauth-authorization-server /.well-known/openid-configuration" {
		t.Fatalf("requests %q", m.seen)
	}
}

func TestDiscoverJWKSURIBadIssuer(t *testing.T) {
	for _, iss := range []string{"", "not a url", "/relative", "ftp://x", "https://u@x", "https://x?q", "https://x#f"} {
		if _, err := DiscoverJWKSURI(context.Background(), nil, iss); err == nil {
			t.Errorf("issuer %q accepted", iss)
		}
	}
}
