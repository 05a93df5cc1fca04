package mcpauth

import (
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsThroughHandler: outcomes by reason, cache hits/misses, JWKS
// fetches and token source latency land in the config's registry.
func TestMetricsThroughHandler(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := env.validToken("github:1")
	env.do(httptest.NewRequest("POST", "/mcp", nil))      // no_token
	env.do(bearerRequest("POST", "/mcp", "garbage"))      // malformed JWT
	env.do(bearerRequest("POST", "/mcp", tok))            // allowed, verify miss, upstream miss
	env.do(bearerRequest("POST", "/mcp", tok))            // allowed, verify hit, upstream hit
	env.do(httptest.NewRequest("GET", wellKnownPRM, nil)) // metadata
	m := env.h.metrics
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
		name string
	}{
		{m.requests.WithLabelValues(outcomeRejected, "no_token"), 1, "rejected no_token"},
		{m.requests.WithLabelValues(outcomeAllowed, "ok"), 2, "allowed"},
		{m.requests.WithLabelValues(outcomeMetadata, "served"), 1, "metadata"},
		{m.cache.WithLabelValues("verify", "hit"), 1, "verify hit"},
		{m.cache.WithLabelValues("verify", "miss"), 1, "verify miss"},
		{m.cache.WithLabelValues("upstream", "hit"), 1, "upstream hit"},
		{m.cache.WithLabelValues("upstream", "miss"), 1, "upstream miss"},
		{m.jwksFetches.WithLabelValues(env.issuer.URL(), "ok"), 1, "jwks fetch"},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.sourceDuration); n != 1 {
		t.Errorf("token source latency series = %d, want 1", n)
	}
	// Everything is registered in the Caddy context's registry.
	n, err := testutil.GatherAndCount(env.ctx.GetMetricsRegistry(), "caddy_mcp_auth_requests_total", "caddy_mcp_auth_cache_total", "caddy_mcp_auth_jwks_fetches_total")
	if err != nil || n < 6 {
		t.Errorf("registry series = %d, %v", n, err)
	}
	// Rejections with an invalid token are labelled with jwtverify's reason.
	var malformed float64
	for _, r := range []string{"malformed", "invalid"} {
		malformed += testutil.ToFloat64(m.requests.WithLabelValues(outcomeRejected, r))
	}
	if malformed != 1 {
		t.Errorf("malformed rejections = %v, want 1", malformed)
	}
}

// TestMalformedBearerReason: a value that is not an RFC 6750 b64token is
// rejected as "malformed" whatever else is wrong with it, although the syntax
// is checked only once verification has failed; a well-formed token that
// fails verification keeps the verifier's reason.
func TestMalformedBearerReason(t *testing.T) {
	env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.MaxTokenSize = 2048 })
	tok := env.validToken("github:1")
	env.do(bearerRequest("POST", "/mcp", tok)) // cached from here on
	i := strings.IndexByte(tok, '.') + 3
	j := len(tok) - 20 // inside the signature
	badSig := tok[:j] + map[bool]string{true: "A", false: "B"}[tok[j] != 'A'] + tok[j+1:]
	for _, c := range []struct {
		name, value, reason string
	}{
		{"two tokens", "Bearer a b", "malformed"},
		{"quote", `Bearer "abc"`, "malformed"},
		{"padding in the middle", "Bearer ab=c", "malformed"},
		{"comma in a JWT", "Bearer " + tok[:i] + "," + tok[i:], "malformed"},
		// Go's base64 decoder skips LF. In the payload the signature
		// catches it; in the signature or at the end only jwtverify's own
		// check does. Header values from the wire cannot carry an LF, but
		// one that another handler built from decoded input can.
		{"LF inside the payload", "Bearer " + tok[:i] + "\n" + tok[i:], "malformed"},
		{"LF inside the signature", "Bearer " + tok[:j] + "\n" + tok[j:], "malformed"},
		{"LF after the token", "Bearer " + tok + "\n", "malformed"},
		{"too large and not a b64token", "Bearer " + strings.Repeat("a b", 1000), "malformed"},
		{"too large b64token", "Bearer " + strings.Repeat("ab", 1100), "too_large"},
		{"b64token, not a JWT", "Bearer abc", "malformed"},
		{"well-formed, bad signature", "Bearer " + badSig, "signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			counter := env.h.metrics.requests.WithLabelValues(outcomeRejected, c.reason)
			before := testutil.ToFloat64(counter)
			r := httptest.NewRequest("POST", "/mcp", nil)
			r.Header["Authorization"] = []string{c.value}
			if w := env.do(r); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("status %d, challenge %q; want 401 invalid_token", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("rejections with reason %q grew by %v, want 1", c.reason, got)
			}
		})
	}
}

func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := newMetrics(reg)
	b := newMetrics(reg) // a second handler in the same config
	a.outcome(outcomeAllowed, "ok")
	b.outcome(outcomeAllowed, "ok")
	if got := testutil.ToFloat64(b.requests.WithLabelValues(outcomeAllowed, "ok")); got != 2 {
		t.Errorf("shared counter = %v, want 2", got)
	}
	b.sourceLatency(time.Millisecond, nil)
	b.sourceLatency(time.Millisecond, ErrNoUpstreamToken)
	b.sourceLatency(time.Millisecond, errors.New("x"))
	if n := testutil.CollectAndCount(a.sourceDuration); n != 3 {
		t.Errorf("source latency series = %d", n)
	}
	var sw observerSwitch
	sw.JWKSFetch("https://x", time.Millisecond, nil) // no metrics yet: must not panic
	sw.cur.Store(a)
	sw.JWKSFetch("https://x", time.Millisecond, errors.New("down"))
	sw.VerifyCache(true)
	if testutil.ToFloat64(a.jwksFetches.WithLabelValues("https://x", "error")) != 1 || testutil.ToFloat64(a.cache.WithLabelValues("verify", "hit")) != 1 {
		t.Error("observer switch did not forward")
	}
	if !strings.Contains(a.requests.WithLabelValues("a", "b").Desc().String(), "caddy_mcp_auth_requests_total") {
		t.Error("metric name")
	}
}

// TestMetricsCallConcurrent: calls_total counts every call when many
// goroutines meet the same new series at once (the copy-on-write series
// map must not lose a count or a series); run it with -race.
func TestMetricsCallConcurrent(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	labels := [][3]string{{"tools/call", "read_*", "allowed"}, {"tools/call", "other", "forbidden"}, {"tools/list", "", "allowed"}}
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				l := labels[(w+i)%len(labels)]
				m.call(l[0], l[1], l[2])
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for _, l := range labels {
		total += testutil.ToFloat64(m.calls.WithLabelValues(l[0], l[1], l[2]))
	}
	if total != workers*per {
		t.Errorf("calls_total sums to %v, want %d", total, workers*per)
	}
	if s := m.callSeries.Load(); s == nil || len(*s) != len(labels) {
		t.Errorf("series held: %v, want %d", s, len(labels))
	}
}
