// Package expirylru is the cache behind mcp_auth's verified-token cache and its per-user
// upstream token cache: a size-bounded LRU whose entries carry their own deadline, checked
// against the caller's clock on every hit, and whose hits do not wait for each other.
//
// It wraps a plain golang-lru/v2 Cache rather than golang-lru's expirable LRU, which starts a
// cleanup goroutine that can never be stopped and would leak one goroutine per Caddy config
// reload.
//
// A hit reads the entry under the LRU's read lock (Peek), so concurrent hits do not queue;
// lru.Cache.Get would take the write lock on every hit to move the entry to the front, and on
// several cores that lock was where cached requests waited (mutex profiles in
// docs/performance.md). An entry is moved to the front only once more than window other
// entries have been added or moved there since it last was; until then it is among the
// window+1 most recent anyway. So an entry in use is never evicted while it is used at least
// once per window insertions, an entry is evicted no sooner than size-window-1 insertions or
// moves after its last use (an exact LRU: size-1), and with window 0 (caches of fewer than 4
// entries) the order is exactly LRU.
package expirylru

import (
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache maps K to V until each entry's deadline. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	lru    *lru.Cache[K, *entry[V]]
	moves  atomic.Uint64 // entries added or moved to the front so far
	window uint64        // size/4
}

type entry[V any] struct {
	val      V
	deadline time.Time
	// moved is Cache.moves when the entry was last added or moved to the front.
	moved atomic.Uint64
}

// New returns a cache of at most size entries; size must be positive.
func New[K comparable, V any](size int) (*Cache[K, V], error) {
	c, err := lru.New[K, *entry[V]](size)
	if err != nil {
		return nil, err
	}
	return &Cache[K, V]{lru: c, window: uint64(size) / 4}, nil
}

// Get returns the value for key if present and now is before its deadline; an entry found
// past its deadline is removed.
func (c *Cache[K, V]) Get(key K, now time.Time) (V, bool) {
	e, ok := c.lru.Peek(key)
	if !ok {
		var zero V
		return zero, false
	}
	if !now.Before(e.deadline) {
		// Remove the expired entry only if it is still the one read: a fresh entry that a
		// concurrent Add stored in between must not be dropped. (What is left of the window
		// costs at most one extra source call, never a stale value.)
		if cur, ok := c.lru.Peek(key); ok && cur == e {
			c.lru.Remove(key)
		}
		var zero V
		return zero, false
	}
	if c.moves.Load() > e.moved.Load()+c.window {
		c.lru.Get(key) // move to the front
		e.moved.Store(c.moves.Add(1))
	}
	return e.val, true
}

// Add stores val for key until deadline, evicting the least recently used entry when full.
func (c *Cache[K, V]) Add(key K, val V, deadline time.Time) {
	e := &entry[V]{val: val, deadline: deadline}
	e.moved.Store(c.moves.Add(1))
	c.lru.Add(key, e)
}

// Contains reports whether key has an entry, expired or not, without moving it.
func (c *Cache[K, V]) Contains(key K) bool { return c.lru.Contains(key) }

// Len returns the number of entries, expired ones included.
func (c *Cache[K, V]) Len() int { return c.lru.Len() }
