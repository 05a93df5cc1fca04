package mcpauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Shared test fixtures: a fake issuer (RFC 8414 metadata + JWKS on httptest),
// a fake token-exchange endpoint, a recording backend, and a provisioned
// Handler with a captured logger.

var (
	rsaKeyOnce sync.Once
	rsaKeys    [2]*rsa.PrivateKey
)

// testRSAKeys returns two 2048-bit keys, generated once per test binary.
func testRSAKeys(t testing.TB) (issuerKey, attackerKey *rsa.PrivateKey) {
	rsaKeyOnce.Do(func() {
		for i := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[i] = k
		}
	})
	return rsaKeys[0], rsaKeys[1]
}

const testKid = "test-kid-1"

// fakeIssuer is an httptest authorization server publishing RFC 8414
// metadata and a JWKS with one RSA key.
type fakeIssuer struct {
	srv         *httptest.Server
	key         *rsa.PrivateKey
	jwksFetches atomic.Int64
	jwksDown    atomic.Bool
	jwksDelay   atomic.Int64 // ns the JWKS answer waits (or until the request ends)
}

func newFakeIssuer(t testing.TB) *fakeIssuer {
	key, _ := testRSAKeys(t)
	fi := &fakeIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":         fi.srv.URL,
			"jwks_uri":       fi.srv.URL + "/jwks",
			"token_endpoint": fi.srv.URL + "/token",
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		fi.jwksFetches.Add(1)
		if d := fi.jwksDelay.Load(); d > 0 {
			select {
			case <-time.After(time.Duration(d)):
			case <-r.Context().Done():
				return
			}
		}
		if fi.jwksDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{rsaJWK(testKid, &fi.key.PublicKey)}})
	})
	fi.srv = httptest.NewServer(mux)
	t.Cleanup(fi.srv.Close)
	return fi
}

func (fi *fakeIssuer) URL() string { return fi.srv.URL }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// b64json encodes v (or raw JSON bytes) as a base64url JWT segment.
func b64json(v any) string {
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		var err error
		b, err = json.Marshal(v)
		if err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signJWT builds a compact JWS with exactly the given header and payload
// (payload may be map or raw JSON) signed with method and key.
func signJWT(t testing.TB, header map[string]any, payload any, method jwt.SigningMethod, key any) string {
	t.Helper()
	signing := b64json(header) + "." + b64json(payload)
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

const (
	testResource = "https://mcp.example.com/mcp"
	testPRMURL   = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
)

// testEnv is a provisioned Handler with fakes around it.
type testEnv struct {
	t        testing.TB
	h        *Handler
	issuer   *fakeIssuer
	clock    *fakeClock
	logs     *observer.ObservedLogs
	backend  *recordingBackend
	cancel   context.CancelFunc
	ctx      caddy.Context
	exchange *fakeExchange
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recordingBackend is the "next" handler; it records what reached it.
type recordingBackend struct {
	mu      sync.Mutex
	calls   int
	headers []http.Header
}

func (b *recordingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	b.mu.Lock()
	b.calls++
	b.headers = append(b.headers, r.Header.Clone())
	b.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("backend ok"))
	return nil
}

func (b *recordingBackend) Calls() int { b.mu.Lock(); defer b.mu.Unlock(); return b.calls }
func (b *recordingBackend) Last() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.headers) == 0 {
		return nil
	}
	return b.headers[len(b.headers)-1]
}

// newTestEnv provisions a Handler for testResource trusting a fresh fake
// issuer, with a fake token exchange (per-user tokens) unless mutate changes
// it. mutate runs before Provision.
func newTestEnv(t testing.TB, mutate func(*Handler, *testEnv)) *testEnv {
	t.Helper()
	env := &testEnv{t: t, issuer: newFakeIssuer(t), backend: &recordingBackend{}}
	env.clock = &fakeClock{now: time.Now()}
	env.exchange = newFakeExchange(t, env.clock)
	h := &Handler{
		Resource:        testResource,
		Issuers:         []IssuerConfig{{Issuer: env.issuer.URL(), JWKSURI: env.issuer.URL() + "/jwks"}},
		ScopesSupported: []string{"mcp:tools", "github:repo"},
		RequiredScopes:  []string{"mcp:tools"},
		UpstreamRaw:     json.RawMessage(`{"source":"token_exchange","token_endpoint":"` + env.exchange.srv.URL + `/token","client_id":"gateway","client_secret":"s3cret-gateway","audience":"https://api.github.com","timeout":"500ms"}`),
		// Most tests look for the token apart from the client's Authorization
		// header; TestDefaults and TestDefaultUpstreamHeader use the default.
		UpstreamHeader: "X-GitHub-Token",
		now:            env.clock.Now,
	}
	if mutate != nil {
		mutate(h, env)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	env.cancel = cancel
	env.ctx = ctx
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	h.logger = zap.New(core)
	if h.policy != nil {
		h.audit = h.logger.Named("audit")
	}
	env.logs = logs
	env.h = h
	t.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return env
}

// claims returns valid RFC 9068 access token claims for sub.
func (env *testEnv) claims(sub string) map[string]any {
	now := env.clock.Now()
	return map[string]any{
		"iss": env.issuer.URL(), "sub": sub, "aud": testResource, "client_id": "client-1",
		"scope": "mcp:tools github:repo", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "jti-" + sub,
	}
}

func (env *testEnv) header() map[string]any {
	return map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": testKid}
}

// token signs claims with the issuer's key and standard header.
func (env *testEnv) token(claims map[string]any) string {
	return signJWT(env.t, env.header(), claims, jwt.SigningMethodRS256, env.issuer.key)
}

func (env *testEnv) validToken(sub string) string { return env.token(env.claims(sub)) }

// do sends r through the handler and returns the recorded response.
func (env *testEnv) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	if err := env.h.ServeHTTP(w, r, env.backend); err != nil {
		env.t.Fatalf("ServeHTTP returned error without handle_errors: %v", err)
	}
	return w
}

