package jwtverify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// newRemote is a key set for f. Its fetch timeout is generous: the fake issuer is on loopback,
// but a loaded machine (two cores running the whole suite) has taken over 300ms for a fetch.
func newRemote(t testing.TB, f *fakeIssuer, clock *fakeClock, mod func(*KeySetConfig)) *RemoteKeySet {
	t.Helper()
	cfg := KeySetConfig{Issuer: f.issuer, JWKSURI: f.issuer + "/jwks", Now: clock.Now,
		FetchTimeout: 3 * time.Second, RefetchCooldown: time.Minute}
	if mod != nil {
		mod(&cfg)
	}
	ks, err := NewRemoteKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	return ks
}

// remoteVerifier returns a verifier trusting only f.issuer via ks, with the
// token cache off so every call exercises the key set.
func remoteVerifier(t testing.TB, f *fakeIssuer, ks KeySource, clock *fakeClock) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{Audience: testAudience, Now: clock.Now, CacheSize: -1}, map[string]KeySource{f.issuer: ks})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func issuerClaims(f *fakeIssuer, now time.Time) map[string]any {
	c := goodClaims(now)
	c["iss"] = f.issuer
	return c
}

func randomKid() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestRemoteKeySetLazyFirstFetch(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	clock := newFakeClock()
	ks := newRemote(t, f, clock, nil)
	if ks.Fetches() != 0 || f.jwksHits.Load() != 0 {
		t.Fatal("NewRemoteKeySet fetched eagerly")
	}
	v := remoteVerifier(t, f, ks, clock)
	for range 5 {
		if _, err := v.Verify(context.Background(), tokenRS256(t, issuerClaims(f, clock.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	if ks.Fetches() != 1 || f.jwksHits.Load() != 1 {
		t.Fatalf("fetches = %d, hits = %d; want 1", ks.Fetches(), f.jwksHits.Load())
	}
}

// TestUnknownKidFlood is case 7: a flood of random unknown kids in tokens
// whose claims pass (so every one reaches CheckedKey) is rejected, and the
// early-refetch budget keeps the fetches within EarlyRefetchBurst + one per
// cooldown: one shared fetch for 500 concurrent tokens, none more in the same
// instant, then no more than the bound over three minutes of flood.
func TestUnknownKidFlood(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	clock := newFakeClock()
	const cooldown = 30 * time.Second
	ks := newRemote(t, f, clock, func(c *KeySetConfig) { c.RefetchCooldown = cooldown })
	v := remoteVerifier(t, f, ks, clock)
	payload := mustJSON(t, issuerClaims(f, clock.Now()))
	tokens := make([]string, 500)
	for i := range tokens {
		tokens[i] = signRaw(t, jwt.SigningMethodRS256, rsaAttack, rsHeader(randomKid()), payload)
	}
	flood := func(tokens []string) {
		var wg sync.WaitGroup
		errs := make(chan error, len(tokens))
		for _, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := v.Verify(context.Background(), tok)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if r := Reason(err); r != "unknown_kid" {
				t.Fatalf("reason %q, want unknown_kid", r)
			}
		}
	}
	flood(tokens)
	if n := ks.Fetches(); n != 1 {
		t.Fatalf("first instant: %d fetches, want 1", n)
	}
	flood(tokens)
	if n := ks.Fetches(); n != 1 {
		t.Fatalf("same instant, budget left but inside EarlyRefetchMinGap: %d fetches, want 1", n)
	}
	const step, window = 500 * time.Millisecond, 3 * time.Minute
	for i := 0; time.Duration(i)*step < window; i++ {
		clock.Advance(step)
		flood(tokens[i%25*20 : i%25*20+20])
	}
	// The first load, then EarlyRefetchBurst + W/RefetchCooldown.
	bound := int64(1 + DefaultEarlyRefetchBurst + int(window/cooldown))
	n := ks.Fetches()
	if n > bound {
		t.Fatalf("%d fetches in %v of flood, bound %d", n, window, bound)
	}
	if n < int64(window/cooldown) {
		t.Fatalf("%d fetches in %v: fewer than one per cooldown", n, window)
	}
	t.Logf("%d fetches in %v of flood (bound %d)", n, window, bound)
}

// TestEarlyRefetchNeedsCheckedClaims: tokens whose claims fail (wrong aud)
// never reach the key set, whatever their kid; and kid lookups through Key,
// which nobody checked, keep today's rule of one fetch per cooldown.
func TestEarlyRefetchNeedsCheckedClaims(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	clock := newFakeClock()
	const cooldown = 30 * time.Second
	ks := newRemote(t, f, clock, func(c *KeySetConfig) { c.RefetchCooldown = cooldown })
	v := remoteVerifier(t, f, ks, clock)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tokenRS256(t, issuerClaims(f, clock.Now()))); err != nil {
		t.Fatal(err)
	}
	bad := issuerClaims(f, clock.Now())
	bad["aud"] = "https://other.example.com/mcp"
	payload := mustJSON(t, bad)
	const step, window = 500 * time.Millisecond, 3 * time.Minute
	for i := 0; time.Duration(i)*step < window; i++ {
		clock.Advance(step)
		for range 5 {
			_, err := v.Verify(ctx, signRaw(t, jwt.SigningMethodRS256, rsaAttack, rsHeader(randomKid()), payload))
			if Reason(err) != "audience" {
				t.Fatalf("reason %q, want audience", Reason(err))
			}
		}
	}
	if n := ks.Fetches(); n != 1 {
		t.Fatalf("tokens with a wrong aud caused %d fetches, want only the first load", n-1)
	}

	// Plain Key: one fetch per full cooldown, the early budget untouched.
	ks2 := newRemote(t, f, clock, func(c *KeySetConfig) { c.RefetchCooldown = cooldown })
	if _, err := ks2.Key(ctx, "rsa1", "RS256"); err != nil {
		t.Fatal(err)
	}
	for i := 0; time.Duration(i)*step < window; i++ {
		clock.Advance(step)
		for range 5 {
			if _, err := ks2.Key(ctx, randomKid(), "RS256"); Reason(err) != "unknown_kid" {
				t.Fatalf("reason %q, want unknown_kid", Reason(err))
			}
		}
	}
	if n, want := ks2.Fetches(), int64(1+window/cooldown); n != want {
		t.Fatalf("Key with random kids: %d fetches in %v, want %d (one per cooldown)", n, window, want)
	}
}

// TestEarlyRefetchRotation: a key published two seconds after a fetch
// verifies at once through the early budget, where the cooldown alone
// (EarlyRefetchBurst < 0, today's rule) refuses it for the rest of the 30s.
// Once an attacker has spent the budget, the rotation still comes with the
// next token of the budget's refill, no later than the cooldown.
func TestEarlyRefetchRotation(t *testing.T) {
	testKeys(t)
	const cooldown = 30 * time.Second
	for _, tc := range []struct {
		name  string
		burst int
		want  string // Reason of the new key's token 2s after the rotation
	}{
		{"early refetch (default)", 0, ""},
		{"early refetch off", -1, "unknown_kid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
			clock := newFakeClock()
			ks := newRemote(t, f, clock, func(c *KeySetConfig) {
				c.RefetchCooldown = cooldown
				c.EarlyRefetchBurst = tc.burst
			})
			v := remoteVerifier(t, f, ks, clock)
			ctx := context.Background()
			if _, err := v.Verify(ctx, tokenRS256(t, issuerClaims(f, clock.Now()))); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Second)
			f.setJWKS(jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey), rsaJWK("rsa2", &rsaKey2.PublicKey)))
			newTok := signRaw(t, jwt.SigningMethodRS256, rsaKey2, rsHeader("rsa2"), mustJSON(t, issuerClaims(f, clock.Now())))
			_, err := v.Verify(ctx, newTok)
			if Reason(err) != tc.want {
				t.Fatalf("new key's token: %v, want reason %q", err, tc.want)
			}
			if tc.want == "" && ks.Fetches() != 2 {
				t.Fatalf("%d fetches, want 2", ks.Fetches())
			}
			clock.Advance(cooldown)
			if _, err := v.Verify(ctx, newTok); err != nil {
				t.Fatalf("after the cooldown: %v", err)
			}
		})
	}

	t.Run("budget spent by a flood", func(t *testing.T) {
		f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
		clock := newFakeClock()
		ks := newRemote(t, f, clock, func(c *KeySetConfig) { c.RefetchCooldown = cooldown })
		v := remoteVerifier(t, f, ks, clock)
		ctx := context.Background()
		if _, err := v.Verify(ctx, tokenRS256(t, issuerClaims(f, clock.Now()))); err != nil {
			t.Fatal(err)
		}
		junk := mustJSON(t, issuerClaims(f, clock.Now()))
		for range 4 { // spend the budget: one early fetch per second while it lasts
			clock.Advance(time.Second)
			_, _ = v.Verify(ctx, signRaw(t, jwt.SigningMethodRS256, rsaAttack, rsHeader(randomKid()), junk))
		}
		spent := ks.Fetches()
		if spent != 1+DefaultEarlyRefetchBurst {
			t.Fatalf("%d fetches after the flood, want %d", spent, 1+DefaultEarlyRefetchBurst)
		}
		f.setJWKS(jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey), rsaJWK("rsa2", &rsaKey2.PublicKey)))
		newTok := signRaw(t, jwt.SigningMethodRS256, rsaKey2, rsHeader("rsa2"), mustJSON(t, issuerClaims(f, clock.Now())))
		if _, err := v.Verify(ctx, newTok); Reason(err) != "unknown_kid" {
			t.Fatalf("budget spent, new key's token: %v, want unknown_kid", err)
		}
		clock.Advance(cooldown)
		if _, err := v.Verify(ctx, newTok); err != nil {
			t.Fatalf("a cooldown later: %v", err)
		}
	})
}

