package mcpauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

const (
	chNoToken = `Bearer resource_metadata="` + testPRMURL + `", scope="mcp:tools"`
	chInvalid = chNoToken + `, error="invalid_token"`
	chScope   = chNoToken + `, error="insufficient_scope"`
	chBadReq  = chNoToken + `, error="invalid_request"`
)

// TestSecurityGatewayCases covers every gateway case (1-18) of
// shared/SECURITY.md: status, exact challenge, whether the backend was
// called, and (case 18) that nothing leaks.
func TestSecurityGatewayCases(t *testing.T) {
	type tc struct {
		name      string
		req       func(env *testEnv) (*http.Request, string) // request and the bearer value used (for leak checks)
		mutate    func(h *Handler, env *testEnv)
		status    int
		challenge string // exact WWW-Authenticate; "" = must be absent
		backend   bool
		check     func(t *testing.T, env *testEnv, w *httptest.ResponseRecorder)
	}
	hdrWith := func(env *testEnv, extra map[string]any) map[string]any {
		h := env.header()
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	claimsWith := func(env *testEnv, sub string, extra map[string]any) map[string]any {
		c := env.claims(sub)
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	withClaims := func(extra map[string]any) func(env *testEnv) (*http.Request, string) {
		return func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", extra))
			return bearerRequest("POST", "/mcp", tok), tok
		}
	}
	withHeader := func(extra map[string]any) func(env *testEnv) (*http.Request, string) {
		return func(env *testEnv) (*http.Request, string) {
			tok := signJWT(env.t, hdrWith(env, extra), env.claims("github:1"), jwt.SigningMethodRS256, env.issuer.key)
			return bearerRequest("POST", "/mcp", tok), tok
		}
	}
	leeway := 30 * time.Second

	cases := []tc{
		{name: "01 no Authorization", status: 401, challenge: chNoToken,
			req: func(env *testEnv) (*http.Request, string) { return httptest.NewRequest("POST", "/mcp", nil), "" }},
		{name: "01 other scheme (Basic) counts as no bearer", status: 401, challenge: chNoToken,
			req: func(env *testEnv) (*http.Request, string) {
				r := httptest.NewRequest("POST", "/mcp", nil)
				r.SetBasicAuth("u", "p")
				return r, ""
			}},
		{name: "02 token only in query", status: 401, challenge: chNoToken,
			req: func(env *testEnv) (*http.Request, string) {
				tok := env.validToken("github:1")
				return httptest.NewRequest("POST", "/mcp?access_token="+tok, nil), tok
			}},
		{name: "02 token only in form body", status: 401, challenge: chNoToken,
			req: func(env *testEnv) (*http.Request, string) {
				tok := env.validToken("github:1")
				r := httptest.NewRequest("POST", "/mcp", strings.NewReader(url.Values{"access_token": {tok}}.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r, tok
			}},
		{name: "03 alg none without signature", status: 401, challenge: chInvalid,
			req: func(env *testEnv) (*http.Request, string) {
				tok := b64json(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64json(env.claims("github:1")) + "."
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "03 alg none with a signature segment", status: 401, challenge: chInvalid,
			req: func(env *testEnv) (*http.Request, string) {
				tok := b64json(map[string]any{"alg": "none"}) + "." + b64json(env.claims("github:1")) + ".c2ln"
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "03 alg NONE upper case", status: 401, challenge: chInvalid,
			req: func(env *testEnv) (*http.Request, string) {
				tok := b64json(map[string]any{"alg": "NONE"}) + "." + b64json(env.claims("github:1")) + "."
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "04 HS256 key confusion with the issuer's public key", status: 401, challenge: chInvalid,
			req: func(env *testEnv) (*http.Request, string) {
				tok := signJWT(env.t, hdrWith(env, map[string]any{"alg": "HS256"}), env.claims("github:1"), jwt.SigningMethodHS256, publicKeyPEM(&env.issuer.key.PublicKey))
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "04 RS384 outside the allowlist", status: 401, challenge: chInvalid,
			req: func(env *testEnv) (*http.Request, string) {
				tok := signJWT(env.t, hdrWith(env, map[string]any{"alg": "RS384"}), env.claims("github:1"), jwt.SigningMethodRS384, env.issuer.key)
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "04 ES256 by a foreign key", status: 401, challenge: chInvalid,
			req: func(env *testEnv) (*http.Request, string) {
				ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				tok := signJWT(env.t, hdrWith(env, map[string]any{"alg": "ES256"}), env.claims("github:1"), jwt.SigningMethodES256, ek)
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "06 kid is a path", status: 401, challenge: chInvalid, req: withHeader(map[string]any{"kid": "../../../../etc/passwd"})},
		{name: "06 kid is SQL", status: 401, challenge: chInvalid, req: withHeader(map[string]any{"kid": "' OR 1=1 --"})},
		{name: "06 kid is 10 KB", status: 401, challenge: chInvalid, req: withHeader(map[string]any{"kid": strings.Repeat("k", 10<<10)}),
			mutate: func(h *Handler, _ *testEnv) { h.MaxTokenSize = 64 << 10 }},
		{name: "09 unknown crit extension", status: 401, challenge: chInvalid, req: withHeader(map[string]any{"crit": []string{"urn:example:unknown"}, "urn:example:unknown": true})},
		{name: "10 expired", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"exp": env.clock.Now().Add(-leeway - time.Second).Unix()}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "R3 exp + leeway - 1s accepted", status: 200, backend: true, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"exp": env.clock.Now().Add(-leeway + time.Second).Unix()}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "10 exp 0", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"exp": 0})},
		{name: "10 exp as a string", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"exp": "9999999999"}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "10 exp missing", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"exp": nil})},
		{name: "11 nbf just past the leeway", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"nbf": env.clock.Now().Add(leeway + 2*time.Second).Unix()}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "11 nbf just inside the leeway", status: 200, backend: true, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"nbf": env.clock.Now().Add(leeway - 2*time.Second).Unix()}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "11 iat just past the leeway", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"iat": env.clock.Now().Add(leeway + 2*time.Second).Unix()}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "11 iat just inside the leeway", status: 200, backend: true, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"iat": env.clock.Now().Add(leeway - 2*time.Second).Unix()}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "12 wrong iss", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"iss": "https://evil.example.com"})},
		{name: "12 iss with trailing slash", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			tok := env.token(claimsWith(env, "github:1", map[string]any{"iss": env.issuer.URL() + "/"}))
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "13 aud missing", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"aud": nil})},
		{name: "13 aud foreign", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"aud": "https://other.example.com/mcp"})},
		{name: "13 aud numeric", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"aud": 42})},
		{name: "13 aud empty array", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"aud": []string{}})},
		{name: "13 aud array containing the resource", status: 200, backend: true, req: withClaims(map[string]any{"aud": []string{"https://other.example.com", testResource}})},
		{name: "13 aud differs only by trailing slash and host case", status: 200, backend: true, req: withClaims(map[string]any{"aud": "HTTPS://MCP.Example.COM/mcp/"})},
		{name: "14 ID token (aud = client id, typ ID)", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"aud": "client-1", "typ": "ID", "nonce": "n"})},
		{name: "14 ID token with header typ JWT", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			tok := signJWT(env.t, hdrWith(env, map[string]any{"typ": "JWT"}), claimsWith(env, "github:1", map[string]any{"aud": "client-1", "typ": "ID"}), jwt.SigningMethodRS256, env.issuer.key)
			return bearerRequest("POST", "/mcp", tok), tok
		}},
		{name: "14 typ claim ID even with our audience", status: 401, challenge: chInvalid, req: withClaims(map[string]any{"typ": "ID"})},
		{name: "scope missing -> 403 insufficient_scope", status: 403, challenge: chScope, req: withClaims(map[string]any{"scope": "github:repo"})},
		{name: "malformed bearer value", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			r := httptest.NewRequest("POST", "/mcp", nil)
			r.Header.Set("Authorization", "Bearer a b")
			return r, ""
		}},
		{name: "empty bearer value", status: 401, challenge: chInvalid, req: func(env *testEnv) (*http.Request, string) {
			r := httptest.NewRequest("POST", "/mcp", nil)
			r.Header.Set("Authorization", "Bearer")
			return r, ""
		}},
		{name: "15 second Authorization header", status: 400, challenge: chBadReq, req: func(env *testEnv) (*http.Request, string) {
			tok := env.validToken("github:1")
			r := bearerRequest("POST", "/mcp", tok)
			r.Header.Add("Authorization", "Bearer "+env.validToken("github:2"))
			return r, tok
		}},
		{name: "15 client copies of the upstream header are replaced", status: 200, backend: true,
			req: func(env *testEnv) (*http.Request, string) {
				tok := env.validToken("github:7")
				r := bearerRequest("POST", "/mcp", tok)
				r.Header.Set("X-GitHub-Token", "gho_attacker")
				r.Header["X_GitHub_Token"] = []string{"gho_attacker2"}
				r.Header["x-github-token"] = []string{"gho_attacker3"}
				return r, tok
			},
			check: func(t *testing.T, env *testEnv, w *httptest.ResponseRecorder) {
				got := env.backend.Last()
				if v := got.Values("X-Github-Token"); len(v) != 1 || v[0] != "gho_7" {
					t.Errorf("backend X-GitHub-Token = %q, want only [gho_7]", v)
				}
				for k, v := range got {
					if strings.Contains(strings.Join(v, ","), "attacker") {
						t.Errorf("client copy %s=%q reached the backend", k, v)
					}
				}
				if got.Get("Authorization") != "" {
					t.Error("client Authorization header reached the backend")
				}
			}},
		{name: "16 no upstream token -> 403 naming what to link", status: 403,
			req: func(env *testEnv) (*http.Request, string) {
				env.exchange.setUnlinked("github:9")
				tok := env.validToken("github:9")
				return bearerRequest("POST", "/mcp", tok), tok
			},
			check: func(t *testing.T, env *testEnv, w *httptest.ResponseRecorder) {
				var body errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
					t.Fatalf("body %q: %v", w.Body.String(), err)
				}
				want := env.issuer.URL() + "/account"
				if body.Error != "upstream_account_not_linked" || body.LinkURL != want || !strings.Contains(body.ErrorDescription, "GitHub") {
					t.Errorf("body = %+v, want upstream_account_not_linked naming GitHub and %s", body, want)
				}
			}},
		{name: "16 no upstream token with pass -> forwarded without header", status: 200, backend: true,
			mutate: func(h *Handler, _ *testEnv) { h.OnMissingUpstream = OnMissingUpstreamPass },
			req: func(env *testEnv) (*http.Request, string) {
				env.exchange.setUnlinked("github:9")
				tok := env.validToken("github:9")
				r := bearerRequest("POST", "/mcp", tok)
				r.Header.Set("X-GitHub-Token", "gho_attacker")
				return r, tok
			},
			check: func(t *testing.T, env *testEnv, w *httptest.ResponseRecorder) {
				if v := env.backend.Last().Values("X-Github-Token"); len(v) != 0 {
					t.Errorf("backend got X-GitHub-Token %q, want none", v)
				}
			}},
		{name: "17 token source down -> 503 Retry-After", status: 503,
			req: func(env *testEnv) (*http.Request, string) {
				env.exchange.down.Store(true)
				tok := env.validToken("github:1")
				return bearerRequest("POST", "/mcp", tok), tok
			},
			check: func(t *testing.T, env *testEnv, w *httptest.ResponseRecorder) {
				if w.Header().Get("Retry-After") != "5" {
					t.Errorf("Retry-After = %q, want 5", w.Header().Get("Retry-After"))
				}
			}},
		{name: "17 token source slow -> 503 within the timeout", status: 503,
			req: func(env *testEnv) (*http.Request, string) {
				env.exchange.delay.Store(int64(3 * time.Second))
				tok := env.validToken("github:1")
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "subject token revoked at the IdP -> 401 invalid_token", status: 401, challenge: chInvalid,
			req: func(env *testEnv) (*http.Request, string) {
				tok := env.validToken("revoked")
				return bearerRequest("POST", "/mcp", tok), tok
			}},
		{name: "valid token", status: 200, backend: true,
			req: func(env *testEnv) (*http.Request, string) {
				tok := env.validToken("github:1")
				return bearerRequest("POST", "/mcp", tok), tok
			},
			check: func(t *testing.T, env *testEnv, w *httptest.ResponseRecorder) {
				got := env.backend.Last()
				if got.Get("X-GitHub-Token") != "gho_1" || got.Get("Authorization") != "" {
					t.Errorf("backend headers: X-GitHub-Token=%q Authorization=%q", got.Get("X-GitHub-Token"), got.Get("Authorization"))
				}
			}},
		{name: "bearer scheme is case-insensitive", status: 200, backend: true,
			req: func(env *testEnv) (*http.Request, string) {
				tok := env.validToken("github:1")
				r := httptest.NewRequest("GET", "/mcp", nil)
				r.Header.Set("Authorization", "bEaReR "+tok)
				return r, tok
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newTestEnv(t, c.mutate)
			r, tok := c.req(env)
			start := time.Now()
			w := env.do(r)
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("took %v, want a bounded answer", elapsed)
			}
			if w.Code != c.status {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, c.status, w.Body.String())
			}
			if got := w.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate = %q\n want %q", got, c.challenge)
			}
			if called := env.backend.Calls() > 0; called != c.backend {
				t.Errorf("backend called = %v, want %v", called, c.backend)
			}
			if !c.backend {
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var body errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
					t.Errorf("body %q is not a short JSON error: %v", w.Body.String(), err)
				}
				if w.Header().Get("Access-Control-Expose-Headers") == "" {
					t.Error("rejection does not expose WWW-Authenticate to browsers")
				}
			}
			// Client-caused rejections log at most at debug; faults at error.
			for _, e := range env.logs.All() {
				if c.status < 500 && e.Level > zapcore.DebugLevel {
					t.Errorf("client-caused %d logged at %v: %s", c.status, e.Level, e.Message)
				}
			}
			if c.status >= 500 && env.logs.FilterLevelExact(zapcore.ErrorLevel).Len() == 0 {
				t.Errorf("fault %d not logged at error", c.status)
			}
			// 18: nothing leaks: the client's token, the gateway secret,
			// or another user's upstream token.
			assertNoLeak(t, w, env.logs, tok, "s3cret-gateway", "gho_attacker")
			if c.check != nil {
				c.check(t, env, w)
			}
		})
	}
}

