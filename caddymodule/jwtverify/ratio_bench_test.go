package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

// The ratio benchmarks alternate one raw signature check and one full
// Verify of the same token (verified-token cache off) in every iteration,
// timing each separately, so drift on a shared machine hits both alike. They
// report raw-ns/op, verify-ns/op and verify/raw (goal: <= 1.3).
//
//	go test -run '^$' -bench Ratio ./caddymodule/jwtverify/

func BenchmarkRatioFreshRS256(b *testing.B) {
	tok := tokenRS256(b, goodClaims(newFakeClock().Now()))
	digest, sig := signingParts(b, tok)
	benchRatio(b, tok, func() bool {
		return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest[:], sig) == nil
	})
}

func BenchmarkRatioFreshES256(b *testing.B) {
	tok := tokenES256(b, goodClaims(newFakeClock().Now()))
	digest, sig := signingParts(b, tok)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	benchRatio(b, tok, func() bool { return ecdsa.Verify(&ecKey.PublicKey, digest[:], r, s) })
}

// signingParts returns the SHA-256 of a compact JWS's signing input and its
// decoded signature.
func signingParts(b *testing.B, tok string) ([32]byte, []byte) {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	return sha256.Sum256([]byte(tok[:i])), sig
}

func benchRatio(b *testing.B, tok string, raw func() bool) {
	clock := newFakeClock()
	v := newTestVerifier(b, clock, staticKeys(b), func(c *Config) { c.CacheSize = -1 })
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil || !raw() {
		b.Fatalf("setup: %v", err)
	}
	var tRaw, tVerify time.Duration
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if !raw() {
			b.Fatal("raw check failed")
		}
		t1 := time.Now()
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		tVerify += time.Since(t1)
		tRaw += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(tVerify.Nanoseconds())/float64(n), "verify-ns/op")
	b.ReportMetric(float64(tVerify)/float64(tRaw), "verify/raw")
}
