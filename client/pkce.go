package client

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// randomString returns n random bytes, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newPKCE returns an RFC 7636 code verifier (43 characters from 32 random bytes, §4.1) and its
// S256 challenge: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (§4.2).
func newPKCE() (verifier, challenge string) {
	verifier = randomString(32)
	return verifier, s256(verifier)
}

// s256 is the S256 code_challenge_method transformation of RFC 7636 §4.2.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
