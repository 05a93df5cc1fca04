package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// funcSource is a TokenSource from a function.
type funcSource func(ctx context.Context, c *jwtverify.Claims, subject string) (Token, error)

func (f funcSource) UpstreamToken(ctx context.Context, c *jwtverify.Claims, s string) (Token, error) {
	return f(ctx, c, s)
}

func TestUpstreamCache(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	var calls atomic.Int64
	expiry := atomic.Int64{} // seconds from now; 0 = none
	src := funcSource(func(_ context.Context, c *jwtverify.Claims, _ string) (Token, error) {
		calls.Add(1)
		tok := Token{Value: "tok-" + c.Issuer + "-" + c.Subject}
		if e := expiry.Load(); e > 0 {
			tok.Expiry = clock.Now().Add(time.Duration(e) * time.Second)
		}
		return tok, nil
	})
	u := newUpstreamCache(src, 10, time.Minute, time.Second, clock.Now)
	alice := &jwtverify.Claims{Issuer: "https://a", Subject: "alice"}
	aliceOther := &jwtverify.Claims{Issuer: "https://b", Subject: "alice"}
	get := func(c *jwtverify.Claims) string {
		t.Helper()
		tok, err := u.Get(context.Background(), c, "subject")
		if err != nil {
			t.Fatal(err)
		}
		return tok.Value
	}
	if get(alice) != "tok-https://a-alice" || get(alice) != "tok-https://a-alice" || calls.Load() != 1 {
		t.Fatalf("cache miss then hit: calls=%d", calls.Load())
	}
	// Same subject at another issuer is another user.
	if get(aliceOther) != "tok-https://b-alice" || calls.Load() != 2 {
		t.Fatalf("issuer not part of the key: calls=%d", calls.Load())
	}
	// TTL bounds a token without expiry.
	clock.Advance(61 * time.Second)
	get(alice)
	if calls.Load() != 3 {
		t.Fatalf("entry served past the TTL: calls=%d", calls.Load())
	}
	// Never past the token's own expiry (minus skew).
	expiry.Store(30)
	clock.Advance(2 * time.Minute)
	get(alice) // refetch: expires in 30s, cached until 20s
	clock.Advance(15 * time.Second)
	get(alice)
	if calls.Load() != 4 {
		t.Fatalf("calls=%d, want 4", calls.Load())
	}
	clock.Advance(6 * time.Second) // 21s: inside the skew
	get(alice)
	if calls.Load() != 5 {
		t.Fatalf("token served within the expiry skew: calls=%d", calls.Load())
	}
	// A token already about to expire is not cached at all.
	expiry.Store(5)
	clock.Advance(time.Hour)
	get(alice)
	get(alice)
	if calls.Load() != 7 {
		t.Fatalf("short-lived token cached: calls=%d", calls.Load())
	}
}

func TestUpstreamCacheErrorsAndSharing(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	var calls atomic.Int64
	release := make(chan struct{})
	src := funcSource(func(ctx context.Context, c *jwtverify.Claims, _ string) (Token, error) {
		calls.Add(1)
		switch c.Subject {
		case "unlinked":
			return Token{}, ErrNoUpstreamToken
		case "empty":
			return Token{}, nil
		case "crlf":
			return Token{Value: "a\r\nX-Injected: 1"}, nil
		case "slow":
			<-ctx.Done()
			return Token{}, ctx.Err()
		}
		<-release
		return Token{Value: "shared"}, nil
	})
	u := newUpstreamCache(src, -1, time.Minute, 100*time.Millisecond, clock.Now)
	for sub, want := range map[string]error{"unlinked": ErrNoUpstreamToken, "empty": ErrNoUpstreamToken, "crlf": ErrSourceUnavailable} {
		if _, err := u.Get(context.Background(), &jwtverify.Claims{Subject: sub}, "s"); !errors.Is(err, want) {
			t.Errorf("%s: err %v, want %v", sub, err, want)
		}
	}
	// The shared call is bounded by the timeout.
	start := time.Now()
	if _, err := u.Get(context.Background(), &jwtverify.Claims{Subject: "slow"}, "s"); err == nil || time.Since(start) > time.Second {
		t.Errorf("slow source: err %v after %v", err, time.Since(start))
	}
	// Concurrent misses for one user share one call, even uncached.
	calls.Store(0)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := u.Get(context.Background(), &jwtverify.Claims{Subject: "bob"}, "s")
			if err != nil || tok.Value != "shared" {
				t.Errorf("got %v %v", tok.Value, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("calls = %d, want 1", calls.Load())
	}
	// A waiter whose request is canceled leaves without waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := u.Get(ctx, &jwtverify.Claims{Subject: "slow"}, "s"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrSourceUnavailable) {
		t.Errorf("canceled waiter: %v, want context.Canceled and not ErrSourceUnavailable", err)
	}
}

