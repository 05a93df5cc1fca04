package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Key IDs of the fake issuer's two keys.
const (
	kidRSA = "bench-rsa"
	kidEC  = "bench-ec"
)

// fakeIssuer is an in-process authorization server on loopback: RFC 8414
// metadata, a JWKS with an RSA-2048 and a P-256 key, and an RFC 8693 token
// exchange endpoint that answers at once with a per-call GitHub-like token.
// The gateway fetches the JWKS once; the exchange is called once per user
// whose upstream token is not cached, so it stays off the cached path.
type fakeIssuer struct {
	srv       *httptest.Server
	rsaKey    *rsa.PrivateKey
	ecKey     *ecdsa.PrivateKey
	exchanges atomic.Int64
	jwks      atomic.Int64
}

// exchangeSecret is the gateway's client secret at the fake issuer.
const exchangeSecret = "bench-gateway-secret"

func newFakeIssuer() (*fakeIssuer, error) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	fi := &fakeIssuer{rsaKey: rk, ecKey: ek}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": fi.URL(), "jwks_uri": fi.URL() + "/jwks", "token_endpoint": fi.URL() + "/token",
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		fi.jwks.Add(1)
		writeJSON(w, http.StatusOK, map[string]any{"keys": []any{fi.rsaJWK(), fi.ecJWK()}})
	})
	mux.HandleFunc("/token", fi.serveExchange)
	fi.srv = httptest.NewServer(mux)
	return fi, nil
}

// URL is the issuer identifier.
func (fi *fakeIssuer) URL() string { return fi.srv.URL }

// Close stops the server.
func (fi *fakeIssuer) Close() { fi.srv.Close() }

func (fi *fakeIssuer) rsaJWK() map[string]any {
	pub := fi.rsaKey.PublicKey
	return map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kidRSA,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func (fi *fakeIssuer) ecJWK() map[string]any {
	pt, _ := fi.ecKey.PublicKey.Bytes() // 0x04 || X || Y
	x, y := pt[1:33], pt[33:65]
	return map[string]any{"kty": "EC", "use": "sig", "alg": "ES256", "kid": kidEC, "crv": "P-256", "x": b64(x), "y": b64(y)}
}

// serveExchange is the RFC 8693 token exchange (contract 2): it checks the
// grant type and client authentication, then answers at once.
func (fi *fakeIssuer) serveExchange(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != "gateway" || secret != exchangeSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	if r.PostFormValue("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" || r.PostFormValue("subject_token") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	n := fi.exchanges.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      upstreamPrefix + strconv.FormatInt(n, 10),
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type":        "Bearer",
		"expires_in":        3600,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// minter signs RFC 9068 access tokens for the gateway's resource.
type minter struct {
	fi       *fakeIssuer
	resource string
	now      time.Time
}

// token returns one access token for sub, signed with RS256 or ES256; n
// makes the jti (and so the token) unique.
func (m minter) token(alg, sub string, n int) (string, error) {
	kid := kidRSA
	if alg == "ES256" {
		kid = kidEC
	}
	hdr, _ := json.Marshal(map[string]string{"alg": alg, "typ": "at+jwt", "kid": kid})
	payload, _ := json.Marshal(map[string]any{
		"iss": m.fi.URL(), "sub": sub, "aud": m.resource, "client_id": "loadbench",
		"scope": "mcp:tools github:repo", "iat": m.now.Unix(), "exp": m.now.Add(2 * time.Hour).Unix(),
		"jti": "jti-" + strconv.Itoa(n),
	})
	signing := b64(hdr) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signing))
	var sig []byte
	switch alg {
	case "RS256":
		s, err := rsa.SignPKCS1v15(nil, m.fi.rsaKey, crypto.SHA256, digest[:])
		if err != nil {
			return "", err
		}
		sig = s
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, m.fi.ecKey, digest[:])
		if err != nil {
			return "", err
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	default:
		return "", fmt.Errorf("unsupported alg %q", alg)
	}
	return signing + "." + b64(sig), nil
}

// mint signs count tokens in parallel on every core (before a phase, while
// the server is idle). subOf names the subject of token i.
func (m minter) mint(alg string, count int, subOf func(i int) string) ([]string, error) {
	out := make([]string, count)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				tok, err := m.token(alg, subOf(i), i)
				if err != nil {
					errOnce.Do(func() { first = err })
					return
				}
				out[i] = tok
			}
		}()
	}
	wg.Wait()
	return out, first
}