// TestJWKSOutageR1 is reliability scenario R1: with keys cached, the JWKS
// returning 503 or hanging changes nothing for known kids; an unknown kid is
// rejected within the fetch timeout; fetches stay within one per cooldown.
func TestJWKSOutageR1(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode int32
	}{{"503", 1}, {"hang", 2}} {
		t.Run(mode.name, func(t *testing.T) {
			testKeys(t)
			f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
			clock := newFakeClock()
			obs := &countingObserver{}
			const fetchTimeout = 200 * time.Millisecond
			ks := newRemote(t, f, clock, func(c *KeySetConfig) {
				c.FetchTimeout = fetchTimeout
				c.RefetchCooldown = 10 * time.Second
				c.Observer = obs
			})
			v := remoteVerifier(t, f, ks, clock)
			ctx := context.Background()
			if _, err := v.Verify(ctx, tokenRS256(t, issuerClaims(f, clock.Now()))); err != nil {
				t.Fatal(err)
			}
			f.mode.Store(mode.mode)

			unknown := signRaw(t, jwt.SigningMethodRS256, rsaKey2, rsHeader("rotated"), mustJSON(t, issuerClaims(f, clock.Now())))
			for window := range 3 {
				clock.Advance(11 * time.Second) // a new cooldown window each time
				var wg sync.WaitGroup
				var mu sync.Mutex
				var slowest time.Duration
				for range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						start := time.Now()
						_, err := v.Verify(ctx, unknown)
						d := time.Since(start)
						mu.Lock()
						slowest = max(slowest, d)
						mu.Unlock()
						if r := Reason(err); r != "unknown_kid" {
							t.Errorf("unknown kid during outage: reason %q", r)
						}
					}()
				}
				// Known kids keep verifying, without waiting for the fetch.
				for i := range 50 {
					// Sign before timing: only the verification must not
					// wait (RSA signing on a loaded machine took >100ms).
					c := issuerClaims(f, clock.Now())
					c["jti"] = strconv.Itoa(i)
					tok := tokenRS256(t, c)
					start := time.Now()
					if _, err := v.Verify(ctx, tok); err != nil {
						t.Fatalf("known kid rejected during outage: %v", err)
					}
					if d := time.Since(start); d > fetchTimeout/2 {
						t.Fatalf("known kid waited %v", d)
					}
				}
				wg.Wait()
				if slowest > fetchTimeout+150*time.Millisecond {
					t.Fatalf("unknown kid answered after %v, fetch timeout %v", slowest, fetchTimeout)
				}
				if n := ks.Fetches(); n != int64(2+window) {
					t.Fatalf("window %d: %d fetches, want %d", window, n, 2+window)
				}
			}
			if obs.fetchErrs.Load() != 3 || obs.fetches.Load() != 4 {
				t.Fatalf("observer saw %d fetches, %d errors", obs.fetches.Load(), obs.fetchErrs.Load())
			}
			// Recovery without restart.
			f.mode.Store(0)
			f.setJWKS(jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey), rsaJWK("rotated", &rsaKey2.PublicKey)))
			clock.Advance(11 * time.Second)
			if _, err := v.Verify(ctx, unknown); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}