// TestUpstreamCacheEmptySubject: tokens without a subject never share an
// upstream token, neither through the cache nor a collapsed call: each
// request asks the source with its own subject token.
func TestUpstreamCacheEmptySubject(t *testing.T) {
	var calls atomic.Int64
	src := funcSource(func(_ context.Context, _ *jwtverify.Claims, subject string) (Token, error) {
		calls.Add(1)
		return Token{Value: "for-" + subject}, nil
	})
	u := newUpstreamCache(src, 10, time.Minute, time.Second, time.Now)
	anon := &jwtverify.Claims{Issuer: "https://a"}
	for i, c := range []struct {
		subjectToken, want string
	}{
		{"token-A", "for-token-A"},
		{"token-B", "for-token-B"},
		{"token-A", "for-token-A"},
	} {
		tok, err := u.Get(context.Background(), anon, c.subjectToken)
		if err != nil || tok.Value != c.want {
			t.Fatalf("request %d: got %q, %v; want %q", i, tok.Value, err, c.want)
		}
		if calls.Load() != int64(i+1) {
			t.Fatalf("request %d: source calls %d, want %d (an empty subject must not be cached)", i, calls.Load(), i+1)
		}
	}
}

// TestUpstreamCachePanickingSource: a panicking source does not crash the
// process (singleflight re-panics in its own goroutine, which nothing could
// recover); the caller gets a wrapped ErrSourceUnavailable, for a shared and
// for an unshared (empty subject) call, and the report carries the panic's
// type and stack but never its value.
func TestUpstreamCachePanickingSource(t *testing.T) {
	for _, c := range []struct {
		name string
		sub  string
	}{{"shared call", "alice"}, {"unshared call", ""}} {
		t.Run(c.name, func(t *testing.T) {
			src := funcSource(func(context.Context, *jwtverify.Claims, string) (Token, error) {
				panic("buggy source leaking gho_secretvalue")
			})
			u := newUpstreamCache(src, 10, time.Minute, time.Second, time.Now)
			var gotType string
			var gotStack []byte
			u.onPanic = func(typ string, stack []byte) { gotType, gotStack = typ, stack }
			var latencyErr error
			u.latency = func(_ time.Duration, err error) { latencyErr = err }
			_, err := u.Get(context.Background(), &jwtverify.Claims{Issuer: "https://a", Subject: c.sub}, "s")
			if !errors.Is(err, ErrSourceUnavailable) || !errors.Is(latencyErr, ErrSourceUnavailable) {
				t.Fatalf("err = %v, latency err = %v; want ErrSourceUnavailable", err, latencyErr)
			}
			if gotType != "string" || len(gotStack) == 0 || strings.Contains(string(gotStack)+err.Error(), "gho_secretvalue") {
				t.Fatalf("panic report type %q, stack %d bytes, or the value leaked", gotType, len(gotStack))
			}
		})
	}
}

// TestHandlerPanickingSource: through the handler, a panicking source is a
// 503 with Retry-After, logged once at error level without the token.
func TestHandlerPanickingSource(t *testing.T) {
	env := newTestEnv(t, nil)
	env.h.upstream.source = funcSource(func(context.Context, *jwtverify.Claims, string) (Token, error) {
		panic(errors.New("boom gho_secretvalue"))
	})
	tok := env.validToken("github:1")
	w := env.do(bearerRequest("POST", "/mcp", tok))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || env.backend.Calls() != 0 {
		t.Fatalf("status %d, Retry-After %q, backend calls %d", w.Code, w.Header().Get("Retry-After"), env.backend.Calls())
	}
	entries := env.logs.FilterMessage("upstream token source panicked; answering 503").All()
	if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel {
		t.Fatalf("panic log entries: %v", entries)
	}
	for _, e := range env.logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(b)+e.Message, "gho_secretvalue") || strings.Contains(string(b), tok) {
			t.Fatalf("log line leaks a token: %s", e.Message)
		}
	}
}