// TestSecurityJKUNeverFetched is case 5: jku, x5u, jwk and x5c headers
// pointing elsewhere never cause an outbound request and never supply a key.
func TestSecurityJKUNeverFetched(t *testing.T) {
	var hits int
	var mu sync.Mutex
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer trap.Close()
	env := newTestEnv(t, nil)
	_, attacker := testRSAKeys(t)
	for _, hdr := range []map[string]any{
		{"jku": trap.URL + "/jwks"},
		{"x5u": trap.URL + "/cert.pem"},
		{"jwk": rsaJWK(testKid, &attacker.PublicKey)},
		{"x5c": []string{"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}},
		{"jku": trap.URL + "/jwks", "kid": "attacker-kid"},
	} {
		h := env.header()
		for k, v := range hdr {
			h[k] = v
		}
		tok := signJWT(t, h, env.claims("github:1"), jwt.SigningMethodRS256, attacker)
		w := env.do(bearerRequest("POST", "/mcp", tok))
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != chInvalid {
			t.Errorf("%v: status %d challenge %q, want 401 invalid_token", hdr, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// The same headers on a token signed by the issuer: verified against
	// the issuer's JWKS only.
	h := env.header()
	h["jku"] = trap.URL + "/jwks"
	if w := env.do(bearerRequest("POST", "/mcp", signJWT(t, h, env.claims("github:1"), jwt.SigningMethodRS256, env.issuer.key))); w.Code != 200 {
		t.Errorf("issuer-signed token with jku: status %d, want 200", w.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 || env.backend.Calls() != 1 {
		t.Errorf("trap server hit %d times, backend %d calls; want 0 and 1", hits, env.backend.Calls())
	}
}

// TestSecurityKidFlood is case 7: random unknown kids are all 401 and cause
// at most one JWKS refetch per cooldown window.
func TestSecurityKidFlood(t *testing.T) {
	env := newTestEnv(t, nil)
	// Warm up: one valid request fetches the JWKS.
	if w := env.do(bearerRequest("POST", "/mcp", env.validToken("github:1"))); w.Code != 200 {
		t.Fatalf("warm-up status %d", w.Code)
	}
	before := env.issuer.jwksFetches.Load()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := env.header()
			h["kid"] = "random-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Now().String()
			w := env.do(bearerRequest("POST", "/mcp", signJWT(t, h, env.claims("github:1"), jwt.SigningMethodRS256, env.issuer.key)))
			if w.Code != 401 {
				mu.Lock()
				bad++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if bad != 0 {
		t.Errorf("%d unknown-kid requests were not 401", bad)
	}
	if extra := env.issuer.jwksFetches.Load() - before; extra > 1 {
		t.Errorf("kid flood caused %d JWKS fetches, want at most 1 per cooldown", extra)
	}
	if env.backend.Calls() != 1 {
		t.Errorf("backend calls = %d, want 1 (warm-up only)", env.backend.Calls())
	}
}

// TestR1JWKSOutage: with keys cached, a JWKS outage (the JWKS hangs) does
// not affect tokens with a known kid; an unknown kid past the refetch
// cooldown triggers exactly one fetch, which times out, and is refused
// within the fetch timeout; a second unknown kid within the cooldown does
// not fetch again. The handler's clock drives the key set's cooldown.
func TestR1JWKSOutage(t *testing.T) {
	const fetchTimeout = 300 * time.Millisecond
	env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.JWKSFetchTimeout = caddy.Duration(fetchTimeout) })
	if w := env.do(bearerRequest("POST", "/mcp", env.validToken("github:1"))); w.Code != 200 {
		t.Fatalf("warm-up %d", w.Code)
	}
	env.issuer.jwksDelay.Store(int64(time.Minute)) // hang until the fetch gives up
	env.issuer.jwksDown.Store(true)
	env.clock.Advance(jwtverify.DefaultRefetchCooldown + time.Second) // past the cooldown since the warm-up fetch
	for i := 0; i < 20; i++ {
		// Distinct tokens: each needs a signature check with the cached key.
		c := env.claims("github:1")
		c["jti"] = fmt.Sprintf("outage-%d", i)
		start := time.Now()
		if w := env.do(bearerRequest("POST", "/mcp", env.token(c))); w.Code != 200 {
			t.Fatalf("known kid during outage: %d", w.Code)
		}
		if d := time.Since(start); d > fetchTimeout/2 {
			t.Fatalf("known kid waited %v", d)
		}
	}
	before := env.issuer.jwksFetches.Load()
	for i, want := range []int64{1, 0} {
		h := env.header()
		h["kid"] = fmt.Sprintf("rotated-away-%d", i)
		start := time.Now()
		w := env.do(bearerRequest("POST", "/mcp", signJWT(t, h, env.claims("github:1"), jwt.SigningMethodRS256, env.issuer.key)))
		d := time.Since(start)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != chInvalid {
			t.Errorf("unknown kid %d during outage: %d %q", i, w.Code, w.Header().Get("WWW-Authenticate"))
		}
		if d > fetchTimeout+700*time.Millisecond {
			t.Errorf("unknown kid %d took %v, want within the %v fetch timeout", i, d, fetchTimeout)
		}
		if got := env.issuer.jwksFetches.Load() - before; got != want {
			t.Errorf("unknown kid %d: %d JWKS fetches, want %d", i, got, want)
		}
		before = env.issuer.jwksFetches.Load()
	}
}

// TestSecurityHugeBearer is case 8: a 1 MB bearer is rejected quickly.
func TestSecurityHugeBearer(t *testing.T) {
	env := newTestEnv(t, nil)
	huge := strings.Repeat("A", 1<<20)
	start := time.Now()
	w := env.do(bearerRequest("POST", "/mcp", huge))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != chInvalid {
		t.Fatalf("status %d challenge %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("1 MB bearer took %v to reject", d)
	}
	if env.backend.Calls() != 0 {
		t.Error("backend called")
	}
	allocs := testing.AllocsPerRun(20, func() {
		r := bearerRequest("POST", "/mcp", huge)
		r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
		_ = env.h.ServeHTTP(httptest.NewRecorder(), r, env.backend)
	})
	if allocs > 200 {
		t.Errorf("rejecting a 1 MB bearer allocates %v times per request", allocs)
	}
}

// TestNoOtherUsersToken is case 16's "never another user's token": two
// users get their own upstream tokens, cached per user.
func TestNoOtherUsersToken(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, sub := range []string{"github:1", "github:2", "github:1", "github:2"} {
		w := env.do(bearerRequest("POST", "/mcp", env.validToken(sub)))
		if w.Code != 200 {
			t.Fatalf("%s: status %d", sub, w.Code)
		}
		if got, want := env.backend.Last().Get("X-GitHub-Token"), "gho_"+strings.TrimPrefix(sub, "github:"); got != want {
			t.Errorf("%s: backend token %q, want %q", sub, got, want)
		}
	}
	if n := env.exchange.calls.Load(); n != 2 {
		t.Errorf("exchanges = %d, want 2 (one per user, then cached)", n)
	}
}

// TestNoSourceNoEnvToken: without an upstream_token source, no upstream
// header is ever set (never an environment token unless configured).
func TestNoSourceNoEnvToken(t *testing.T) {
	t.Setenv("GITHUB_ACCESS_TOKEN", "gho_from_env")
	env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.UpstreamRaw = nil })
	r := bearerRequest("POST", "/mcp", env.validToken("github:1"))
	r.Header.Set("X-GitHub-Token", "gho_attacker")
	if w := env.do(r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if v := env.backend.Last().Values("X-Github-Token"); len(v) != 0 {
		t.Errorf("backend got X-GitHub-Token %q, want none", v)
	}
}

// TestR4SourceDownRecovers: with the source down, requests fail fast with
// 503 + Retry-After and never reach the backend; when it comes back, the
// same token works without re-login or restart.
func TestR4SourceDownRecovers(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := env.validToken("github:1")
	env.exchange.down.Store(true)
	for i := 0; i < 3; i++ {
		start := time.Now()
		w := env.do(bearerRequest("POST", "/mcp", tok))
		if w.Code != 503 || w.Header().Get("Retry-After") == "" {
			t.Fatalf("down: status %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("503 took %v", d)
		}
	}
	if env.backend.Calls() != 0 {
		t.Fatal("backend called while the source was down")
	}
	env.exchange.down.Store(false)
	w := env.do(bearerRequest("POST", "/mcp", tok))
	if w.Code != 200 || env.backend.Last().Get("X-GitHub-Token") != "gho_1" {
		t.Fatalf("after recovery: status %d", w.Code)
	}
}

// TestR4ConcurrentRefreshOneExchange: 50 concurrent requests of one user
// whose cached upstream token has expired cause exactly one exchange.
func TestR4ConcurrentRefreshOneExchange(t *testing.T) {
	env := newTestEnv(t, nil)
	env.exchange.expires.Store(60)
	if w := env.do(bearerRequest("POST", "/mcp", env.validToken("github:1"))); w.Code != 200 {
		t.Fatalf("first status %d", w.Code)
	}
	if n := env.exchange.calls.Load(); n != 1 {
		t.Fatalf("exchanges after first request = %d", n)
	}
	env.clock.Advance(2 * time.Minute) // past the upstream token's expiry
	tok := env.validToken("github:1")
	env.exchange.delay.Store(int64(100 * time.Millisecond))
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = env.do(bearerRequest("POST", "/mcp", tok)).Code
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if n := env.exchange.calls.Load(); n != 2 {
		t.Errorf("exchanges = %d, want 2 (one initial, one shared refresh)", n)
	}
}

// TestRelativeResourceRejected: a path-only or omitted resource is refused
// at configuration time. Deriving the audience from the request's Host
// header let a token minted for another resource server through when the
// client sent that server's name as Host (RFC 8707 audience confusion), and
// each junk Host added a cached verifier.
func TestRelativeResourceRejected(t *testing.T) {
	issuer := []IssuerConfig{{Issuer: "https://auth.example.com"}}
	for _, c := range []struct{ name, resource string }{
		{"path only", "/mcp"},
		{"root path", "/"},
		{"omitted", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			h := Handler{Resource: c.resource, Issuers: issuer}
			err := h.Provision(ctx)
			if err == nil {
				err = h.Validate()
			}
			_ = h.Cleanup()
			if err == nil || !strings.Contains(err.Error(), "must be an absolute URL") || !strings.Contains(err.Error(), "Host header") {
				t.Errorf("err = %v, want the absolute-URL error naming the Host header", err)
			}
		})
	}
}

// TestForeignAudienceViaHost: with the (required) absolute resource, a token
// for another resource server is refused whatever Host the client sends.
func TestForeignAudienceViaHost(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.claims("alice")
	c["aud"] = "https://other-rs.example/mcp"
	r := bearerRequest("POST", "https://other-rs.example/mcp", env.token(c))
	r.Host = "other-rs.example"
	if w := env.do(r); w.Code != 401 || env.backend.Calls() != 0 {
		t.Errorf("status %d, backend calls %d; want 401 and no call", w.Code, env.backend.Calls())
	}
}

// TestProvisionValidateErrors: bad configuration fails with a clear error.
func TestProvisionValidateErrors(t *testing.T) {
	issuer := []IssuerConfig{{Issuer: "https://auth.example.com"}}
	for _, c := range []struct {
		name string
		h    Handler
		want string
	}{
		{"no issuer", Handler{Resource: testResource}, "at least one issuer"},
		{"relative issuer", Handler{Resource: testResource, Issuers: []IssuerConfig{{Issuer: "auth.example.com"}}}, "issuer"},
		{"bad resource", Handler{Resource: "mcp.example.com/mcp", Issuers: issuer}, "resource"},
		{"resource with fragment", Handler{Resource: "https://mcp.example.com/mcp#x", Issuers: issuer}, "resource"},
		{"bad on_missing", Handler{Resource: testResource, Issuers: issuer, OnMissingUpstream: "maybe"}, "on_missing_upstream"},
		{"bad header", Handler{Resource: testResource, Issuers: issuer, UpstreamHeader: "X Bad"}, "upstream_header"},
		{"auth header conflict", Handler{Resource: testResource, Issuers: issuer, UpstreamHeader: "authorization", KeepAuthorization: true}, "keep_authorization"},
		{"bad algorithm", Handler{Resource: testResource, Issuers: issuer, Algorithms: []string{"HS256"}}, "HS256"},
		{"duplicate issuer", Handler{Resource: testResource, Issuers: append(issuer, issuer...)}, "twice"},
		{"secret missing", Handler{Resource: testResource, Issuers: issuer, UpstreamRaw: json.RawMessage(`{"source":"token_exchange","token_endpoint":"https://auth.example.com/token","client_secret":"{env.MCPGATE_TEST_UNSET_SECRET}"}`)}, "client_secret is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			h := c.h
			err := h.Provision(ctx)
			if err == nil {
				err = h.Validate()
			}
			_ = h.Cleanup()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want containing %q", err, c.want)
			}
		})
	}
}

// TestDefaults: Provision fills the documented defaults.
func TestDefaults(t *testing.T) {
	env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.UpstreamHeader = "" })
	h := env.h
	if h.UpstreamHeader != "Authorization" || h.OnMissingUpstream != "deny" || h.KeepAuthorization ||
		time.Duration(h.Leeway) != 30*time.Second || h.MaxTokenSize != 8192 ||
		len(h.AuthorizationServers) != 1 || h.AuthorizationServers[0] != env.issuer.URL() ||
		h.LinkURL != env.issuer.URL()+"/account" || h.retryAfter != "5" {
		t.Errorf("defaults not applied: %+v", h)
	}
}

// TestDefaultUpstreamHeader: by default the backend gets the user's upstream token as
// "Authorization: Bearer <token>" (which Caddy's logs redact), never the client's bearer token,
// and never a client's own X-GitHub-Token, the header mcpbackend also reads.
func TestDefaultUpstreamHeader(t *testing.T) {
	env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.UpstreamHeader = "" })
	r := bearerRequest("POST", "/mcp", env.validToken("github:7"))
	r.Header.Add("X-GitHub-Token", "gho_attacker")
	r.Header.Add("X_GitHub_Token", "gho_attacker")
	if w := env.do(r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := env.backend.Last()
	if v := got.Values("Authorization"); len(v) != 1 || v[0] != "Bearer gho_7" {
		t.Errorf("backend Authorization = %q, want only the gateway's Bearer gho_7", v)
	}
	for k := range got {
		if sameHeaderName(k, "X-GitHub-Token") {
			t.Errorf("the client's %s reached the backend", k)
		}
	}
}

// TestCleanupReleasesKeySets: the pooled key set goes away with its last user.
func TestCleanupReleasesKeySets(t *testing.T) {
	env := newTestEnv(t, nil)
	key := env.h.poolKeys[0]
	if n, ok := keySets.References(key); !ok || n != 1 {
		t.Fatalf("references = %d %v", n, ok)
	}
	_ = env.h.Cleanup()
	if _, ok := keySets.References(key); ok {
		t.Error("key set still pooled after the last Cleanup")
	}
	_ = context.Background
}

// TestTokenWithoutSubRejected: RFC 9068 §2.2 requires sub; a token without
// one (or with an empty one) is invalid and never reaches the token source
// or the backend.
func TestTokenWithoutSubRejected(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"sub missing", func(c map[string]any) { delete(c, "sub") }},
		{"sub empty", func(c map[string]any) { c["sub"] = "" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			cl := env.claims("x")
			c.edit(cl)
			w := env.do(bearerRequest("POST", "/mcp", env.token(cl)))
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") != chInvalid || env.backend.Calls() != 0 || env.exchange.calls.Load() != 0 {
				t.Errorf("status %d, challenge %q, backend %d, exchange %d; want 401 invalid_token, no calls",
					w.Code, w.Header().Get("WWW-Authenticate"), env.backend.Calls(), env.exchange.calls.Load())
			}
		})
	}
}

