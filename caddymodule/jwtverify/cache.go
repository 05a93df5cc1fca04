package jwtverify

import (
	"crypto/sha256"
	"time"
	"unsafe"

	"github.com/mcpgate/mcpgate/internal/expirylru"
)

// DefaultCacheSize is the default number of verified tokens kept.
const DefaultCacheSize = 10000

// tokenCache remembers verified tokens so a repeated request skips the
// signature check, in an internal/expirylru cache (an LRU whose hits do not
// wait for each other, with no background goroutine to leak on reloads).
//
// Keys are the SHA-256 of the raw token: the cache never holds token text,
// and a [32]byte key needs no allocation. Entries are used strictly before
// the token's exp, without leeway, and an expired entry is evicted when it is
// found.
type tokenCache struct {
	c *expirylru.Cache[[32]byte, *Claims]
}

func newTokenCache(size int) (*tokenCache, error) {
	c, err := expirylru.New[[32]byte, *Claims](size)
	if err != nil {
		return nil, err
	}
	return &tokenCache{c: c}, nil
}

// tokenKey hashes raw without copying it: sha256.Sum256 only reads its
// argument, so viewing the string's bytes is safe.
func tokenKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// get returns the claims for key if present and now < exp.
func (c *tokenCache) get(key [32]byte, now time.Time) (*Claims, bool) {
	return c.c.Get(key, now)
}

// add stores claims until exp; tokens already past exp are not stored.
func (c *tokenCache) add(key [32]byte, claims *Claims, now time.Time) {
	if now.Before(claims.Expiry) {
		c.c.Add(key, claims, claims.Expiry)
	}
}

// contains reports whether key has an entry, expired or not, without
// moving it (tests).
func (c *tokenCache) contains(key [32]byte) bool { return c.c.Contains(key) }

// len returns the number of entries (tests).
func (c *tokenCache) len() int { return c.c.Len() }
