package mcpauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
)

// Micro-benchmarks of mcp_auth's per-request work, next to the raw
// signature checks they are compared with (same run, same binary):
//
//	go test -run '^$' -bench . -benchmem ./caddymodule/mcpauth/
//
// They run only with -bench; `go test` only compiles them.

func BenchmarkGatewayRawRSAVerify(b *testing.B) {
	key, _ := testRSAKeys(b)
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGatewayRawECDSAVerify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("header.payload"))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(&key.PublicKey, digest[:], r, s) {
			b.Fatal("bad signature")
		}
	}
}

// benchRequest is a prepared request (Caddy replacer in its context, as the
// server would set up) that is reset before every ServeHTTP, because the
// handler rewrites its headers.
type benchRequest struct {
	r    *http.Request
	auth []string
}

func newBenchRequest(tok string) *benchRequest {
	r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	r.Header.Set("User-Agent", "bench/1")
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), nil)
	return &benchRequest{r: r, auth: []string{"Bearer " + tok}}
}

// reset puts the client's Authorization header back.
func (br *benchRequest) reset() *http.Request {
	br.r.Header["Authorization"] = br.auth
	return br.r
}

// nopWriter is a ResponseWriter that discards everything.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

var nopNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// benchHandler runs the whole handler (token parsing, verification, scope
// check, placeholders, header rewrite, upstream token injection) for tok.
func benchHandler(b *testing.B, env *testEnv, tok string) {
	br := newBenchRequest(tok)
	w := &nopWriter{h: http.Header{}}
	if err := env.h.ServeHTTP(w, br.reset(), nopNext); err != nil {
		b.Fatal(err)
	}
	if br.r.Header.Get(env.h.upstreamKey) == "" {
		b.Fatal("upstream token not injected")
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := env.h.ServeHTTP(w, br.reset(), nopNext); err != nil {
			b.Fatal(err)
		}
	}
	if n := env.exchange.calls.Load(); n != 1 {
		b.Fatalf("%d token exchanges, want 1 (the upstream cache should serve)", n)
	}
}

// BenchmarkHandlerCached is the cached path: verified-token cache hit and
// upstream token from the cache.
func BenchmarkHandlerCached(b *testing.B) {
	env := newTestEnv(b, nil)
	benchHandler(b, env, env.validToken("github:1"))
}

// BenchmarkHandlerCachedAuthorization is BenchmarkHandlerCached with the
// default upstream_header, Authorization, whose value is "Bearer " and the
// token.
func BenchmarkHandlerCachedAuthorization(b *testing.B) {
	env := newTestEnv(b, func(h *Handler, _ *testEnv) { h.UpstreamHeader = "Authorization" })
	benchHandler(b, env, env.validToken("github:1"))
}

// BenchmarkHandlerFreshRS256 is the handler with the verified-token cache
// off, so every request checks the RS256 signature (the upstream token is
// still cached).
func BenchmarkHandlerFreshRS256(b *testing.B) {
	env := newTestEnv(b, func(h *Handler, _ *testEnv) { h.VerifyCacheSize = -1 })
	benchHandler(b, env, env.validToken("github:1"))
}

// BenchmarkRewriteHeaders is the header rewrite alone: drop Authorization
// and any client copy of the upstream header.
func BenchmarkRewriteHeaders(b *testing.B) {
	env := newTestEnv(b, nil)
	br := newBenchRequest("x")
	b.ReportAllocs()
	for b.Loop() {
		env.h.rewriteHeaders(br.reset().Header)
	}
	if br.r.Header.Get("Authorization") != "" {
		b.Fatal("Authorization kept")
	}
}