// TestWarnDebugLeak: mcp_auth warns once when debug logging would write the
// upstream token (reverse_proxy redacts only Authorization and Cookie), and
// not otherwise.
func TestWarnDebugLeak(t *testing.T) {
	for _, c := range []struct {
		name   string
		header string
		level  zapcore.Level
		source bool
		warn   bool
	}{
		{"debug, X-GitHub-Token", "X-GitHub-Token", zapcore.DebugLevel, true, true},
		{"debug, custom header", "X-Upstream", zapcore.DebugLevel, true, true},
		{"debug, Authorization", "Authorization", zapcore.DebugLevel, true, false},
		{"debug, authorization lower case", "authorization", zapcore.DebugLevel, true, false},
		{"info, X-GitHub-Token", "X-GitHub-Token", zapcore.InfoLevel, true, false},
		{"debug, no token source", "X-GitHub-Token", zapcore.DebugLevel, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(c.level)
			h := &Handler{UpstreamHeader: c.header, logger: zap.New(core)}
			if c.source {
				h.UpstreamRaw = json.RawMessage(`{"source":"static","token":"x"}`)
			}
			h.upstreamKey = http.CanonicalHeaderKey(c.header)
			h.warnDebugLeak()
			got := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("upstream tokens will be written to the log").Len()
			if want := map[bool]int{true: 1, false: 0}[c.warn]; got != want {
				t.Errorf("%d warnings, want %d", got, want)
			}
		})
	}
}
