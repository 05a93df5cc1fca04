package jwtverify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary bearer values to Verify: it must never panic,
// every error must wrap ErrInvalidToken with a known reason, and nothing but
// the exact valid seed tokens may ever be accepted (a mutation cannot carry a
// valid signature).
func FuzzVerify(f *testing.F) {
	testKeys(f)
	clock := newFakeClock()
	now := clock.Now()
	valid := map[string]bool{
		tokenRS256(f, goodClaims(now)): true,
		tokenES256(f, goodClaims(now)): true,
	}
	for tok := range valid {
		f.Add(tok)
		p := strings.Split(tok, ".")
		f.Add(p[0] + "." + p[1] + ".")
		f.Add(p[0] + "." + p[1])
	}
	good := mustJSON(f, goodClaims(now))
	f.Add(b64url([]byte(`{"alg":"none"}`)) + "." + b64url(good) + ".")
	f.Add(signRaw(f, jwt.SigningMethodHS256, []byte("k"), map[string]any{"alg": "HS256", "kid": "rsa1"}, good))
	f.Add(signRaw(f, jwt.SigningMethodRS256, rsaKey, map[string]any{"alg": "RS256", "kid": "rsa1", "crit": []string{"x"}}, good))
	f.Add(b64url([]byte(`{"alg":"RS256","kid":"rsa1"}`)) + "." + b64url([]byte(`{"exp":"1","aud":[1],"iss":{}}`)) + ".AA")
	f.Add("..")
	f.Add("")

	reasons := map[string]bool{"empty": true, "malformed": true, "too_large": true, "algorithm": true, "signature": true,
		"unknown_kid": true, "expired": true, "not_yet_valid": true, "issuer": true, "audience": true, "type": true,
		"crit": true, "missing_claim": true, "keys_unavailable": true}
	vFresh := newTestVerifier(f, clock, staticKeys(f), func(c *Config) { c.CacheSize = -1; c.Algorithms = []string{"RS256", "ES256", "EdDSA"} })
	vCached := newTestVerifier(f, clock, staticKeys(f), func(c *Config) { c.Algorithms = []string{"RS256", "ES256", "EdDSA"} })
	f.Fuzz(func(t *testing.T, raw string) {
		for _, v := range []*Verifier{vFresh, vCached} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c, err := v.Verify(ctx, raw)
			cancel()
			if err == nil {
				if !valid[raw] || c == nil {
					t.Fatalf("accepted a token that is not a valid seed: %q", raw)
				}
				continue
			}
			if !valid[raw] && !reasons[Reason(err)] {
				t.Fatalf("unexpected reason %q for %v", Reason(err), err)
			}
		}
	})
}
