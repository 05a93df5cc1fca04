package jwtverify

import (
	"context"
	"crypto"
	"testing"
)

func TestStaticKeySet(t *testing.T) {
	testKeys(t)
	ks := NewStaticKeySet(map[string]crypto.PublicKey{
		"rsa1": &rsaKey.PublicKey,
		"ec1":  &ecKey.PublicKey,
	})
	single := NewStaticKeySet(map[string]crypto.PublicKey{"": &rsaKey.PublicKey})
	tests := []struct {
		ks       *StaticKeySet
		kid, alg string
		want     crypto.PublicKey
		reason   string
	}{
		{ks, "rsa1", "RS256", &rsaKey.PublicKey, ""},
		{ks, "ec1", "ES256", &ecKey.PublicKey, ""},
		{ks, "rsa1", "ES256", nil, "algorithm"},
		{ks, "ec1", "RS256", nil, "algorithm"},
		{ks, "rsa2", "RS256", nil, "unknown_kid"},
		{ks, "", "RS256", &rsaKey.PublicKey, ""}, // the single RSA key
		{ks, "", "ES384", nil, "unknown_kid"},
		{single, "", "RS256", &rsaKey.PublicKey, ""},
		{single, "x", "RS256", nil, "unknown_kid"},
		{NewStaticKeySet(map[string]crypto.PublicKey{"a": &rsaKey.PublicKey, "b": &rsaKey2.PublicKey}), "", "RS256", nil, "unknown_kid"},
	}
	for i, tc := range tests {
		got, err := tc.ks.Key(context.Background(), tc.kid, tc.alg)
		if Reason(err) != tc.reason {
			t.Errorf("%d: Key(%q,%q) reason %q, want %q", i, tc.kid, tc.alg, Reason(err), tc.reason)
		}
		if tc.want != nil && got != tc.want {
			t.Errorf("%d: wrong key", i)
		}
	}
}