// TestKeyRotationR2 is reliability scenario R2: a new key published beside
// the old one; 50 concurrent first tokens with the new kid cause exactly one
// fetch and no false rejection; then signing switches.
func TestKeyRotationR2(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	clock := newFakeClock()
	ks := newRemote(t, f, clock, nil)
	v := remoteVerifier(t, f, ks, clock)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tokenRS256(t, issuerClaims(f, clock.Now()))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	f.setJWKS(jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey), rsaJWK("rsa2", &rsaKey2.PublicKey)))
	f.delay.Store(int64(30 * time.Millisecond)) // keep the fetch in flight while callers pile up

	payload := mustJSON(t, issuerClaims(f, clock.Now()))
	newTok := signRaw(t, jwt.SigningMethodRS256, rsaKey2, rsHeader("rsa2"), payload)
	before := ks.Fetches()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := v.Verify(ctx, newTok)
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("false rejection during rotation: %v", err)
		}
	}
	if n := ks.Fetches() - before; n != 1 {
		t.Fatalf("%d fetches for 50 concurrent first tokens, want 1", n)
	}
	// Both keys keep working; the old one until it is unpublished.
	for _, tok := range []string{tokenRS256(t, issuerClaims(f, clock.Now())), newTok} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemoteKeySetRotationRace stresses callers arriving right after a fetch
