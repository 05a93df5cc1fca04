package jwtverify

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestVerifyCache(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	ks := &countingKeySource{KeySource: staticKeys(t)}
	obs := &countingObserver{}
	v := newTestVerifier(t, clock, ks, func(c *Config) { c.Observer = obs; c.CacheSize = 3 })
	ctx := context.Background()
	exp := now.Add(time.Minute)
	raw := tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = exp.Unix() }))

	first, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if ks.calls.Load() != 1 || first != second || obs.hits.Load() != 1 || obs.misses.Load() != 1 {
		t.Fatalf("hit did not skip verification: key calls %d, hits %d, misses %d", ks.calls.Load(), obs.hits.Load(), obs.misses.Load())
	}

	// A token differing in one signature byte is not a hit.
	tampered := raw[:len(raw)-2] + "AA"
	if tampered == raw {
		tampered = raw[:len(raw)-2] + "BA"
	}
	if _, err := v.Verify(ctx, tampered); err == nil {
		t.Fatal("tampered token accepted via the cache")
	}

	// Never past exp, even inside the leeway: the hit is refused and the
	// entry evicted, then the fresh check (with leeway) decides.
	clock.ns.Store(exp.UnixNano())
	calls := ks.calls.Load()
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatalf("fresh check inside leeway: %v", err)
	}
	if ks.calls.Load() != calls+1 {
		t.Fatal("cache served a token at exp")
	}
	if v.cache.contains(tokenKey(raw)) {
		t.Fatal("token past exp was stored")
	}
	clock.Advance(DefaultLeeway + time.Second)
	if _, err := v.Verify(ctx, raw); Reason(err) != "expired" {
		t.Fatalf("after exp+leeway: %v", err)
	}

	// Bounded size.
	clock.ns.Store(now.UnixNano())
	for i := range 10 {
		c := goodClaims(now)
		c["jti"] = strconv.Itoa(i)
		if _, err := v.Verify(ctx, tokenRS256(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n != 3 {
		t.Fatalf("cache holds %d entries, limit 3", n)
	}
}

func TestVerifyCacheExpiredEntryEvicted(t *testing.T) {
	clock := newFakeClock()
	v := newTestVerifier(t, clock, staticKeys(t), func(c *Config) { c.Leeway = -1 })
	raw := tokenRS256(t, goodClaims(clock.Now()))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if !v.cache.contains(tokenKey(raw)) {
		t.Fatal("not cached")
	}
	clock.Advance(2 * time.Hour)
	if _, err := v.Verify(context.Background(), raw); Reason(err) != "expired" {
		t.Fatalf("err = %v", err)
	}
	if v.cache.contains(tokenKey(raw)) {
		t.Fatal("expired entry not evicted")
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	clock := newFakeClock()
	ks := &countingKeySource{KeySource: staticKeys(t)}
	obs := &countingObserver{}
	v := newTestVerifier(t, clock, ks, func(c *Config) { c.CacheSize = -1; c.Observer = obs })
	raw := tokenRS256(t, goodClaims(clock.Now()))
	for range 3 {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if ks.calls.Load() != 3 || obs.hits.Load()+obs.misses.Load() != 0 || v.cache != nil {
		t.Fatalf("cache not disabled: %d key calls", ks.calls.Load())
	}
}

// TestVerifyCacheHitAllocs: the cache-hit path allocates nothing.
func TestVerifyCacheHitAllocs(t *testing.T) {
	clock := newFakeClock()
	v := newTestVerifier(t, clock, staticKeys(t), func(c *Config) { c.Observer = &countingObserver{} })
	raw := tokenRS256(t, goodClaims(clock.Now()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = v.Verify(ctx, raw) }); a != 0 {
		t.Fatalf("cache hit allocates %v times", a)
	}
}

// BenchmarkTokenCacheHitParallel is a verified-token cache hit from
// GOMAXPROCS goroutines at once (run it with -cpu 1,2,...), for one token, as
// in the load benchmark's (c), and for many: contention in the cache shows as
// ns/op that fails to fall with more CPUs. The SHA-256 of the token, the
// rest of a cached Verify, is left out.
func BenchmarkTokenCacheHitParallel(b *testing.B) {
	for _, tokens := range []int{1, 1000} {
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			c, err := newTokenCache(DefaultCacheSize)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			keys := make([][32]byte, tokens)
			for i := range keys {
				keys[i] = tokenKey("token-" + strconv.Itoa(i))
				c.add(keys[i], &Claims{Subject: "user", Expiry: now.Add(time.Hour)}, now)
			}
			var seed atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					if _, ok := c.get(keys[i%tokens], now); !ok {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	}
}

// TestTokenCacheRecency: hits keep a token in use; eviction takes the least
// recently used entry, exactly in a small cache (window 0) and within the
// window in a larger one.
func TestTokenCacheRecency(t *testing.T) {
	now := time.Now()
	claims := &Claims{Expiry: now.Add(time.Hour)}
	key := func(i int) [32]byte { return tokenKey("t" + strconv.Itoa(i)) }
	tests := []struct {
		name string
		size int
	}{{"exact", 3}, {"windowed", 40}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newTokenCache(tt.size)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.size {
				c.add(key(i), claims, now)
			}
			// Key 0, the oldest, is used: key 1 is evicted first.
			if _, ok := c.get(key(0), now); !ok {
				t.Fatal("miss")
			}
			c.add(key(tt.size), claims, now)
			if !c.contains(key(0)) || c.contains(key(1)) {
				t.Fatalf("after a hit on the oldest and one insertion: key 0 kept %v, key 1 kept %v", c.contains(key(0)), c.contains(key(1)))
			}
			// A token used between every insertion is never evicted,
			// while the others are, oldest first.
			for i := tt.size + 1; i < 10*tt.size; i++ {
				if _, ok := c.get(key(0), now); !ok {
					t.Fatalf("token in use evicted after %d insertions", i)
				}
				c.add(key(i), claims, now)
				if c.contains(key(i-tt.size+1)) || !c.contains(key(i-tt.size+2)) || c.len() != tt.size {
					t.Fatalf("insertion %d: not the least recently used evicted (len %d)", i, c.len())
				}
			}
		})
	}
}
