package client

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

type recordingRT struct{ reqs []*http.Request }

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.reqs = append(r.reqs, req)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(http.NoBody), Header: http.Header{}, Request: req}, nil
}

// TestBearerOnlyToTheMCPOrigin: the token never goes to another origin, even one on the same
// host with another port or scheme.
func TestBearerOnlyToTheMCPOrigin(t *testing.T) {
	c, err := New(Config{MCPURL: "https://mcp.example/mcp", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c.setToken(&tokenRecord{AccessToken: "secret-token", Issuer: "https://as", Resource: "https://mcp.example/mcp"})
	rt := &recordingRT{}
	bt := &bearerTransport{c: c, base: rt}
	tests := []struct {
		url  string
		want string
	}{
		{"https://mcp.example/mcp", "Bearer secret-token"},
		{"https://MCP.example:443/mcp", "Bearer secret-token"},
		{"https://mcp.example:8443/mcp", ""},
		{"http://mcp.example/mcp", ""},
		{"https://evil.example/mcp", ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
		req.Header.Set("Authorization", "Bearer caller-supplied")
		if _, err := bt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		got := rt.reqs[len(rt.reqs)-1].Header.Get("Authorization")
		if tt.want != "" && got != tt.want {
			t.Errorf("%s: Authorization %q, want %q", tt.url, got, tt.want)
		}
		if tt.want == "" && got == "Bearer secret-token" {
			t.Errorf("%s: token leaked to another origin", tt.url)
		}
	}
	if req := rt.reqs[0]; req.Header.Get("Authorization") == "Bearer caller-supplied" {
		t.Error("the caller's header was not replaced")
	}
}

// TestHTTPErrorsAreOneLine: gateway-style failures become one clear line.
func TestHTTPErrorsAreOneLine(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"503 with Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "token service unavailable", http.StatusServiceUnavailable)
		}, "answered 503 Service Unavailable: token service unavailable (retry after 5)"},
		{"403 without insufficient_scope", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"access_denied","error_description":"link your GitHub account at https://idp.example/account"}`)
		}, "answered 403 Forbidden: link your GitHub account at https://idp.example/account"},
		{"502 HTML page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html><body>\nBad gateway\n</body></html>")
		}, "answered 502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := New(Config{MCPURL: srv.URL + "/mcp", CacheDir: t.TempDir(), Stderr: io.Discard, NoBrowser: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Tools(ctxT(t))
			mustContain(t, err, tt.want)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL + "/mcp"
		srv.Close()
		c, _ := New(Config{MCPURL: u, CacheDir: t.TempDir(), Stderr: io.Discard})
		_, err := c.Tools(ctxT(t))
		mustContain(t, err, "cannot reach the MCP server at "+u)
	})
}

func TestUnionScopes(t *testing.T) {
	got := unionScopes([]string{"a", "b"}, []string{"b", "c", "a", "d"})
	if len(got) != 4 || got[2] != "c" || got[3] != "d" {
		t.Errorf("got %v", got)
	}
}

// TestFreshTokenRefused: a server that refuses even a just-issued token (e.g. a gateway that
// cannot fetch the issuer's keys) ends in one explanatory line after exactly one new login.
func TestFreshTokenRefused(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.as.InvalidateAll()
	e.as.RefuseNewAccessTokens()
	_, err := c.Tools(ctxT(t))
	mustContain(t, err, "refuses the token "+e.as.Issuer+" just issued (invalid_token: "+oauthtest.InvalidTokenDescription+"); the server may not trust that issuer or its keys")
	if n := len(e.as.Authorizes()); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
}

// TestBearerNotFollowingRedirects: an MCP server (or something in front of it) that redirects
// to another origin does not get the token carried there by the HTTP client; a redirect within
// the origin keeps it.
func TestBearerNotFollowingRedirects(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // "server path" -> Authorization
	record := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name+" "+r.URL.Path] = r.Header.Get("Authorization")
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		}
	}
	other := httptest.NewServer(record("other"))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/to-other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/landed", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/to-self", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/landed", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/landed", record("mcp"))
	mcpSrv := httptest.NewServer(mux)
	defer mcpSrv.Close()

	c, err := New(Config{MCPURL: mcpSrv.URL + "/mcp", CacheDir: t.TempDir(), HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	c.setToken(&tokenRecord{AccessToken: "secret-token", Issuer: "https://as", Resource: mcpSrv.URL + "/mcp", MCPURL: mcpSrv.URL + "/mcp"})
	hc := c.sessionHTTPClient()
	tests := []struct {
		method, path, landed, want string
	}{
		{http.MethodPost, "/to-other", "other /landed", ""},
		{http.MethodGet, "/to-other", "other /landed", ""},
		{http.MethodPost, "/to-self", "mcp /landed", "Bearer secret-token"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			mu.Lock()
			clear(seen)
			mu.Unlock()
			req, _ := http.NewRequest(tt.method, mcpSrv.URL+tt.path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			got, ok := seen[tt.landed]
			mu.Unlock()
			if !ok {
				t.Fatalf("the redirect did not land at %s: %v", tt.landed, seen)
			}
			if got != tt.want {
				t.Errorf("Authorization at %s = %q, want %q", tt.landed, got, tt.want)
			}
		})
	}
}