// completes: they must see the new keys rather than hit the cooldown.
func TestRemoteKeySetRotationRace(t *testing.T) {
	testKeys(t)
	for range 20 {
		f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey), rsaJWK("rsa2", &rsaKey2.PublicKey)))
		clock := newFakeClock()
		ks := newRemote(t, f, clock, nil)
		var wg sync.WaitGroup
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := ks.Key(context.Background(), "rsa2", "RS256"); err != nil {
					t.Errorf("Key: %v", err)
				}
			}()
		}
		wg.Wait()
		if ks.Fetches() != 1 {
			t.Fatalf("%d fetches", ks.Fetches())
		}
		ks.Close()
	}
}

// TestRemoteKeySetMissThenFetchCompletes makes the race deterministic: a
// caller misses, then a fetch by another caller completes (inside the
// cooldown) before the first takes the lock. It must find the new key rather
// than be refused by the cooldown.
func TestRemoteKeySetMissThenFetchCompletes(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	clock := newFakeClock()
	ks := newRemote(t, f, clock, nil)
	ctx := context.Background()
	if _, err := ks.Key(ctx, "rsa1", "RS256"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	f.setJWKS(jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey), rsaJWK("rsa2", &rsaKey2.PublicKey)))
	first := true
	ks.afterMiss = func() {
		if first {
			first = false
			if _, err := ks.Key(ctx, "rsa2", "RS256"); err != nil {
				t.Errorf("other caller: %v", err)
			}
		}
	}
	if _, err := ks.Key(ctx, "rsa2", "RS256"); err != nil {
		t.Fatalf("caller that missed before the fetch completed was refused: %v", err)
	}
	if ks.Fetches() != 2 {
		t.Fatalf("%d fetches, want 2", ks.Fetches())
	}
}

