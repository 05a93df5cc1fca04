package jwtverify

import (
	"context"
	"crypto"
	"errors"
	"time"
)

// KeySource yields the verification key for a kid (kid may be "": then the
// single key usable with alg). Implementations must be safe for concurrent
// use, must return a key whose type matches alg (an RS256 token never gets an
// EC key) and should return errors wrapping ErrInvalidToken for unknown kids.
// The kid comes from the token: use it only as a map key, never as a path,
// URL or query.
type KeySource interface {
	Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error)
}

// CheckedKeySource is an optional KeySource capability. Verifier calls
// CheckedKey instead of Key when the KeySource has it, and only for a token
// whose header (alg, typ, crit, kid) and unsigned claims (iss, exp, nbf, iat,
// aud, sub) have already passed, i.e. a token that would be accepted if its
// key existed. A key source may take that as a hint that an unknown kid is
// likely a key rotation and fetch earlier than for an arbitrary kid
// (RemoteKeySet's early refetch); the claims are still unsigned, so it must
// trust nothing else about the token and keep its own bound on fetches.
type CheckedKeySource interface {
	KeySource
	CheckedKey(ctx context.Context, kid, alg string) (crypto.PublicKey, error)
}

// Observer receives metric events; implementations must be cheap and
// concurrency-safe. Optional.
type Observer interface {
	// JWKSFetch is called once per key set fetch attempt (discovery, if
	// needed, plus the JWKS request) with its duration and error (nil on
	// success).
	JWKSFetch(issuer string, d time.Duration, err error)
	// VerifyCache is called by Verify for every token that reaches the
	// verified-token cache, hit or miss. Not called when the cache is off.
	VerifyCache(hit bool)
}

// StaticKeySet is a fixed KeySource, for tests and for issuers whose keys are
// configured inline. It is safe for concurrent use.
type StaticKeySet struct {
	keys *keyMap
}

// NewStaticKeySet returns a KeySource serving keys by kid (the map key; ""
// for a key without kid). Supported key types are *rsa.PublicKey (2048 bits
// or more), *ecdsa.PublicKey (P-256/384/521) and ed25519.PublicKey; other
// entries are never returned. The map is copied.
func NewStaticKeySet(keys map[string]crypto.PublicKey) *StaticKeySet {
	m := &keyMap{byKid: make(map[string][]verificationKey, len(keys))}
	for kid, k := range keys {
		vk := verificationKey{key: k}
		m.byKid[kid] = append(m.byKid[kid], vk)
		m.all = append(m.all, vk)
	}
	return &StaticKeySet{keys: m}
}

// Key implements KeySource. It returns an "unknown_kid" error for a kid it
// does not hold and an "algorithm" error when the kid's key does not match
// alg.
func (s *StaticKeySet) Key(_ context.Context, kid, alg string) (crypto.PublicKey, error) {
	key, found, ok := s.keys.lookup(kid, alg)
	if ok {
		return key, nil
	}
	return nil, lookupError(kid, found)
}

func lookupError(kid string, found bool) error {
	if found && kid != "" {
		return invalid(reasonAlgorithm, "the key with this kid does not match the token's algorithm")
	}
	if kid == "" && found {
		return invalid(reasonUnknownKid, "token has no kid and several keys match its algorithm")
	}
	return invalid(reasonUnknownKid, "no key with this kid")
}

var errClosed = errors.New("jwtverify: key set closed")
