package idp

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Token endpoint throughput against the raw signing cost, in the same run:
//
//	go test -run '^$' -bench 'Token|Sign|Register' -benchmem ./idp/
//
// The handlers are called in-process (httptest.ResponseRecorder, default
// memory store), so the numbers are the IdP's own work per request: form
// parsing, client authentication, the store, and one signature.

const benchRedirect = "http://127.0.0.1:33418/callback"

// newBenchServer is an IdP with the default memory store and RS256 keys,
// without registration limits.
func newBenchServer(b *testing.B, mod func(*Options)) *Server {
	b.Helper()
	opts := Options{
		Issuer:                "https://idp.example.com",
		DevLogin:              true,
		DefaultResource:       "https://mcp.example.com/mcp",
		Scopes:                []string{"mcp:tools", "github:repo"},
		RegistrationRateLimit: -1,
		MaxClients:            1 << 30,
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// forAlgs runs bench against a fresh server per signing algorithm (RS256 is
// the default; ES256 is Options.SigningAlgorithm's alternative).
func forAlgs(b *testing.B, bench func(*testing.B, *Server)) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			bench(b, newBenchServer(b, func(o *Options) { o.SigningAlgorithm = alg }))
		})
	}
}

// serve runs one request through the server and returns the recorder.
func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func formRequest(path string, v url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// benchClient registers a public client (PKCE, refresh tokens).
func benchClient(b *testing.B, s *Server) string {
	b.Helper()
	body, _ := json.Marshal(map[string]any{
		"client_name": "bench", "redirect_uris": []string{benchRedirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	r := httptest.NewRequest(http.MethodPost, "/register", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := serve(s, r)
	if w.Code != http.StatusCreated {
		b.Fatalf("register: %d %s", w.Code, w.Body.String())
	}
	var resp struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.ClientID == "" {
		b.Fatalf("register answer: %v", err)
	}
	return resp.ClientID
}

// issueCodes stores n authorization codes as the consent step would, with
// one PKCE verifier for all.
func issueCodes(b *testing.B, s *Server, clientID string, n int) (codes []string, verifier string) {
	b.Helper()
	verifier = randomToken() + "abc"
	sum := sha256.Sum256([]byte(verifier))
	ar := &authRequest{
		ClientID: clientID, RedirectURI: benchRedirect, RedirectGiven: true, Challenge: b64(sum[:]),
		Scope: "mcp:tools github:repo", Resource: "https://mcp.example.com/mcp",
	}
	r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
	codes = make([]string, n)
	for i := range codes {
		c, err := s.issueCode(r, ar, "dev:bench")
		if err != nil {
			b.Fatal(err)
		}
		codes[i] = c
	}
	return codes, verifier
}

// BenchmarkTokenCodeExchange is POST /token grant_type=authorization_code
// (PKCE, public client): the code is consumed, an access token signed and a
// refresh token stored. Codes are issued before the timer starts.
func BenchmarkTokenCodeExchange(b *testing.B) {
	forAlgs(b, benchCodeExchange)
}

func benchCodeExchange(b *testing.B, s *Server) {
	id := benchClient(b, s)
	codes, verifier := issueCodes(b, s, id, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := serve(s, formRequest("/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {benchRedirect},
			"code_verifier": {verifier}, "client_id": {id},
		}))
		if w.Code != http.StatusOK {
			b.Fatalf("token: %d %s", w.Code, w.Body.String())
		}
	}
}

// BenchmarkTokenRefresh is POST /token grant_type=refresh_token: each
// request rotates the refresh token the previous one returned.
func BenchmarkTokenRefresh(b *testing.B) {
	forAlgs(b, benchRefresh)
}

func benchRefresh(b *testing.B, s *Server) {
	id := benchClient(b, s)
	codes, verifier := issueCodes(b, s, id, 1)
	w := serve(s, formRequest("/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {codes[0]}, "redirect_uri": {benchRedirect},
		"code_verifier": {verifier}, "client_id": {id},
	}))
	rt := refreshTokenOf(b, w)
	b.ReportAllocs()
	for b.Loop() {
		w := serve(s, formRequest("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {id}}))
		rt = refreshTokenOf(b, w)
	}
}

func refreshTokenOf(b *testing.B, w *httptest.ResponseRecorder) string {
	b.Helper()
	if w.Code != http.StatusOK {
		b.Fatalf("token: %d %s", w.Code, w.Body.String())
	}
	var resp struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.RefreshToken == "" || resp.AccessToken == "" {
		b.Fatalf("token answer without tokens: %v", err)
	}
	return resp.RefreshToken
}

// BenchmarkMintAccessToken is the access token alone: claims, header,
// encoding and the signature.
func BenchmarkMintAccessToken(b *testing.B) {
	forAlgs(b, benchMint)
}

func benchMint(b *testing.B, s *Server) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := s.mintAccessToken("dev:bench", "client", "mcp:tools", "https://mcp.example.com/mcp", now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawSign is the raw signature with the IdP's current signing key
// (RS256: RSASSA-PKCS1-v1_5, ES256: ECDSA P-256, over a token-sized digest), the
// floor for every token endpoint request that issues an access token.
func BenchmarkRawSign(b *testing.B) {
	forAlgs(b, benchRawSign)
}

func benchRawSign(b *testing.B, s *Server) {
	key, err := s.keys.current()
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256(bytes.Repeat([]byte("x"), 600))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := key.priv.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}
