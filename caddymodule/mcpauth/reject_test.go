package mcpauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// TestHandleErrorsPath: with handle_errors routes, rejections are returned
// as caddyhttp errors with the challenge already set.
func TestHandleErrorsPath(t *testing.T) {
	env := newTestEnv(t, nil)
	srv := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
	r := httptest.NewRequest("POST", "/mcp", nil)
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, srv)
	err := env.h.ServeHTTP(w, r, env.backend)
	var he caddyhttp.HandlerError
	if !asHandlerError(err, &he) || he.StatusCode != 401 {
		t.Fatalf("err = %v, want a 401 HandlerError", err)
	}
	if got := w.Header().Get("WWW-Authenticate"); got != chNoToken {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if w.Body.Len() != 0 {
		t.Errorf("body written although handle_errors will answer: %q", w.Body.String())
	}
}

func asHandlerError(err error, he *caddyhttp.HandlerError) bool {
	if e, ok := err.(caddyhttp.HandlerError); ok {
		*he = e
		return true
	}
	return false
}

// TestPreflight: CORS preflight on the protected path needs no token.
func TestPreflight(t *testing.T) {
	env := newTestEnv(t, nil)
	r := httptest.NewRequest("OPTIONS", "/mcp", nil)
	r.Header.Set("Origin", "https://app.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	w := env.do(r)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	if env.backend.Calls() != 0 {
		t.Error("backend called for a preflight")
	}
	// A plain OPTIONS without CORS headers is a normal request: auth needed.
	if w := env.do(httptest.NewRequest("OPTIONS", "/mcp", nil)); w.Code != 401 {
		t.Errorf("plain OPTIONS status %d, want 401", w.Code)
	}
}

// BenchmarkHandlerNoToken is the 401 challenge path (the cached and fresh
// token paths are in mcpauth_bench_test.go).
func BenchmarkHandlerNoToken(b *testing.B) {
	env := newTestEnv(b, nil)
	env.h.logger = zap.NewNop()
	r := httptest.NewRequest("POST", "/mcp", nil)
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
	b.ReportAllocs()
	for b.Loop() {
		w := &nopWriter{h: http.Header{}}
		if err := env.h.ServeHTTP(w, r, nopNext); err != nil {
			b.Fatal(err)
		}
		if w.h.Get("WWW-Authenticate") == "" {
			b.Fatal("no challenge")
		}
	}
}

// TestJWKSNeverLoaded: when the issuer's JWKS is down from the start, valid
// tokens get 503 with Retry-After (not 401 invalid_token, which would send
// clients to sign in again), the backend is not called, and they are
// accepted as soon as the JWKS recovers: the retry backoff while no keys have
// loaded is one second, not the refetch cooldown.
func TestJWKSNeverLoaded(t *testing.T) {
	env := newTestEnv(t, nil) // refetch cooldown: the 30s default
	env.issuer.jwksDown.Store(true)
	tok := env.validToken("github:1")
	for _, s := range []struct {
		name        string
		advance     time.Duration
		down        bool
		status      int
		wantFetches int64
	}{
		{"down at start", 0, true, 503, 1},
		{"still down, within the backoff", 500 * time.Millisecond, true, 503, 1},
		{"recovered, after the backoff", 600 * time.Millisecond, false, 200, 2},
	} {
		env.clock.Advance(s.advance) // the key set runs on the handler's clock
		env.issuer.jwksDown.Store(s.down)
		w := env.do(bearerRequest("POST", "/mcp", tok))
		if w.Code != s.status || env.issuer.jwksFetches.Load() != s.wantFetches {
			t.Fatalf("%s: status %d, JWKS fetches %d; want %d, %d", s.name, w.Code, env.issuer.jwksFetches.Load(), s.status, s.wantFetches)
		}
		if s.status == 503 {
			if w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" || env.backend.Calls() != 0 {
				t.Fatalf("%s: Retry-After %q, challenge %q, backend calls %d", s.name,
					w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"), env.backend.Calls())
			}
		}
	}
}
