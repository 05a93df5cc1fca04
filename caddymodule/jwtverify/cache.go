package jwtverify

import (
	"crypto/sha256"
	"sync/atomic"
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
//
// A hit reads the entry under the LRU's read lock (Peek), so concurrent hits
// do not wait for each other; lru.Cache.Get would take the write lock on
// every hit to move the entry to the front, and on several cores that lock
// was where cached requests queued (mutex profiles in docs/performance.md).
// An entry is moved to the front only once more than window other entries
// have been added or moved there since it last was; until then it is among
// the window+1 most recent anyway. So a token in use is never evicted while
// it is used at least once per window insertions, an entry is evicted no
// sooner than size-window-1 insertions or moves after its last use (an exact
// LRU: size-1), and with window 0 (caches of fewer than 4 entries) the order
// is exactly LRU.
type tokenCache struct {
	lru    *lru.Cache[[32]byte, *cacheEntry]
	moves  atomic.Uint64 // entries added or moved to the front so far
	window uint64        // size/4
}

type cacheEntry struct {
	claims *Claims
	exp    time.Time
	// moved is tokenCache.moves when the entry was last added or moved
	// to the front.
	moved atomic.Uint64
}

func newTokenCache(size int) (*tokenCache, error) {
	c, err := lru.New[[32]byte, *cacheEntry](size)
	if err != nil {
		return nil, err
	}
	return &tokenCache{lru: c, window: uint64(size) / 4}, nil
}

// tokenKey hashes raw without copying it: sha256.Sum256 only reads its
// argument, so viewing the string's bytes is safe.
func tokenKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// get returns the claims for key if present and now < exp.
func (c *tokenCache) get(key [32]byte, now time.Time) (*Claims, bool) {
	e, ok := c.lru.Peek(key)
	if !ok {
		return nil, false
	}
	if !now.Before(e.exp) {
		c.lru.Remove(key)
		return nil, false
	}
	if c.moves.Load() > e.moved.Load()+c.window {
		c.lru.Get(key) // move to the front
		e.moved.Store(c.moves.Add(1))
	}
	return e.claims, true
}

// add stores claims until exp; tokens already past exp are not stored.
func (c *tokenCache) add(key [32]byte, claims *Claims, now time.Time) {
	if now.Before(claims.Expiry) {
		e := &cacheEntry{claims: claims, exp: claims.Expiry}
		e.moved.Store(c.moves.Add(1))
		c.lru.Add(key, e)
	}
}

// contains reports whether key has an entry, expired or not, without
// moving it (tests).
func (c *tokenCache) contains(key [32]byte) bool { return c.lru.Contains(key) }

// len returns the number of entries (tests).
func (c *tokenCache) len() int { return c.lru.Len() }
