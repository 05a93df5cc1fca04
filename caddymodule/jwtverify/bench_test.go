package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// The raw benchmarks measure the bare signature check; the Verify ones show
// the overhead of parsing and claim checks on top of it, and what the cache
// saves.

func BenchmarkRawRSAVerify(b *testing.B) {
	testKeys(b)
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawECDSAVerify(b *testing.B) {
	testKeys(b)
	digest := sha256.Sum256([]byte("header.payload"))
	r, s, err := ecdsa.Sign(rand.Reader, ecKey, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(&ecKey.PublicKey, digest[:], r, s) {
			b.Fatal("bad signature")
		}
	}
}

func benchVerify(b *testing.B, raw string, cacheSize int) {
	clock := newFakeClock()
	v := newTestVerifier(b, clock, staticKeys(b), func(c *Config) { c.CacheSize = cacheSize })
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyFreshRS256(b *testing.B) {
	benchVerify(b, tokenRS256(b, goodClaims(newFakeClock().Now())), -1)
}

func BenchmarkVerifyFreshES256(b *testing.B) {
	benchVerify(b, tokenES256(b, goodClaims(newFakeClock().Now())), -1)
}

func BenchmarkVerifyCached(b *testing.B) {
	benchVerify(b, tokenRS256(b, goodClaims(newFakeClock().Now())), 0)
}

// BenchmarkKeyLookup is a RemoteKeySet hit for a cached kid (lock-free).
func BenchmarkKeyLookup(b *testing.B) {
	testKeys(b)
	f := newFakeIssuer(b, jwksDoc(b, rsaJWK("rsa1", &rsaKey.PublicKey), ecJWK("ec1", &ecKey.PublicKey)))
	ks := newRemote(b, f, newFakeClock(), nil)
	ctx := context.Background()
	if _, err := ks.Key(ctx, "rsa1", "RS256"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Key(ctx, "ec1", "ES256"); err != nil {
			b.Fatal(err)
		}
	}
}