// TestHandlerClientGoneWhileWaiting: a client that disconnects while the
// gateway waits for the token source (or for a JWKS fetch) is a client-side
// event: 499 "canceled", counted as rejected not as a fault, logged at
// debug, and nothing at error level.
func TestHandlerClientGoneWhileWaiting(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(env *testEnv) string // returns the token
	}{
		{"waiting for the token source", func(env *testEnv) string {
			env.exchange.delay.Store(int64(time.Second))
			return env.validToken("github:1")
		}},
		{"waiting for the JWKS", func(env *testEnv) string {
			env.issuer.jwksDelay.Store(int64(time.Second))
			return env.validToken("github:1")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.JWKSFetchTimeout = caddy.Duration(5 * time.Second) })
			tok := c.setup(env)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			w := env.do(bearerRequest("POST", "/mcp", tok).WithContext(ctx))
			m := env.h.metrics
			if w.Code != 499 || env.backend.Calls() != 0 {
				t.Fatalf("status %d, backend calls %d; want 499, 0", w.Code, env.backend.Calls())
			}
			if f, r := testutil.ToFloat64(m.requests.WithLabelValues(outcomeFault, "canceled")), testutil.ToFloat64(m.requests.WithLabelValues(outcomeRejected, "canceled")); f != 0 || r != 1 {
				t.Fatalf("fault canceled %v, rejected canceled %v; want 0, 1", f, r)
			}
			if n := env.logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
				t.Fatalf("%d error log lines for a client disconnect", n)
			}
			if env.logs.FilterMessage("request rejected").FilterField(zap.String("reason", "canceled")).Len() != 1 {
				t.Fatal("no debug line with reason canceled")
			}
		})
	}
}

// BenchmarkUpstreamCacheHitParallel is a cache hit from GOMAXPROCS
// goroutines at once (run it with -cpu 1,2,...), for one user, as in the
// load benchmark's (c), and for many: contention in the cache shows as
// ns/op that fails to fall with more CPUs.
func BenchmarkUpstreamCacheHitParallel(b *testing.B) {
	for _, users := range []int{1, 1000} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			src := funcSource(func(context.Context, *jwtverify.Claims, string) (Token, error) {
				return Token{Value: "upstream"}, nil
			})
			u := newUpstreamCache(src, DefaultUpstreamCacheSize, time.Hour, time.Second, time.Now)
			ctx := context.Background()
			claims := make([]*jwtverify.Claims, users)
			for i := range claims {
				claims[i] = &jwtverify.Claims{Issuer: "https://issuer", Subject: "user-" + strconv.Itoa(i)}
				if _, err := u.Get(ctx, claims[i], "subject"); err != nil {
					b.Fatal(err)
				}
			}
			var seed atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					if _, err := u.Get(ctx, claims[i%users], "subject"); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// TestUpstreamCacheRecency: hits keep an active user's token cached;
// eviction takes the least recently used user, exactly in a small cache
// (window 0) and within the window in a larger one.
func TestUpstreamCacheRecency(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{{"exact", 3}, {"windowed", 40}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
			var calls atomic.Int64
			src := funcSource(func(_ context.Context, c *jwtverify.Claims, _ string) (Token, error) {
				calls.Add(1)
				return Token{Value: "tok-" + c.Subject}, nil
			})
			u := newUpstreamCache(src, tt.size, time.Hour, time.Second, clock.Now)
			user := func(i int) *jwtverify.Claims {
				return &jwtverify.Claims{Issuer: "https://a", Subject: "u" + strconv.Itoa(i)}
			}
			cached := func(i int) bool { return u.lru.Contains(upstreamKey{"https://a", "u" + strconv.Itoa(i)}) }
			get := func(i int) {
				t.Helper()
				if tok, err := u.Get(context.Background(), user(i), "subject"); err != nil || tok.Value != "tok-u"+strconv.Itoa(i) {
					t.Fatalf("user %d: %v, %v", i, tok, err)
				}
			}
			for i := range tt.size {
				get(i)
			}
			// User 0, the oldest, is active: user 1 is evicted first.
			get(0)
			get(tt.size)
			if !cached(0) || cached(1) || calls.Load() != int64(tt.size+1) {
				t.Fatalf("after a hit on the oldest and one new user: user 0 kept %v, user 1 kept %v, %d calls", cached(0), cached(1), calls.Load())
			}
			// A user active between every new user keeps the cached
			// token, while the others are evicted, oldest first.
			for i := tt.size + 1; i < 10*tt.size; i++ {
				get(0)
				get(i)
				if calls.Load() != int64(i+1) {
					t.Fatalf("new user %d: %d source calls, want %d (the active user's token was evicted)", i, calls.Load(), i+1)
				}
				if cached(i-tt.size+1) || !cached(i-tt.size+2) || u.lru.Len() != tt.size {
					t.Fatalf("new user %d: not the least recently used evicted (len %d)", i, u.lru.Len())
				}
			}
		})
	}
}
