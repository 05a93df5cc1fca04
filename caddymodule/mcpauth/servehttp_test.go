package mcpauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestPlaceholders: the caddyauth-style identity placeholders are set.
func TestPlaceholders(t *testing.T) {
	env := newTestEnv(t, nil)
	r := bearerRequest("POST", "/mcp", env.validToken("github:42"))
	repl := caddy.NewReplacer()
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, repl, w, nil)
	if err := env.h.ServeHTTP(w, r, env.backend); err != nil || w.Code != 200 {
		t.Fatalf("status %d err %v", w.Code, err)
	}
	for k, want := range map[string]string{
		"http.auth.user.id":        "github:42",
		"http.auth.user.scope":     "mcp:tools github:repo",
		"http.auth.user.client_id": "client-1",
		"http.auth.user.iss":       env.issuer.URL(),
	} {
		if got, _ := repl.GetString(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestUpstreamHeaderAuthorization: upstream_header Authorization sends
// "Bearer <upstream token>" and never the client's token.
func TestUpstreamHeaderAuthorization(t *testing.T) {
	env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.UpstreamHeader = "Authorization" })
	tok := env.validToken("github:5")
	if w := env.do(bearerRequest("POST", "/mcp", tok)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if v := env.backend.Last().Values("Authorization"); len(v) != 1 || v[0] != "Bearer gho_5" {
		t.Errorf("backend Authorization = %q", v)
	}
}

// TestKeepAuthorization: the explicit opt-in forwards the client's token.
func TestKeepAuthorization(t *testing.T) {
	env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.KeepAuthorization = true })
	tok := env.validToken("github:5")
	if w := env.do(bearerRequest("POST", "/mcp", tok)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if env.backend.Last().Get("Authorization") != "Bearer "+tok {
		t.Error("keep_authorization did not keep the header")
	}
}

// TestUpstreamHeaderSpellings: whatever spelling upstream_header uses ("_"
// or "-", any case), every client copy in any spelling is deleted and the
// backend sees only the gateway's value. Before, with "_" in upstream_header
// the normalisation ran on one side only and client copies survived.
func TestUpstreamHeaderSpellings(t *testing.T) {
	clientCopies := []string{"X-Github-Token", "X_github_token", "X-GITHUB_TOKEN", "x_GitHub-token"}
	for _, configured := range []string{"X-GitHub-Token", "X_GitHub_Token", "x-github_token"} {
		for _, linked := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s linked=%v", configured, linked), func(t *testing.T) {
				env := newTestEnv(t, func(h *Handler, _ *testEnv) {
					h.UpstreamHeader = configured
					h.OnMissingUpstream = OnMissingUpstreamPass
				})
				if !linked {
					env.exchange.setUnlinked("github:9")
				}
				r := bearerRequest("POST", "/mcp", env.validToken("github:9"))
				for _, k := range clientCopies {
					r.Header[k] = []string{"gho_attacker"}
				}
				if w := env.do(r); w.Code != 200 {
					t.Fatalf("status %d", w.Code)
				}
				var got []string
				for k, vs := range env.backend.Last() {
					if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-github-token") {
						got = append(got, vs...)
					}
				}
				want := []string{"gho_9"}
				if !linked {
					want = nil
				}
				if !slices.Equal(got, want) {
					t.Errorf("backend upstream header values %q, want %q", got, want)
				}
			})
		}
	}
}

// TestWithoutTrailersFastPath pins the case BenchmarkHandlerCached relies
// on: only a request that can carry trailers is copied, and every copy has
// none; the announcing Trailer header is always dropped.
func TestWithoutTrailersFastPath(t *testing.T) {
	tests := []struct {
		name     string
		major    int
		te       []string
		trailer  http.Header
		wantCopy bool
	}{
		{"HTTP/1.1 Content-Length", 1, nil, nil, false},
		{"HTTP/1.1 chunked", 1, []string{"chunked"}, nil, true},
		{"HTTP/1.1 declared trailers", 1, []string{"chunked"}, http.Header{"Authorization": nil}, true},
		{"HTTP/1.1 trailer map without chunking", 1, nil, http.Header{"X-Github-Token": nil}, true},
		{"HTTP/2", 2, nil, nil, true},
		{"HTTP/3", 3, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", nil)
			r.ProtoMajor, r.TransferEncoding, r.Trailer = tt.major, tt.te, tt.trailer
			r.Header.Set("Trailer", "Authorization")
			got := withoutTrailers(r)
			if (got != r) != tt.wantCopy {
				t.Fatalf("copied = %v, want %v", got != r, tt.wantCopy)
			}
			if got.Trailer != nil {
				t.Fatalf("trailers passed on: %v", got.Trailer)
			}
			if got.Header.Get("Trailer") != "" {
				t.Fatal("Trailer header kept")
			}
		})
	}
}
