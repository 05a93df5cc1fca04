package caddymodule

import (
	"errors"
	"net/http/httptest"
	"strings"
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
