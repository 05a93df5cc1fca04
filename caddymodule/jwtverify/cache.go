package jwtverify

import (
	"crypto/sha256"
	"time"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheSize is the default number of verified tokens kept.
const DefaultCacheSize = 10000

// tokenCache remembers verified tokens so a repeated request skips the
// signature check. It is a plain lru.Cache (not golang-lru's expirable LRU,
// which starts a cleanup goroutine that can never be stopped and would leak
// one goroutine per config reload); expiry is checked on every hit instead.
//
// Keys are the SHA-256 of the raw token: the cache never holds token text,
// and a [32]byte key needs no allocation. Entries are used strictly before
// the token's exp, without leeway, and an expired entry is evicted when it is
// found.
type tokenCache struct {
	lru *lru.Cache[[32]byte, cacheEntry]
}

type cacheEntry struct {
	claims *Claims
	exp    time.Time
}

func newTokenCache(size int) (*tokenCache, error) {
	c, err := lru.New[[32]byte, cacheEntry](size)
	if err != nil {
		return nil, err
	}
	return &tokenCache{lru: c}, nil
}

// tokenKey hashes raw without copying it: sha256.Sum256 only reads its
// argument, so viewing the string's bytes is safe.
func tokenKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// get returns the claims for key if present and now < exp.
func (c *tokenCache) get(key [32]byte, now time.Time) (*Claims, bool) {
	e, ok := c.lru.Get(key)
	if !ok {
		return nil, false
	}
	if !now.Before(e.exp) {
		c.lru.Remove(key)
		return nil, false
	}
	return e.claims, true
}

// add stores claims until exp; tokens already past exp are not stored.
func (c *tokenCache) add(key [32]byte, claims *Claims, now time.Time) {
	if now.Before(claims.Expiry) {
		c.lru.Add(key, cacheEntry{claims: claims, exp: claims.Expiry})
	}
}

// len returns the number of entries (tests).
func (c *tokenCache) len() int { return c.lru.Len() }
