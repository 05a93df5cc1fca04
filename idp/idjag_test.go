package idp

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeEnterpriseIdP publishes a JWKS and mints ID-JAGs with its key (or a key it does not
// publish).
type fakeEnterpriseIdP struct {
	ts       *httptest.Server
	key      *rsa.PrivateKey
	otherKey *rsa.PrivateKey
	fetches  atomic.Int64 // JWKS requests
	rotated  atomic.Bool  // publish otherKey too, as "e2"
}

func newFakeEnterpriseIdP(t *testing.T) *fakeEnterpriseIdP {
	t.Helper()
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	o, _ := rsa.GenerateKey(rand.Reader, 2048)
	f := &fakeEnterpriseIdP{key: k, otherKey: o}
	f.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		f.fetches.Add(1)
		pub := func(kid string, k *rsa.PrivateKey) map[string]any {
			return map[string]any{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			}
		}
		keys := []any{pub("e1", k)}
		if f.rotated.Load() {
			keys = append(keys, pub("e2", o))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(f.ts.Close)
	return f
}

// mint signs claims as an ID-JAG; hdr entries override the header (typ, kid), key nil means
// the published key.
func (f *fakeEnterpriseIdP) mint(t *testing.T, claims jwt.MapClaims, hdr map[string]any, key *rsa.PrivateKey) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["typ"] = typIDJAG
	tok.Header["kid"] = "e1"
	for k, v := range hdr {
		tok.Header[k] = v
	}
	if key == nil {
		key = f.key
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const idjagResourceURL = "https://mcp.example.com/mcp"

func newIDJAGEnv(t *testing.T) (*testEnv, *fakeEnterpriseIdP, testClient) {
	f := newFakeEnterpriseIdP(t)
	e := newEnv(t, func(o *Options) {
		o.Scopes = []string{"mcp", "mcp:read", "mcp:write"}
		o.IDJAGTrusts = []IDJAGTrust{{Issuer: f.ts.URL, JWKSURL: f.ts.URL + "/jwks", ClientIDs: []string{"placeholder"}}}
	})
	c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	// The trusted client ids are known only once the client is registered.
	e.srv.opts.IDJAGTrusts[0].ClientIDs = []string{c.ID}
	return e, f, c
}

func (e *testEnv) idjagClaims(f *fakeEnterpriseIdP, clientID string) jwt.MapClaims {
	now := e.clock.Now()
	return jwt.MapClaims{
		"iss": f.ts.URL, "sub": "U0194", "aud": e.issuer, "client_id": clientID, "resource": idjagResourceURL,
		"scope": "mcp:read mcp:write", "jti": randomToken(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"email": "alice@corp.example",
	}
}

func (e *testEnv) presentIDJAG(c testClient, assertion string, extra url.Values) (*http.Response, map[string]any) {
	v := url.Values{"grant_type": {grantJWTBearer}, "assertion": {assertion}}
	for k, vals := range extra {
		v[k] = vals
	}
	if c.Secret == "" {
		v.Set("client_id", c.ID)
		return e.postForm("/token", v, "", "")
	}
	return e.postForm("/token", v, c.ID, c.Secret)
}

func TestIDJAGHappyPath(t *testing.T) {
	e, f, c := newIDJAGEnv(t)
	_, md := doJSON(t, mustReq(t, http.MethodGet, e.url("/.well-known/oauth-authorization-server")))
	if p, _ := md["authorization_grant_profiles_supported"].([]any); len(p) != 1 || p[0] != grantProfileIDJAG {
		t.Fatalf("metadata profiles: %v", md["authorization_grant_profiles_supported"])
	}
	if g, _ := md["grant_types_supported"].([]any); !containsAny(g, grantJWTBearer) {
		t.Fatalf("metadata grants: %v", g)
	}
	resp, m := e.presentIDJAG(c, f.mint(t, e.idjagClaims(f, c.ID), nil, nil), url.Values{"scope": {"mcp:read mcp"}})
	if resp.StatusCode != 200 {
		t.Fatalf("jwt-bearer: %d %v", resp.StatusCode, m)
	}
	if m["scope"] != "mcp:read" {
		t.Fatalf("scope: want the intersection mcp:read, got %v", m["scope"])
	}
	if _, has := m["refresh_token"]; has {
		t.Fatal("a refresh token was issued for an ID-JAG")
	}
	parts := strings.Split(m["access_token"].(string), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	if claims["aud"] != idjagResourceURL && !containsAny(asSlice(claims["aud"]), idjagResourceURL) {
		t.Fatalf("aud: %v", claims["aud"])
	}
	if claims["sub"] != oidcSubject(f.ts.URL, "U0194") || claims["client_id"] != c.ID {
		t.Fatalf("claims: %v", claims)
	}
	req := mustReq(t, http.MethodGet, e.url("/userinfo"))
	req.Header.Set("Authorization", "Bearer "+m["access_token"].(string))
	if resp, ui := doJSON(t, req); resp.StatusCode != 200 || ui["sub"] != claims["sub"] {
		t.Fatalf("userinfo: %d %v", resp.StatusCode, ui)
	}
	// Without a scope parameter the client gets the ID-JAG's scopes.
	_, m = e.presentIDJAG(c, f.mint(t, e.idjagClaims(f, c.ID), nil, nil), nil)
	if m["scope"] != "mcp:read mcp:write" {
		t.Fatalf("scope without request: %v", m["scope"])
	}
}

func TestIDJAGRefused(t *testing.T) {
	e, f, c := newIDJAGEnv(t)
	other := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"}) // a client the trust does not list
	stranger := newFakeEnterpriseIdP(t)
	type tc struct {
		name      string
		claims    func(jwt.MapClaims)
		hdr       map[string]any
		key       *rsa.PrivateKey
		presenter testClient
		extra     url.Values
		code      string
		desc      string // in error_description: refused for this reason, not another
	}
	cases := []tc{
		{name: "another resource", desc: "not served", claims: func(m jwt.MapClaims) { m["resource"] = "https://other.example.com/mcp" }, code: "invalid_grant"},
		{name: "no resource", desc: "no single resource", claims: func(m jwt.MapClaims) { delete(m, "resource") }, code: "invalid_grant"},
		{name: "resource parameter differs", desc: "does not match", extra: url.Values{"resource": {"https://other.example.com/mcp"}}, code: "invalid_grant"},
		{name: "untrusted issuer", desc: "not trusted", claims: func(m jwt.MapClaims) { m["iss"] = stranger.ts.URL }, key: stranger.key, code: "invalid_grant"},
		{name: "client_id of another client", desc: "another client", claims: func(m jwt.MapClaims) { m["client_id"] = other.ID }, code: "invalid_grant"},
		{name: "client not trusted", desc: "may not present", claims: func(m jwt.MapClaims) { m["client_id"] = other.ID }, presenter: other, code: "invalid_grant"},
		{name: "aud another server", desc: "aud", claims: func(m jwt.MapClaims) { m["aud"] = "https://as.other.example" }, code: "invalid_grant"},
		{name: "typ missing", desc: "typ", hdr: map[string]any{"typ": "JWT"}, code: "invalid_grant"},
		{name: "unknown key", desc: "signature", key: f.otherKey, hdr: map[string]any{"kid": "e2"}, code: "invalid_grant"},
		{name: "expired", desc: "lifetime", claims: func(m jwt.MapClaims) { m["exp"] = e.clock.Now().Add(-time.Minute).Unix() }, code: "invalid_grant"},
		{name: "too long", desc: "too long", claims: func(m jwt.MapClaims) { m["exp"] = e.clock.Now().Add(48 * time.Hour).Unix() }, code: "invalid_grant"},
		{name: "no jti", desc: "jti", claims: func(m jwt.MapClaims) { delete(m, "jti") }, code: "invalid_grant"},
		{name: "no iat", desc: "iat", claims: func(m jwt.MapClaims) { delete(m, "iat") }, code: "invalid_grant"},
		{name: "unknown scope", desc: "not served here", claims: func(m jwt.MapClaims) { m["scope"] = "admin" }, code: "invalid_grant"},
		{name: "requested scope not granted", desc: "none of the requested", extra: url.Values{"scope": {"mcp"}}, code: "invalid_scope"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			cl := e.idjagClaims(f, c.ID)
			if tt.claims != nil {
				tt.claims(cl)
			}
			p := c
			if tt.presenter.ID != "" {
				p = tt.presenter
			}
			resp, m := e.presentIDJAG(p, f.mint(t, cl, tt.hdr, tt.key), tt.extra)
			if resp.StatusCode != http.StatusBadRequest || m["error"] != tt.code {
				t.Fatalf("want 400 %s, got %d %v", tt.code, resp.StatusCode, m)
			}
			if d, _ := m["error_description"].(string); !strings.Contains(d, tt.desc) {
				t.Fatalf("refused for another reason: %q, want %q", d, tt.desc)
			}
		})
	}
	t.Run("alg none", func(t *testing.T) {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, e.idjagClaims(f, c.ID))
		tok.Header["typ"] = typIDJAG
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if resp, m := e.presentIDJAG(c, s, nil); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("alg none: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("replay", func(t *testing.T) {
		a := f.mint(t, e.idjagClaims(f, c.ID), nil, nil)
		if resp, m := e.presentIDJAG(c, a, nil); resp.StatusCode != 200 {
			t.Fatalf("first use: %d %v", resp.StatusCode, m)
		}
		if resp, m := e.presentIDJAG(c, a, nil); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("exchange client", func(t *testing.T) {
		v := url.Values{"grant_type": {grantJWTBearer}, "assertion": {f.mint(t, e.idjagClaims(f, "gateway"), nil, nil)}}
		if resp, m := e.postForm("/token", v, "gateway", "gateway-secret-0123456789"); resp.StatusCode != 400 || m["error"] != "unauthorized_client" {
			t.Fatalf("exchange client: %d %v", resp.StatusCode, m)
		}
	})
}

// An ID-JAG presented by a public client is refused, even one the trust lists: its client_id
// proves nothing.
func TestIDJAGPublicClientRefused(t *testing.T) {
	e, f, _ := newIDJAGEnv(t)
	pub := e.register(nil)
	e.srv.opts.IDJAGTrusts[0].ClientIDs = append(e.srv.opts.IDJAGTrusts[0].ClientIDs, pub.ID)
	resp, m := e.presentIDJAG(pub, f.mint(t, e.idjagClaims(f, pub.ID), nil, nil), nil)
	if resp.StatusCode != 400 || m["error"] != "unauthorized_client" {
		t.Fatalf("public client: %d %v, want unauthorized_client", resp.StatusCode, m)
	}
}

func TestIDJAGNotConfigured(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	resp, m := e.presentIDJAG(c, "a.b.c", nil)
	if resp.StatusCode != 400 || m["error"] != "unsupported_grant_type" {
		t.Fatalf("%d %v", resp.StatusCode, m)
	}
	_, md := doJSON(t, mustReq(t, http.MethodGet, e.url("/.well-known/oauth-authorization-server")))
	if _, has := md["authorization_grant_profiles_supported"]; has {
		t.Fatal("ID-JAG advertised without trusts")
	}
}

func TestIDJAGTrustOptions(t *testing.T) {
	for _, tr := range []IDJAGTrust{
		{Issuer: "https://idp.corp", JWKSURL: "https://idp.corp/keys"},
		{Issuer: "", JWKSURL: "https://idp.corp/keys", ClientIDs: []string{"c"}},
		{Issuer: "https://idp.corp", ClientIDs: []string{"c"}},
		{Issuer: "https://idp.corp", JWKSURL: "https://idp.corp/keys", ClientIDs: []string{"c"}, Algorithms: []string{"HS256"}},
		{Issuer: "https://idp.corp", JWKSURL: "https://idp.corp/keys", ClientIDs: []string{"c"}, Algorithms: []string{"none"}},
	} {
		o := Options{Issuer: "https://as.example", DevLogin: true, IDJAGTrusts: []IDJAGTrust{tr}}
		if err := o.setDefaults(); err == nil {
			t.Errorf("accepted %+v", tr)
		}
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func containsAny(s []any, want string) bool {
	for _, v := range s {
		if v == want {
			return true
		}
	}
	return false
}

// Assertions naming unknown kids cannot make us fetch the IdP's JWKS more than once per
// cooldown; known keys keep working meanwhile.
func TestIDJAGUnknownKidCooldown(t *testing.T) {
	e, f, c := newIDJAGEnv(t)
	if resp, m := e.presentIDJAG(c, f.mint(t, e.idjagClaims(f, c.ID), nil, nil), nil); resp.StatusCode != 200 {
		t.Fatalf("valid: %d %v", resp.StatusCode, m)
	}
	base := f.fetches.Load()
	for i := 0; i < 5; i++ {
		a := f.mint(t, e.idjagClaims(f, c.ID), map[string]any{"kid": "random-" + randomToken()}, f.otherKey)
		if resp, m := e.presentIDJAG(c, a, nil); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("unknown kid: %d %v", resp.StatusCode, m)
		}
	}
	if n := f.fetches.Load() - base; n > 1 {
		t.Fatalf("%d JWKS fetches for 5 unknown kids within the cooldown, want at most 1", n)
	}
	if resp, m := e.presentIDJAG(c, f.mint(t, e.idjagClaims(f, c.ID), nil, nil), nil); resp.StatusCode != 200 {
		t.Fatalf("known key during the cooldown: %d %v", resp.StatusCode, m)
	}
	before := f.fetches.Load()
	e.clock.Advance(jwksCooldown + time.Second)
	a := f.mint(t, e.idjagClaims(f, c.ID), map[string]any{"kid": "random-again"}, f.otherKey)
	e.presentIDJAG(c, a, nil)
	if f.fetches.Load() != before+1 {
		t.Fatalf("after the cooldown an unknown kid should fetch once: %d -> %d", before, f.fetches.Load())
	}
}

// Made-up kids from anyone but a client the trust lists (another registered client; an
// assertion for another audience or client; an expired one) never reach the key set, so they
// cannot hold back a real key rotation at the enterprise IdP.
func TestIDJAGCooldownNotHeldByOthers(t *testing.T) {
	e, f, c := newIDJAGEnv(t)
	if resp, m := e.presentIDJAG(c, f.mint(t, e.idjagClaims(f, c.ID), nil, nil), nil); resp.StatusCode != 200 {
		t.Fatalf("valid: %d %v", resp.StatusCode, m)
	}
	other := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	// Past the cooldown of the first fetch: the next unknown kid that reaches the key set may
	// fetch, and would close the door for jwksCooldown.
	e.clock.Advance(jwksCooldown + time.Second)
	base := f.fetches.Load()
	tests := []struct {
		name   string
		client testClient
		edit   func(jwt.MapClaims)
		want   string
	}{
		{"client the trust does not list", other, func(cl jwt.MapClaims) { cl["client_id"] = other.ID }, "may not present"},
		{"another audience", c, func(cl jwt.MapClaims) { cl["aud"] = "https://elsewhere.example" }, "aud"},
		{"two audiences", c, func(cl jwt.MapClaims) { cl["aud"] = []string{e.issuer, "https://elsewhere.example"} }, "aud"},
		{"another client", c, func(cl jwt.MapClaims) { cl["client_id"] = other.ID }, "another client"},
		{"expired", c, func(cl jwt.MapClaims) { cl["exp"] = e.clock.Now().Add(-time.Second).Unix() }, "lifetime"},
		{"no exp", c, func(cl jwt.MapClaims) { delete(cl, "exp") }, "lifetime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := e.idjagClaims(f, c.ID)
			tc.edit(cl)
			a := f.mint(t, cl, map[string]any{"kid": "made-up-" + randomToken()}, f.otherKey)
			resp, m := e.presentIDJAG(tc.client, a, nil)
			if desc, _ := m["error_description"].(string); resp.StatusCode != 400 || m["error"] != "invalid_grant" || !strings.Contains(desc, tc.want) {
				t.Fatalf("got %d %v, want invalid_grant mentioning %q", resp.StatusCode, m, tc.want)
			}
		})
	}
	if n := f.fetches.Load() - base; n != 0 {
		t.Fatalf("%d JWKS fetches for assertions that could not be good, want 0", n)
	}
	// The IdP rotates to a new key now: the listed client's first assertion under it verifies at
	// once, with no cooldown left over from the refusals above.
	f.rotated.Store(true)
	a := f.mint(t, e.idjagClaims(f, c.ID), map[string]any{"kid": "e2"}, f.otherKey)
	if resp, m := e.presentIDJAG(c, a, nil); resp.StatusCode != 200 {
		t.Fatalf("assertion under the rotated key: %d %v", resp.StatusCode, m)
	}
}

// An ID-JAG without scope, presented without a scope parameter, gets what an authorization
// request without scope gets: the client's registered scope, not every scope served here.
func TestIDJAGWithoutScopeGetsRegisteredScope(t *testing.T) {
	e, f, _ := newIDJAGEnv(t)
	c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic", "scope": "mcp:read"})
	e.srv.opts.IDJAGTrusts[0].ClientIDs = append(e.srv.opts.IDJAGTrusts[0].ClientIDs, c.ID)
	claims := e.idjagClaims(f, c.ID)
	delete(claims, "scope")
	resp, m := e.presentIDJAG(c, f.mint(t, claims, nil, nil), nil)
	if resp.StatusCode != 200 || m["scope"] != "mcp:read" {
		t.Fatalf("%d %v, want 200 with scope mcp:read", resp.StatusCode, m)
	}
}

// An upstream provider's sign-in policy holds for ID-JAGs of its issuer: a user outside its
// email domains gets no token this way either.
func TestIDJAGUpstreamPolicy(t *testing.T) {
	f := newFakeEnterpriseIdP(t)
	e := newEnv(t, func(o *Options) {
		o.Scopes = []string{"mcp", "mcp:read", "mcp:write"}
		o.IDJAGTrusts = []IDJAGTrust{{Issuer: f.ts.URL, JWKSURL: f.ts.URL + "/jwks", ClientIDs: []string{"placeholder"}}}
		o.Upstreams = []UpstreamOIDC{{Name: "corp", Issuer: f.ts.URL, ClientID: "mcpgate", AllowedEmailDomains: []string{"corp.example"}}}
	})
	c := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	e.srv.opts.IDJAGTrusts[0].ClientIDs = []string{c.ID}
	for _, tc := range []struct {
		email  string
		status int
	}{
		{"alice@corp.example", 200},
		{"mallory@evilcorp.example", 400},
	} {
		claims := e.idjagClaims(f, c.ID)
		claims["email"], claims["email_verified"] = tc.email, true
		resp, m := e.presentIDJAG(c, f.mint(t, claims, nil, nil), nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.email, resp.StatusCode, m, tc.status)
		}
	}
}