func TestRemoteKeySetFailures(t *testing.T) {
	testKeys(t)
	big := append(jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey))[:0:0], []byte(`{"keys":[`)...)
	for i := range 2000 {
		if i > 0 {
			big = append(big, ',')
		}
		big = append(big, mustJSON(t, rsaJWK("k"+strings.Repeat("x", 10), &rsaKey.PublicKey))...)
	}
	big = append(big, "]}"...)
	tests := []struct {
		name   string
		body   []byte
		mode   int32
		reason string
	}{
		{"body over MaxBodyBytes", big, 0, "keys_unavailable"},
		{"not JSON", []byte("<html>"), 0, "keys_unavailable"},
		{"no keys member", []byte(`{"kids":[]}`), 0, "keys_unavailable"},
		{"only unusable keys", jwksDoc(t, map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "rsa1"}), 0, "keys_unavailable"},
		{"503", nil, 1, "keys_unavailable"},
		{"hang", nil, 2, "keys_unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIssuer(t, tc.body)
			f.mode.Store(tc.mode)
			clock := newFakeClock()
			var logs bytes.Buffer
			ks := newRemote(t, f, clock, func(c *KeySetConfig) {
				c.MaxBodyBytes = 64 << 10
				c.FetchTimeout = 100 * time.Millisecond
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			start := time.Now()
			_, err := ks.Key(context.Background(), "rsa1", "RS256")
			if Reason(err) != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", Reason(err), tc.reason, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v", d)
			}
			if !strings.Contains(logs.String(), "jwks fetch failed") {
				t.Fatalf("failure not logged: %q", logs.String())
			}
		})
	}
}

// TestRemoteKeySetKeepsKeysOnBadRefresh: a refresh that fails or serves junk
// keeps the previous keys.
func TestRemoteKeySetKeepsKeysOnBadRefresh(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	ks := newRemote(t, f, newFakeClock(), nil)
	ctx := context.Background()
	if err := ks.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{[]byte("junk"), []byte(`{"keys":[]}`)} {
		f.setJWKS(body)
		if err := ks.Refresh(ctx); err == nil {
			t.Fatal("bad JWKS accepted")
		}
		if _, err := ks.Key(ctx, "rsa1", "RS256"); err != nil {
			t.Fatalf("old key lost: %v", err)
		}
	}
}

func TestRemoteKeySetKeyTypeConfusion(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey), ecJWK("ec1", &ecKey.PublicKey)))
	ks := newRemote(t, f, newFakeClock(), nil)
	ctx := context.Background()
	tests := []struct {
		kid, alg, reason string
	}{
		{"rsa1", "RS256", ""},
		{"ec1", "ES256", ""},
		{"rsa1", "ES256", "algorithm"},
		{"ec1", "RS256", "algorithm"},
		{"ec1", "ES384", "algorithm"},
		{"rsa1", "RS384", "algorithm"}, // the JWK says alg RS256
		{"rsa1", "HS256", "algorithm"},
		{"", "ES256", ""},
		{"nope", "RS256", "unknown_kid"},
	}
	for _, tc := range tests {
		_, err := ks.Key(ctx, tc.kid, tc.alg)
		if Reason(err) != tc.reason {
			t.Errorf("Key(%q, %q): reason %q, want %q", tc.kid, tc.alg, Reason(err), tc.reason)
		}
	}
	if ks.Fetches() != 1 {
		t.Fatalf("type mismatches triggered refetches: %d", ks.Fetches())
	}
}

func TestRemoteKeySetDiscoversLazily(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	clock := newFakeClock()
	ks := newRemote(t, f, clock, func(c *KeySetConfig) { c.JWKSURI = "" })
	if f.metaHits.Load() != 0 {
		t.Fatal("discovery ran eagerly")
	}
	if _, err := ks.Key(context.Background(), "rsa1", "RS256"); err != nil {
		t.Fatal(err)
	}
	if f.metaHits.Load() != 1 || ks.Fetches() != 1 {
		t.Fatalf("meta hits %d, fetches %d", f.metaHits.Load(), ks.Fetches())
	}
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.metaHits.Load() != 1 {
		t.Fatal("discovery repeated on refresh")
	}
}

func TestRemoteKeySetMissingJWKSURI(t *testing.T) {
	f := newFakeIssuer(t, nil)
	f.omitJWKSUR = true
	ks := newRemote(t, f, newFakeClock(), func(c *KeySetConfig) { c.JWKSURI = "" })
	if _, err := ks.Key(context.Background(), "rsa1", "RS256"); Reason(err) != "keys_unavailable" {
		t.Fatalf("err = %v", err)
	}
	if ks.Fetches() != 0 {
		t.Fatal("fetched a JWKS without a jwks_uri")
	}
}

