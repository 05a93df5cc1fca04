package jwtverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
)

// minRSABits is the smallest RSA modulus accepted, from a JWKS or a
// StaticKeySet (NIST SP 800-131A; RFC 7518 §3.3 says 2048 or larger).
const minRSABits = 2048

// maxKeysPerSet bounds how many keys one JWKS document may contribute.
const maxKeysPerSet = 100

// supportedAlgorithms are the JWS algorithms Config.Algorithms may list.
// HMAC ("HS*") and "none" are deliberately absent: a resource server that
// shares no secret with the issuer can only verify asymmetric signatures, and
// allowing HMAC enables key confusion with the public key bytes.
var supportedAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

// verificationKey is one parsed public key and the algorithm its JWK named
// (empty when the JWK had no "alg").
type verificationKey struct {
	key crypto.PublicKey
	alg string
}

// keyMap maps kid (possibly "") to the keys published under it. It is
// immutable once built, so it can be read without locks.
type keyMap struct {
	byKid map[string][]verificationKey
	all   []verificationKey
}

// lookup returns the key for kid usable with alg. With kid == "" it returns
// the single key usable with alg, and fails if there are none or several.
// found reports whether kid itself is known (so an incompatible key can be
// told apart from an unknown kid).
func (m *keyMap) lookup(kid, alg string) (key crypto.PublicKey, found bool, ok bool) {
	if m == nil {
		return nil, false, false
	}
	if kid == "" {
		var match crypto.PublicKey
		n := 0
		for _, k := range m.all {
			if k.usableWith(alg) {
				match = k.key
				n++
			}
		}
		if n == 1 {
			return match, true, true
		}
		return nil, n > 0, false
	}
	cands, found := m.byKid[kid]
	for _, k := range cands {
		if k.usableWith(alg) {
			return k.key, true, true
		}
	}
	return nil, found, false
}

func (k verificationKey) usableWith(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	return keyMatchesAlg(alg, k.key)
}

// keyMatchesAlg reports whether key is of the type and size alg requires: an
// RS*/PS* token only ever uses an RSA key of at least 2048 bits, ES256 only a
// P-256 key, and so on. This is the guard against key confusion.
func keyMatchesAlg(alg string, key crypto.PublicKey) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N != nil && k.N.BitLen() >= minRSABits
	case "ES256":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	case "ES384":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P384()
	case "ES512":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P521()
	case "EdDSA":
		k, ok := key.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize
	}
	return false
}

// jwk is the subset of RFC 7517/7518/8037 members we read. x5c, x5u, jku and
// friends are ignored: the key material is always taken from n/e or x/y.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS parses a JWK Set document. Keys that cannot be used for signature
// verification are skipped: "use" other than "sig", "key_ops" without
// "verify", unknown "kty" or curve, invalid points, RSA keys under 2048 bits,
// and any key whose members do not decode. It fails when the document is not
// a JWK Set or no usable key remains.
func parseJWKS(body []byte) (*keyMap, int, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, errors.New("jwks: not a JSON JWK Set")
	}
	if doc.Keys == nil {
		return nil, 0, errors.New("jwks: no \"keys\" member")
	}
	m := &keyMap{byKid: make(map[string][]verificationKey)}
	skipped := 0
	for _, raw := range doc.Keys {
		if len(m.all) >= maxKeysPerSet {
			skipped++
			continue
		}
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped++
			continue
		}
		key, err := j.publicKey()
		if err != nil {
			skipped++
			continue
		}
		vk := verificationKey{key: key, alg: j.Alg}
		m.byKid[j.Kid] = append(m.byKid[j.Kid], vk)
		m.all = append(m.all, vk)
	}
	if len(m.all) == 0 {
		return nil, skipped, errors.New("jwks: no usable signature verification key")
	}
	return m, skipped, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

func (j *jwk) publicKey() (crypto.PublicKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, errors.New("jwk: not a signature key")
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, errors.New("jwk: key_ops lacks verify")
	}
	if j.Alg != "" && !slices.Contains(supportedAlgorithms, j.Alg) {
		return nil, errors.New("jwk: unsupported alg")
	}
	switch j.Kty {
	case "RSA":
		return j.rsaKey()
	case "EC":
		return j.ecKey()
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, errors.New("jwk: unsupported OKP curve")
		}
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("jwk: bad Ed25519 x")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("jwk: unsupported kty")
}

func (j *jwk) rsaKey() (crypto.PublicKey, error) {
	nb, err := b64(j.N)
	// RFC 7518 §6.3.1.1 forbids leading zero octets, but some issuers emit
	// them; they do not change the value, so they are tolerated.
	if err != nil || len(nb) == 0 {
		return nil, errors.New("jwk: bad RSA n")
	}
	eb, err := b64(j.E)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("jwk: bad RSA e")
	}
	e := 0
	for _, b := range eb {
		e = e<<8 | int(b)
	}
	if e < 3 || e%2 == 0 || e > 1<<31-1 {
		return nil, errors.New("jwk: bad RSA e")
	}
	n := new(big.Int).SetBytes(nb)
	if n.BitLen() < minRSABits || n.Bit(0) == 0 {
		return nil, errors.New("jwk: RSA key too small or invalid")
	}
	return &rsa.PublicKey{N: n, E: e}, nil
}

func (j *jwk) ecKey() (crypto.PublicKey, error) {
	var curve elliptic.Curve
	var size int
	switch j.Crv {
	case "P-256":
		curve, size = elliptic.P256(), 32
	case "P-384":
		curve, size = elliptic.P384(), 48
	case "P-521":
		curve, size = elliptic.P521(), 66
	default:
		return nil, errors.New("jwk: unsupported EC curve")
	}
	x, err := b64(j.X)
	if err != nil || len(x) != size {
		return nil, errors.New("jwk: bad EC x")
	}
	y, err := b64(j.Y)
	if err != nil || len(y) != size {
		return nil, errors.New("jwk: bad EC y")
	}
	point := make([]byte, 0, 1+2*size)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	// ParseUncompressedPublicKey rejects points off the curve and the point
	// at infinity (invalid-curve attacks).
	k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, errors.New("jwk: EC point not on curve")
	}
	return k, nil
}
