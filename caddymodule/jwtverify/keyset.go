package jwtverify

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// KeySource yields the verification key for a kid (kid may be "": then the
// single key usable with alg).
type KeySource interface {
	Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error)
}

// Observer receives metric events; implementations must be cheap and
// concurrency-safe. Optional.
type Observer interface {
	JWKSFetch(issuer string, d time.Duration, err error)
	VerifyCache(hit bool)
}

// StaticKeySet is a fixed KeySource, mainly for tests.
type StaticKeySet struct {
	keys map[string]crypto.PublicKey
}

// NewStaticKeySet returns a KeySource serving keys by kid.
func NewStaticKeySet(keys map[string]crypto.PublicKey) *StaticKeySet {
	return &StaticKeySet{keys: keys}
}

// Key implements KeySource.
func (s *StaticKeySet) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	return nil, errors.New("not implemented")
}

// KeySetConfig configures a RemoteKeySet.
type KeySetConfig struct {
	Issuer          string        // exact issuer; required
	JWKSURI         string        // if empty, discovered lazily (on first fetch) from RFC 8414 metadata, then OIDC discovery
	HTTPClient      *http.Client  // default: a client with FetchTimeout
	FetchTimeout    time.Duration // default 5s, per fetch
	MaxBodyBytes    int64         // default 1 MiB
	RefreshInterval time.Duration // default 15m; periodic background refresh
	RefetchCooldown time.Duration // default 30s; min gap between fetches triggered by unknown kids
	Now             func() time.Time
	Observer        Observer
	Logger          *slog.Logger // optional; nil = discard
}

// RemoteKeySet is a KeySource backed by an issuer's JWKS document.
type RemoteKeySet struct {
	cfg KeySetConfig
}

// NewRemoteKeySet validates cfg, applies defaults and returns a key set. No
// network access happens until the first Key call or Start.
func NewRemoteKeySet(cfg KeySetConfig) (*RemoteKeySet, error) {
	return &RemoteKeySet{cfg: cfg}, nil
}

// Key implements KeySource.
func (ks *RemoteKeySet) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	return nil, errors.New("not implemented")
}

// Start runs the periodic refresh until ctx is done or Close is called.
func (ks *RemoteKeySet) Start(ctx context.Context) {}

// Close stops the refresh goroutine and waits for it; idempotent.
func (ks *RemoteKeySet) Close() {}

// Fetches returns the number of JWKS HTTP fetches made so far.
func (ks *RemoteKeySet) Fetches() int64 { return 0 }

// DiscoverJWKSURI finds the issuer's jwks_uri: path-aware RFC 8414 first,
// then OIDC discovery. The metadata's issuer must equal issuer exactly.
func DiscoverJWKSURI(ctx context.Context, c *http.Client, issuer string) (string, error) {
	return "", errors.New("not implemented")
}
