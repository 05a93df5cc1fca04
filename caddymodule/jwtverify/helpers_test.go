package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test keys are generated once per test binary (RSA generation is slow).
var (
	keysOnce                   sync.Once
	rsaKey, rsaKey2, rsaAttack *rsa.PrivateKey
	ecKey, ecAttack            *ecdsa.PrivateKey
	ec384Key                   *ecdsa.PrivateKey
	edPub                      ed25519.PublicKey
	edKey                      ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil {
				panic(e)
			}
		}
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaAttack, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecAttack, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ec384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		edPub, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
}

const (
	testIssuer   = "https://issuer.example.com"
	testAudience = "https://mcp.example.com/mcp"
)

// fakeClock is a replaceable, concurrency-safe clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signRaw builds a compact JWS with an arbitrary header and payload, signed
// with method and key (the header's alg is whatever the caller put in it).
func signRaw(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, payload []byte) string {
	t.Helper()
	signing := b64url(mustJSON(t, header)) + "." + b64url(payload)
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64url(sig)
}

// goodClaims returns valid claims at now.
func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       testIssuer,
		"sub":       "github:42",
		"aud":       testAudience,
		"client_id": "client-1",
		"scope":     "mcp:tools github:repo",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "jti-1",
	}
}

func rsHeader(kid string) map[string]any {
	return map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": kid}
}

// tokenRS256 signs claims with rsaKey under kid "rsa1".
func tokenRS256(t testing.TB, claims map[string]any) string {
	t.Helper()
	testKeys(t)
	return signRaw(t, jwt.SigningMethodRS256, rsaKey, rsHeader("rsa1"), mustJSON(t, claims))
}

func tokenES256(t testing.TB, claims map[string]any) string {
	t.Helper()
	testKeys(t)
	return signRaw(t, jwt.SigningMethodES256, ecKey, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "ec1"}, mustJSON(t, claims))
}

func staticKeys(t testing.TB) *StaticKeySet {
	testKeys(t)
	return NewStaticKeySet(map[string]crypto.PublicKey{
		"rsa1": &rsaKey.PublicKey,
		"ec1":  &ecKey.PublicKey,
		"ed1":  edPub,
	})
}

func newTestVerifier(t testing.TB, clock *fakeClock, ks KeySource, mod func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Audience: testAudience, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewVerifier(cfg, map[string]KeySource{testIssuer: ks})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// JWK encoders for the fake issuer.
func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64url(k.N.Bytes()), "e": b64url(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	size := (k.Curve.Params().BitSize + 7) / 8
	crv := map[int]string{32: "P-256", 48: "P-384", 66: "P-521"}[size]
	return map[string]any{"kty": "EC", "kid": kid, "use": "sig", "crv": crv,
		"x": b64url(k.X.FillBytes(make([]byte, size))), "y": b64url(k.Y.FillBytes(make([]byte, size)))}
}

func edJWK(kid string, k ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64url(k)}
}

func jwksDoc(t testing.TB, keys ...map[string]any) []byte {
	return mustJSON(t, map[string]any{"keys": keys})
}

// fakeIssuer is an httptest authorization server serving RFC 8414 metadata
// and a JWKS whose content and behaviour tests can switch.
type fakeIssuer struct {
	srv        *httptest.Server
	issuer     string
	jwks       atomic.Pointer[[]byte]
	mode       atomic.Int32 // 0 ok, 1 status 503, 2 hang until request done or release
	delay      atomic.Int64 // ns before answering the JWKS
	jwksHits   atomic.Int64
	metaHits   atomic.Int64
	release    chan struct{}
	closeOnce  sync.Once
	omitJWKSUR bool
}

func newFakeIssuer(t testing.TB, jwks []byte) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{release: make(chan struct{})}
	f.jwks.Store(&jwks)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		f.metaHits.Add(1)
		md := map[string]any{"issuer": f.issuer, "token_endpoint": f.issuer + "/token"}
		if !f.omitJWKSUR {
			md["jwks_uri"] = f.issuer + "/jwks"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(md)
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		f.jwksHits.Add(1)
		if d := f.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		switch f.mode.Load() {
		case 1:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		case 2:
			select {
			case <-r.Context().Done():
			case <-f.release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*f.jwks.Load())
	})
	f.srv = httptest.NewServer(mux)
	f.issuer = f.srv.URL
	t.Cleanup(func() {
		f.closeOnce.Do(func() { close(f.release) })
		f.srv.Close()
	})
	return f
}

func (f *fakeIssuer) setJWKS(b []byte) { f.jwks.Store(&b) }

// countingKeySource counts Key calls.
type countingKeySource struct {
	KeySource
	calls atomic.Int64
}

func (c *countingKeySource) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	c.calls.Add(1)
	return c.KeySource.Key(ctx, kid, alg)
}

// countingObserver records observer events.
type countingObserver struct {
	fetches, fetchErrs, hits, misses atomic.Int64
}

func (o *countingObserver) JWKSFetch(_ string, _ time.Duration, err error) {
	o.fetches.Add(1)
	if err != nil {
		o.fetchErrs.Add(1)
	}
}

func (o *countingObserver) VerifyCache(hit bool) {
	if hit {
		o.hits.Add(1)
	} else {
		o.misses.Add(1)
	}
}