// BenchmarkUpstreamCacheHit is the upstream token lookup for a cached user.
func BenchmarkUpstreamCacheHit(b *testing.B) {
	env := newTestEnv(b, nil)
	tok := env.validToken("github:1")
	claims, err := env.h.verifier.Verify(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := env.h.upstream.Get(ctx, claims, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.h.upstream.Get(ctx, claims, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerCachedParallel is the cached path from GOMAXPROCS
// goroutines at once: the verified-token and upstream caches are shared
// LRUs behind a mutex, so contention would show here and not above.
func BenchmarkHandlerCachedParallel(b *testing.B) {
	env := newTestEnv(b, nil)
	tok := env.validToken("github:1")
	if err := env.h.ServeHTTP(&nopWriter{h: http.Header{}}, newBenchRequest(tok).reset(), nopNext); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		br := newBenchRequest(tok)
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			if err := env.h.ServeHTTP(w, br.reset(), nopNext); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// policy20 is a 20-rule tool policy of the shape operators write: exact
// names, globs, denies, scope and (withClaims) claim requirements.
func policy20(withClaims bool) *toolpolicy.Config {
	cfg := &toolpolicy.Config{Default: toolpolicy.Deny}
	for i := 0; i < 8; i++ {
		cfg.Rules = append(cfg.Rules, toolpolicy.Rule{Method: "tools/call", Name: fmt.Sprintf("tool_%d", i),
			Require: toolpolicy.Requirement{ScopesAny: []string{"mcp:tools"}}})
	}
	for i := 0; i < 6; i++ {
		cfg.Rules = append(cfg.Rules, toolpolicy.Rule{Method: "tools/call", Name: fmt.Sprintf("deny%d_*", i), Effect: toolpolicy.Deny})
	}
	for i := 0; i < 4; i++ {
		cfg.Rules = append(cfg.Rules, toolpolicy.Rule{Method: "prompts/get", Name: fmt.Sprintf("prompt%d_*", i),
			Require: toolpolicy.Requirement{ScopesAll: []string{"mcp:prompts"}}})
	}
	last := toolpolicy.Rule{Method: "tools/call", Name: "read_*", Require: toolpolicy.Requirement{ScopesAny: []string{"github:repo", "mcp:admin"}}}
	if withClaims {
		last.Require.Claims = []toolpolicy.ClaimMatch{{Claim: "client_id", Prefix: "client-"}}
	}
	cfg.Rules = append(cfg.Rules, last, toolpolicy.Rule{Method: "tools/list"})
	return cfg
}

// benchPolicy runs the cached path with a tool policy on a tools/call that
// the last glob allows; the audit entry goes, JSON-encoded, to io.Discard at
// INFO, as it would to a log file.
func benchPolicy(b *testing.B, withClaims bool, auditLevel zapcore.Level, noIdentityCache ...bool) {
	env := newTestEnv(b, func(h *Handler, _ *testEnv) { h.ToolPolicy = policy20(withClaims) })
	if len(noIdentityCache) > 0 {
		env.h.identities = nil
	}
	env.h.audit = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), auditLevel)).Named("audit")
	body := []byte(`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/motd"}}}`)
	br := newBenchRequest(env.validToken("github:1"))
	br.r.Header.Set("Mcp-Method", "tools/call")
	br.r.Header.Set("Mcp-Name", "read_file")
	rd := bytes.NewReader(body)
	reset := func() *http.Request {
		rd.Reset(body)
		br.r.Body = io.NopCloser(rd)
		br.r.ContentLength = int64(len(body))
		return br.reset()
	}
	w := &nopWriter{h: http.Header{}}
	called := 0
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { called++; return nil })
	if err := env.h.ServeHTTP(w, reset(), next); err != nil || called != 1 {
		b.Fatalf("not forwarded: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := env.h.ServeHTTP(w, reset(), next); err != nil {
			b.Fatal(err)
		}
	}
	if called < 2 {
		b.Fatal("calls refused")
	}
}

// BenchmarkHandlerCachedPolicy20 is BenchmarkHandlerCached with a 20-rule
// tool policy deciding a tools/call (body read, headers checked against it,
// decision, placeholders, metrics, audit entry).
func BenchmarkHandlerCachedPolicy20(b *testing.B) { benchPolicy(b, false, zapcore.InfoLevel) }

// BenchmarkHandlerCachedPolicy20NoAudit is the same with the audit logger
// above INFO (an operator who drops it), to show the entry's share.
func BenchmarkHandlerCachedPolicy20NoAudit(b *testing.B) { benchPolicy(b, false, zapcore.WarnLevel) }

// BenchmarkHandlerCachedPolicy20Claims is the same with a claim matcher, so
// the token's claims are read (once, then from the identity cache).
func BenchmarkHandlerCachedPolicy20Claims(b *testing.B) { benchPolicy(b, true, zapcore.InfoLevel) }

// BenchmarkHandlerCachedPolicy20ClaimsNoCache reads the token's claims on
// every request, as when verify_cache_size is negative: the identity
// cache's worth.
func BenchmarkHandlerCachedPolicy20ClaimsNoCache(b *testing.B) {
	benchPolicy(b, true, zapcore.InfoLevel, true)
}

// BenchmarkHandlerCachedPolicy20ClaimsParallel is the claims policy from
// GOMAXPROCS goroutines at once, one token: every call hits the identity
// cache, whose lock would show here (-cpu 2 -mutexprofile).
func BenchmarkHandlerCachedPolicy20ClaimsParallel(b *testing.B) {
	env := newTestEnv(b, func(h *Handler, _ *testEnv) { h.ToolPolicy = policy20(true) })
	env.h.audit = zap.NewNop()
	tok := env.validToken("github:1")
	body := []byte(`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/motd"}}}`)
	// One call first, so the token is verified (and its identity read)
	// once rather than by several goroutines at the same time.
	warm := newBenchRequest(tok)
	warm.r.Body = io.NopCloser(bytes.NewReader(body))
	warm.r.ContentLength = int64(len(body))
	if err := env.h.ServeHTTP(&nopWriter{h: http.Header{}}, warm.reset(), nopNext); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		br := newBenchRequest(tok)
		rd := bytes.NewReader(body)
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			rd.Reset(body)
			br.r.Body = io.NopCloser(rd)
			br.r.ContentLength = int64(len(body))
			if err := env.h.ServeHTTP(w, br.reset(), nopNext); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if n := env.h.identities.Len(); n != 1 {
		b.Fatalf("identity cache holds %d entries, want 1", n)
	}
}
