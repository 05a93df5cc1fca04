package idp

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Rotation with overlap: a successor is published KeyPrePublish before it signs; the old key
// stays published until the tokens it signed have expired; tokens of both verify throughout.
func TestKeyRotationOverlap(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.KeyRotationInterval = 24 * time.Hour
		o.KeyPrePublish = time.Hour
		o.AccessTokenTTL = time.Hour
	})
	ctx := context.Background()
	c := e.register(nil)
	k1 := kidOf(t, e.login(c, "u1", "")["access_token"].(string))
	if len(fetchJWKS(t, e)) != 1 {
		t.Fatalf("want one key at start")
	}

	// 23h30m: within the pre-publish window a successor appears but does not sign yet.
	e.clock.Advance(23*time.Hour + 30*time.Minute)
	if err := e.srv.keys.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	keys := fetchJWKS(t, e)
	if len(keys) != 2 {
		t.Fatalf("successor not pre-published: %d keys", len(keys))
	}
	e.clock.Advance(59 * time.Minute) // 24h29m
	old := e.login(c, "u2", "")["access_token"].(string)
	if kidOf(t, old) != k1 {
		t.Fatalf("successor signs before its activation")
	}

	// One full KeyPrePublish after it appeared (24h30m) the successor signs; the old key is still
	// published (old tokens valid).
	e.clock.Advance(2 * time.Minute)
	if err := e.srv.keys.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	nt := e.login(c, "u3", "")["access_token"].(string)
	k2 := kidOf(t, nt)
	if k2 == k1 {
		t.Fatalf("signing did not switch to the successor")
	}
	if _, ok := fetchJWKS(t, e)[k1]; !ok {
		t.Fatalf("old key removed while its tokens are valid")
	}
	verifyWithJWKS(t, e, old)
	verifyWithJWKS(t, e, nt)

	// After old tokens expired (+ margin), the old key disappears.
	e.clock.Advance(time.Hour + 6*time.Minute)
	if err := e.srv.keys.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	keys = fetchJWKS(t, e)
	if _, ok := keys[k1]; ok || len(keys) != 1 {
		t.Fatalf("old key still published after its tokens expired: %d keys", len(keys))
	}
}

// Two Servers on one store (a Caddy reload overlaps old and new instances): keys created by one
// are published and accepted by the other.
func TestKeysSharedStore(t *testing.T) {
	mem := NewMemoryStore()
	key := make([]byte, 32)
	clock := newFakeClock()
	mk := func() *Server {
		s, err := New(Options{Issuer: "https://idp.example", Store: mem, EncryptionKey: key, DevLogin: true, Now: clock.Now,
			KeyRotationInterval: 24 * time.Hour, KeyPrePublish: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := mk(), mk()
	if len(a.keys.jwks()) != 1 || len(b.keys.jwks()) != 1 || a.keys.jwks()[0].Kid != b.keys.jwks()[0].Kid {
		t.Fatalf("instances do not share the first key")
	}
	clock.Advance(24 * time.Hour)
	if err := a.keys.maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour + time.Second)
	_ = a.keys.maintain(context.Background())
	tok, jti, _, err := a.mintAccessToken("dev:x", "c", "mcp", "https://r.example", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	_ = a.putJSON(context.Background(), bucketClients, "c", clientRecord{ClientID: "c"})
	_ = a.putJSON(context.Background(), bucketFamilies, "f", familyRecord{Exp: clock.Now().Add(time.Hour).Unix()})
	_ = a.putJSON(context.Background(), bucketAccess, jti, accessRecord{FamilyID: "f", Exp: clock.Now().Add(time.Hour).Unix()})
	if kidOf(t, tok) == b.keys.jwks()[0].Kid {
		t.Fatalf("a did not rotate")
	}
	// b has not run maintenance yet: the unknown kid triggers a reload from the store.
	if _, err := b.verifyAccessToken(context.Background(), tok); err != nil {
		t.Fatalf("b rejects a's new key: %v", err)
	}
	if len(b.keys.jwks()) != 2 {
		t.Fatalf("b publishes %d keys, want 2", len(b.keys.jwks()))
	}
}

// addKeyBarrier holds every AddKey until n have been called, so n Servers starting at once all
// read an empty key set and race to add the first key.
type addKeyBarrier struct {
	Storage
	n       int
	mu      sync.Mutex
	calls   int
	release chan struct{}
}

func (b *addKeyBarrier) AddKey(ctx context.Context, rec keyRecord, newest string) error {
	b.mu.Lock()
	b.calls++
	if b.calls == b.n {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Storage.AddKey(ctx, rec, newest)
}

// Two Servers on one Storage starting at once (two replicas): both find no key and try to create
// the first one; one wins, the other reloads, and both sign with the same kid.
func TestKeysConcurrentStart(t *testing.T) {
	testKeysConcurrentStart(t, NewKVStorage(NewMemoryStore()))
}

func testKeysConcurrentStart(t *testing.T, st Storage) {
	b := &addKeyBarrier{Storage: st, n: 2, release: make(chan struct{})}
	key := make([]byte, 32)
	clock := newFakeClock()
	srvs := make([]*Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range srvs {
		wg.Go(func() {
			srvs[i], errs[i] = New(Options{Issuer: "https://idp.example", Storage: b, EncryptionKey: key, DevLogin: true, Now: clock.Now})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		t.Cleanup(func() { srvs[i].Close() })
	}
	if b.calls != 2 {
		t.Fatalf("%d AddKey calls, want 2 (both servers raced for the first key)", b.calls)
	}
	var kids []string
	for _, s := range srvs {
		k, err := s.keys.current()
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, k.kid)
		if jw := s.keys.jwks(); len(jw) != 1 || jw[0].Kid != k.kid {
			t.Fatalf("server publishes %+v, want only its signing key %s", jw, k.kid)
		}
	}
	if kids[0] != kids[1] {
		t.Fatalf("the servers sign with different keys: %v", kids)
	}
	keys, err := st.ListKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("stored keys = %d (%v), want 1", len(keys), err)
	}
}