func bearerRequest(method, target, tok string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// fakeExchange is an RFC 8693 token endpoint per CONTRACTS.md section 2. It
// hands user "github:<n>" the token "gho_<n>"; users listed in unlinked get
// invalid_target; down makes it answer 503; delay slows it.
type fakeExchange struct {
	srv      *httptest.Server
	calls    atomic.Int64
	down     atomic.Bool
	delay    atomic.Int64 // nanoseconds
	expires  atomic.Int64 // expires_in seconds; 0 omits it
	mu       sync.Mutex
	unlinked map[string]bool
	lastForm map[string][]string
	lastAuth string
	clock    *fakeClock
}

func newFakeExchange(t testing.TB, clock *fakeClock) *fakeExchange {
	fx := &fakeExchange{unlinked: map[string]bool{}, clock: clock}
	fx.srv = httptest.NewServer(http.HandlerFunc(fx.serve))
	t.Cleanup(fx.srv.Close)
	return fx
}

func (fx *fakeExchange) serve(w http.ResponseWriter, r *http.Request) {
	fx.calls.Add(1)
	if d := fx.delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		}
	}
	if fx.down.Load() {
		http.Error(w, `{"error":"server_error"}`, http.StatusServiceUnavailable)
		return
	}
	_ = r.ParseForm()
	fx.mu.Lock()
	fx.lastForm = r.PostForm
	fx.lastAuth = r.Header.Get("Authorization")
	fx.mu.Unlock()
	id, secret, ok := r.BasicAuth()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok || id != "gateway" || secret != "s3cret-gateway" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	if r.PostForm.Get("grant_type") != grantTypeTokenExchange || r.PostForm.Get("subject_token_type") != tokenTypeAccessToken {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"unsupported_grant_type"}`))
		return
	}
	// The subject token is a JWT we minted: read its sub without checking
	// (the gateway already did).
	parts := strings.Split(r.PostForm.Get("subject_token"), ".")
	if len(parts) != 3 {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(payload, &c)
	fx.mu.Lock()
	unlinked := fx.unlinked[c.Sub]
	fx.mu.Unlock()
	if c.Sub == "revoked" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"subject token revoked"}`))
		return
	}
	if unlinked {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_target","error_description":"no linked GitHub account"}`))
		return
	}
	resp := map[string]any{
		"access_token":      "gho_" + strings.TrimPrefix(c.Sub, "github:"),
		"issued_token_type": tokenTypeAccessToken,
		"token_type":        "Bearer",
	}
	if e := fx.expires.Load(); e > 0 {
		resp["expires_in"] = e
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (fx *fakeExchange) setUnlinked(sub string) {
	fx.mu.Lock()
	fx.unlinked[sub] = true
	fx.mu.Unlock()
}

// publicKeyPEM is the issuer's public key as PEM, the bytes a key-confusion
// attacker would use as an HMAC secret.
func publicKeyPEM(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// assertNoLeak fails if any secret appears in the response or the logs.
func assertNoLeak(t testing.TB, w *httptest.ResponseRecorder, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	var all bytes.Buffer
	all.Write(w.Body.Bytes())
	for k, vs := range w.Header() {
		all.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	for _, e := range logs.All() {
		all.WriteString(e.Message)
		for _, f := range e.Context {
			b, _ := json.Marshal(f.Interface)
			all.WriteString(" " + f.Key + "=" + f.String + string(b))
			if err, ok := f.Interface.(error); ok {
				all.WriteString(err.Error())
			}
		}
		all.WriteString("\n")
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		probe := s
		if len(probe) > 40 {
			// a long token: look for any distinctive chunk of it (its signature)
			probe = s[len(s)-40:]
		}
		if strings.Contains(all.String(), probe) {
			t.Errorf("secret material leaked into response or logs")
		}
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(w.Body.String(), bad) {
			t.Errorf("response body contains %q", bad)
		}
	}
}
