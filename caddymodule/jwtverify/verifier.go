package jwtverify

import (
	"context"
	"errors"
	"time"
)

// Config configures a Verifier.
type Config struct {
	Audience      string        // the canonical resource; required; compared with SameResource
	Algorithms    []string      // allowlist; default ["RS256","ES256"]; never taken from the token
	Leeway        time.Duration // default 30s, applied to exp, nbf and iat
	MaxTokenBytes int           // default 8192; longer bearer values are rejected before parsing
	CacheSize     int           // verified-token LRU entries; default 10000; negative disables
	Now           func() time.Time
	Observer      Observer
}

// Verifier verifies bearer JWTs against per-issuer key sources.
type Verifier struct {
	cfg  Config
	keys map[string]KeySource
}

// NewVerifier returns a Verifier; keys is keyed by the exact issuer string.
func NewVerifier(cfg Config, keys map[string]KeySource) (*Verifier, error) {
	return &Verifier{cfg: cfg, keys: keys}, nil
}

// Verify checks raw and returns its claims.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	return nil, errors.Join(ErrInvalidToken, errors.New("not implemented"))
}