func TestNewRemoteKeySetConfig(t *testing.T) {
	for _, iss := range []string{"", "issuer", "ftp://x", "https://x?q=1", "https://x#f"} {
		if _, err := NewRemoteKeySet(KeySetConfig{Issuer: iss}); err == nil {
			t.Errorf("issuer %q accepted", iss)
		}
	}
	ks, err := NewRemoteKeySet(KeySetConfig{Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	c := ks.cfg
	if c.FetchTimeout != 5*time.Second || c.MaxBodyBytes != 1<<20 || c.RefreshInterval != 15*time.Minute ||
		c.RefetchCooldown != 30*time.Second || ks.client.Timeout != 5*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestRemoteKeySetStartClose: the periodic refresh runs, and stops (no
// goroutine left) on Close or when Start's context ends.
func TestRemoteKeySetStartClose(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	base := runtime.NumGoroutine()

	for _, how := range []string{"close", "cancel"} {
		ks := newRemote(t, f, newFakeClock(), func(c *KeySetConfig) { c.RefreshInterval = 10 * time.Millisecond })
		ctx, cancel := context.WithCancel(context.Background())
		ks.Start(ctx)
		ks.Start(ctx) // second Start is a no-op
		deadline := time.Now().Add(2 * time.Second)
		for ks.Fetches() < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if ks.Fetches() < 3 {
			t.Fatalf("%s: periodic refresh did not run: %d fetches", how, ks.Fetches())
		}
		if how == "cancel" {
			cancel()
			time.Sleep(30 * time.Millisecond)
			n := ks.Fetches()
			time.Sleep(50 * time.Millisecond)
			if ks.Fetches() != n {
				t.Fatal("refresh continued after its context ended")
			}
		}
		ks.Close()
		ks.Close() // idempotent
		cancel()
		n := ks.Fetches()
		time.Sleep(30 * time.Millisecond)
		if ks.Fetches() != n {
			t.Fatalf("%s: refresh continued after Close", how)
		}
		ks.Start(context.Background()) // Start after Close does nothing
		if _, err := ks.Key(context.Background(), "rsa1", "RS256"); err != nil {
			t.Fatalf("cached key unavailable after Close: %v", err)
		}
	}
	f.srv.CloseClientConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("goroutines: %d before, %d after Close", base, n)
	}
}

// TestRemoteKeySetCloseDuringFetch: Close cancels a hanging fetch and
// returns promptly; waiters are released.
func TestRemoteKeySetCloseDuringFetch(t *testing.T) {
	f := newFakeIssuer(t, nil)
	f.mode.Store(2)
	ks := newRemote(t, f, newFakeClock(), func(c *KeySetConfig) { c.FetchTimeout = time.Minute })
	done := make(chan error)
	go func() {
		_, err := ks.Key(context.Background(), "rsa1", "RS256")
		done <- err
	}()
	for f.jwksHits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	ks.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := <-done; Reason(err) != "keys_unavailable" {
		t.Fatalf("waiter: %v", err)
	}
	if _, err := ks.Key(context.Background(), "rsa1", "RS256"); Reason(err) != "keys_unavailable" || ks.Fetches() != 1 {
		t.Fatalf("fetched after Close: %v, %d", err, ks.Fetches())
	}
}

// TestRemoteKeySetCallerContext: a caller whose context ends stops waiting,
// while the shared fetch continues for others.
func TestRemoteKeySetCallerContext(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	f.delay.Store(int64(100 * time.Millisecond))
	ks := newRemote(t, f, newFakeClock(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := ks.Key(ctx, "rsa1", "RS256"); Reason(err) != "keys_unavailable" {
		t.Fatalf("err = %v", err)
	}
	if _, err := ks.Key(context.Background(), "rsa1", "RS256"); err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if ks.Fetches() != 1 {
		t.Fatalf("%d fetches", ks.Fetches())
	}
}

// TestRemoteKeySetIgnoresTokenURLs is case 5 against a RemoteKeySet: key URLs
// and embedded keys in token headers never cause a request to them; the only
// fetch goes to the issuer's own JWKS.
func TestRemoteKeySetIgnoresTokenURLs(t *testing.T) {
	testKeys(t)
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		_, _ = w.Write(jwksDoc(t, rsaJWK("attacker", &rsaAttack.PublicKey)))
	}))
	defer evil.Close()
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	clock := newFakeClock()
	ks := newRemote(t, f, clock, func(c *KeySetConfig) { c.JWKSURI = "" })
	v := remoteVerifier(t, f, ks, clock)
	payload := mustJSON(t, issuerClaims(f, clock.Now()))
	headers := []map[string]any{
		{"alg": "RS256", "typ": "at+jwt", "kid": "attacker", "jku": evil.URL + "/jwks"},
		{"alg": "RS256", "typ": "at+jwt", "kid": "attacker", "x5u": evil.URL + "/cert"},
		{"alg": "RS256", "typ": "at+jwt", "kid": "attacker", "jwk": rsaJWK("attacker", &rsaAttack.PublicKey)},
		{"alg": "RS256", "typ": "at+jwt", "kid": "attacker", "x5c": []string{"MIIB"}},
		{"alg": "RS256", "typ": "at+jwt", "kid": evil.URL + "/jwks"},
		{"alg": "RS256", "typ": "at+jwt", "kid": "rsa1", "jku": evil.URL + "/jwks"},
	}
	for _, h := range headers {
		if _, err := v.Verify(context.Background(), signRaw(t, jwt.SigningMethodRS256, rsaAttack, h, payload)); err == nil {
			t.Fatalf("attacker token with header %v accepted", h)
		}
	}
	if evilHits.Load() != 0 {
		t.Fatalf("attacker server got %d requests", evilHits.Load())
	}
	if ks.Fetches() != 1 || f.metaHits.Load() != 1 {
		t.Fatalf("issuer fetches %d, metadata %d; want 1 and 1", ks.Fetches(), f.metaHits.Load())
	}
}

// TestRemoteKeySetNeverLoaded: while an issuer's keys have never loaded,
// lookups fail with ErrKeysUnavailable (not an invalid token), and a lookup
// retries the fetch after UnloadedRetryBackoff instead of the much longer
// RefetchCooldown, so valid tokens work again within a second of the JWKS
// recovering. Once keys have loaded, the normal cooldown applies again.
func TestRemoteKeySetNeverLoaded(t *testing.T) {
	testKeys(t)
	f := newFakeIssuer(t, jwksDoc(t, rsaJWK("rsa1", &rsaKey.PublicKey)))
	f.mode.Store(1) // 503
	clock := newFakeClock()
	ks := newRemote(t, f, clock, nil) // RefetchCooldown: 1m
	steps := []struct {
		name        string
		advance     time.Duration
		up          bool
		kid         string
		wantErr     error // nil: key found
		wantFetches int64
	}{
		{"first lookup while down", 0, false, "rsa1", ErrKeysUnavailable, 1},
		{"within backoff: no fetch", UnloadedRetryBackoff / 2, false, "rsa1", ErrKeysUnavailable, 1},
		{"after backoff, still down", UnloadedRetryBackoff, false, "rsa1", ErrKeysUnavailable, 2},
		{"JWKS back, within backoff", 0, true, "rsa1", ErrKeysUnavailable, 2},
		{"JWKS back, after backoff (long before the cooldown)", UnloadedRetryBackoff, true, "rsa1", nil, 3},
		{"loaded: unknown kid within the cooldown, no fetch", 0, true, "other", ErrInvalidToken, 3},
		{"loaded: the full cooldown applies again", 2 * UnloadedRetryBackoff, true, "other", ErrInvalidToken, 3},
		{"loaded: after the cooldown, one fetch", time.Minute, true, "other", ErrInvalidToken, 4},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.up {
			f.mode.Store(0)
		}
		_, err := ks.Key(context.Background(), s.kid, "RS256")
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.wantErr != nil && !errors.Is(err, s.wantErr):
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		case errors.Is(s.wantErr, ErrKeysUnavailable) && errors.Is(err, ErrInvalidToken):
			t.Fatalf("%s: ErrKeysUnavailable must not wrap ErrInvalidToken", s.name)
		}
		if got := ks.Fetches(); got != s.wantFetches {
			t.Fatalf("%s: fetches %d, want %d", s.name, got, s.wantFetches)
		}
	}
}
