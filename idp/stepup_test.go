package idp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestStepUpWiderScope is MCP step-up against the IdP: a client that
// registered with the scope of the gateway's first challenge (as the MCP
// TypeScript SDK does) later asks for a wider offered scope; the user is
// asked to consent again, the consent page names the new scope, and the
// token carries it. A scope the IdP does not offer stays refused.
func TestStepUpWiderScope(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Scopes = []string{"mcp:tools", "mcp:admin"} })
	c := e.register(map[string]any{"scope": "mcp:tools"})
	b := e.browser()

	// First sign-in with the registered scope (the default when none is asked for).
	p := newPKCE()
	q := e.getCode(b, c, p, "bob", "", nil)
	resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 || m["scope"] != "mcp:tools" {
		t.Fatalf("first token: %d %v", resp.StatusCode, m)
	}

	// Step-up: the same signed-in user, the union of scopes.
	p = newPKCE()
	pg := b.follow(authorizeURL(e, c, p, url.Values{"scope": {"mcp:admin mcp:tools"}}))
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `value="approve"`) ||
		!strings.Contains(pg.body, "<code>mcp:admin</code>") || !strings.Contains(pg.body, "<code>mcp:tools</code>") {
		t.Fatalf("want a consent page naming both scopes, got %d %s", pg.status, pg.body)
	}
	pg = b.approve(pg)
	u, _ := url.Parse(pg.location)
	resp, m = e.redeem(c, u.Query().Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 || m["scope"] != "mcp:admin mcp:tools" {
		t.Fatalf("stepped-up token: %d %v", resp.StatusCode, m)
	}

	// Approved once, the wider scope needs no new consent; an unoffered one is refused.
	p = newPKCE()
	if q := e.getCode(b, c, p, "bob", "", url.Values{"scope": {"mcp:admin"}}); q.Get("code") == "" {
		t.Errorf("approved scope asked again: %v", q)
	}
	pg = b.get(authorizeURL(e, c, newPKCE(), url.Values{"scope": {"mcp:admin root"}}))
	if u, _ := url.Parse(pg.location); pg.status != http.StatusFound || u.Query().Get("error") != "invalid_scope" {
		t.Errorf("unoffered scope: %d %s", pg.status, pg.location)
	}
}
