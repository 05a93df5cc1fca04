package jwtverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
)

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	good := rsaJWK("rsa1", &rsaKey.PublicKey)
	mod := func(base map[string]any, changes map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
		return out
	}
	// A 1024-bit odd modulus (not a real key; it must be refused by size).
	small := new(big.Int).Lsh(big.NewInt(1), 1023)
	small.SetBit(small, 0, 1)
	ecGood := ecJWK("ec1", &ecKey.PublicKey)
	offCurveY := new(big.Int).Add(ecKey.PublicKey.Y, big.NewInt(1)).FillBytes(make([]byte, 32))

	tests := []struct {
		name   string
		key    map[string]any
		usable bool
	}{
		{"RSA", good, true},
		{"RSA without use", mod(good, map[string]any{"use": nil}), true},
		{"RSA use enc", mod(good, map[string]any{"use": "enc"}), false},
		{"RSA key_ops verify", mod(good, map[string]any{"key_ops": []string{"verify"}}), true},
		{"RSA key_ops encrypt only", mod(good, map[string]any{"key_ops": []string{"encrypt"}}), false},
		{"RSA 1024 bits", mod(good, map[string]any{"n": b64url(small.Bytes())}), false},
		{"RSA e=1", mod(good, map[string]any{"e": b64url([]byte{1})}), false},
		{"RSA e even", mod(good, map[string]any{"e": b64url([]byte{1, 0, 0})}), false},
		{"RSA n padded base64", mod(good, map[string]any{"n": b64url(rsaKey.N.Bytes()) + "=="}), false},
		{"RSA n leading zero (tolerated)", mod(good, map[string]any{"n": b64url(append([]byte{0}, rsaKey.N.Bytes()...))}), true},
		{"RSA n empty", mod(good, map[string]any{"n": ""}), false},
		{"RSA n not a string", mod(good, map[string]any{"n": 5}), false},
		{"RSA alg HS256", mod(good, map[string]any{"alg": "HS256"}), false},
		{"EC P-256", ecGood, true},
		{"EC P-384", ecJWK("ec384", &ec384Key.PublicKey), true},
		{"EC off curve", mod(ecGood, map[string]any{"y": b64url(offCurveY)}), false},
		{"EC point at zero", mod(ecGood, map[string]any{"x": b64url(make([]byte, 32)), "y": b64url(make([]byte, 32))}), false},
		{"EC short x", mod(ecGood, map[string]any{"x": b64url(ecKey.PublicKey.X.Bytes()[1:])}), false},
		{"EC unknown curve", mod(ecGood, map[string]any{"crv": "secp256k1"}), false},
		{"EC curve/size mismatch", mod(ecGood, map[string]any{"crv": "P-384"}), false},
		{"Ed25519", edJWK("ed1", edPub), true},
		{"Ed448", mod(edJWK("ed1", edPub), map[string]any{"crv": "Ed448"}), false},
		{"oct (HMAC secret)", map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, false},
		{"unknown kty", map[string]any{"kty": "XYZ", "kid": "x"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each key is published beside a good EC key so the set parses.
			m, skipped, err := parseJWKS(jwksDoc(t, tc.key, ecJWK("other", &ecKey.PublicKey)))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(m.all) == 2; got != tc.usable {
				t.Fatalf("usable = %v (skipped %d), want %v", got, skipped, tc.usable)
			}
		})
	}
}

func TestParseJWKSDocument(t *testing.T) {
	for _, body := range []string{``, `[]`, `{}`, `{"keys":null}`, `{"keys":[]}`, `{"keys":[{"kty":"oct"}]}`, `{"keys":{}}`} {
		if _, _, err := parseJWKS([]byte(body)); err == nil {
			t.Errorf("parseJWKS(%q) succeeded", body)
		}
	}
	// At most maxKeysPerSet keys are kept.
	testKeys(t)
	keys := make([]map[string]any, maxKeysPerSet+20)
	for i := range keys {
		keys[i] = ecJWK("k", &ecKey.PublicKey)
	}
	m, skipped, err := parseJWKS(jwksDoc(t, keys...))
	if err != nil || len(m.all) != maxKeysPerSet || skipped != 20 {
		t.Fatalf("kept %d, skipped %d, err %v", len(m.all), skipped, err)
	}
}

func TestKeyMatchesAlg(t *testing.T) {
	testKeys(t)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}
	tests := []struct {
		alg  string
		key  crypto.PublicKey
		want bool
	}{
		{"RS256", &rsaKey.PublicKey, true},
		{"PS512", &rsaKey.PublicKey, true},
		{"RS256", smallRSA, false},
		{"RS256", &ecKey.PublicKey, false},
		{"RS256", rsaKey, false}, // a private key is not a public key
		{"ES256", &ecKey.PublicKey, true},
		{"ES384", &ecKey.PublicKey, false},
		{"ES384", &ec384Key.PublicKey, true},
		{"ES512", &p521.PublicKey, true},
		{"ES256", &rsaKey.PublicKey, false},
		{"EdDSA", edPub, true},
		{"EdDSA", ed25519.PublicKey(edPub[:16]), false},
		{"HS256", []byte("secret"), false},
		{"HS256", &rsaKey.PublicKey, false},
		{"none", nil, false},
	}
	for _, tc := range tests {
		if got := keyMatchesAlg(tc.alg, tc.key); got != tc.want {
			t.Errorf("keyMatchesAlg(%s, %T) = %v", tc.alg, tc.key, got)
		}
	}
}
