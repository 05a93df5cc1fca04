package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestKeySetSharedAcrossReload simulates a config reload: the new handler is
// provisioned before the old one is cleaned up, shares its key set, and
// needs no JWKS fetch; the key set is destroyed only with its last user.
func TestKeySetSharedAcrossReload(t *testing.T) {
	old := newTestEnv(t, nil)
	if w := old.do(bearerRequest("POST", "/mcp", old.validToken("github:1"))); w.Code != 200 {
		t.Fatalf("old config: %d", w.Code)
	}
	fetches := old.issuer.jwksFetches.Load()

	// "Reload": same issuer settings, other handler options.
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	next := &Handler{
		Resource:       testResource,
		Issuers:        old.h.Issuers,
		RequiredScopes: []string{"mcp:tools"},
		ResourceName:   "reloaded",
		now:            old.clock.Now,
	}
	if err := next.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	key := next.poolKeys[0]
	if n, _ := keySets.References(key); n != 2 {
		t.Fatalf("references during reload = %d, want 2", n)
	}
	if err := old.h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, ok := keySets.References(key); !ok || n != 1 {
		t.Fatalf("references after old Cleanup = %d %v, want 1", n, ok)
	}
	// A token the new handler has never seen verifies with the cached keys.
	w := httptestDo(t, next, bearerRequest("POST", "/mcp", old.validToken("github:2")))
	if w != 200 {
		t.Fatalf("new config: %d", w)
	}
	if got := old.issuer.jwksFetches.Load(); got != fetches {
		t.Errorf("JWKS fetched %d more times after reload, want 0", got-fetches)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := keySets.References(key); ok {
		t.Error("key set survives its last user")
	}
}

// TestKeySetParamsSeparate: changed fetch settings build a separate key set.
func TestKeySetParamsSeparate(t *testing.T) {
	a := keySetParams{Issuer: "https://a", RefetchCooldown: time.Second}
	b := a
	b.RefetchCooldown = 2 * time.Second
	if a.poolKey() == b.poolKey() {
		t.Error("different cooldowns share a pool key")
	}
	c := a
	c.JWKSURI = "https://a/keys"
	if a.poolKey() == c.poolKey() {
		t.Error("different jwks_uri share a pool key")
	}
}

// httptestDo runs one request through h with a trivial backend and returns
// the status.
func httptestDo(t *testing.T, h *Handler, r *http.Request) int {
	t.Helper()
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	if err := h.ServeHTTP(w, r, &recordingBackend{}); err != nil {
		t.Fatal(err)
	}
	return w.Code
}
