package jwtverify

import (
	"context"
	"strconv"
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
	if v.cache.lru.Contains(tokenKey(raw)) {
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
	if !v.cache.lru.Contains(tokenKey(raw)) {
		t.Fatal("not cached")
	}
	clock.Advance(2 * time.Hour)
	if _, err := v.Verify(context.Background(), raw); Reason(err) != "expired" {
		t.Fatalf("err = %v", err)
	}
	if v.cache.lru.Contains(tokenKey(raw)) {
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
