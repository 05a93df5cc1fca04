package mcpauth

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// metrics are mcp_auth's Prometheus collectors, registered in the config's
// registry (caddy.Context.GetMetricsRegistry), so they appear on Caddy's
// admin /metrics endpoint. All mcp_auth handlers of one config share them.
//
//	caddy_mcp_auth_requests_total{outcome,reason}          every decision
//	caddy_mcp_auth_jwks_fetches_total{issuer,result}       JWKS/discovery fetches
//	caddy_mcp_auth_jwks_fetch_duration_seconds{issuer}     their latency
//	caddy_mcp_auth_cache_total{cache,result}               verify and upstream cache hits/misses
//	caddy_mcp_auth_token_source_duration_seconds{result}   token source latency
//	caddy_mcp_auth_calls_total{method,tool,decision}       MCP calls under a tool policy
//
// The labels of calls_total are bounded by the policy (toolpolicy's
// Labels): a method outside MCP's counts as "other", and a tool, prompt or
// resource as the exact name or glob of the rule that matches it, else
// "other", so a client inventing names cannot add series.
type metrics struct {
	requests       *prometheus.CounterVec
	calls          *prometheus.CounterVec
	jwksFetches    *prometheus.CounterVec
	jwksDuration   *prometheus.HistogramVec
	cache          *prometheus.CounterVec
	sourceDuration *prometheus.HistogramVec

	// Hot-path series resolved once, so a request does no label lookup.
	allowed                   prometheus.Counter
	verifyHit, verifyMiss     prometheus.Counter
	upstreamHit, upstreamMiss prometheus.Counter
	// callSeries holds the calls_total series met so far, so a call does
	// not hash and validate its three labels (WithLabelValues) every
	// time. Copy on write: bounded like the labels, and new series stop
	// appearing once every rule and decision has been seen.
	callSeries atomic.Pointer[map[callLabels]prometheus.Counter]
	callMu     sync.Mutex // serialises writers of callSeries
}

// callLabels are the labels of one calls_total series.
type callLabels struct{ method, tool, decision string }

// Outcome labels of caddy_mcp_auth_requests_total.
const (
	outcomeAllowed   = "allowed"  // forwarded to the backend
	outcomeRejected  = "rejected" // client-caused 400/401/403, and 499 "canceled" (client gone)
	outcomeFault     = "fault"    // 503: a dependency failed
	outcomeMetadata  = "metadata" // protected resource metadata served
	outcomePreflight = "preflight"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "caddy", "mcp_auth"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Requests seen by mcp_auth by outcome (allowed, rejected, fault, metadata, preflight) and reason.",
		}, []string{"outcome", "reason"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "calls_total",
			Help: "MCP calls decided by the tool policy, by method, tool (the rule's name or glob, else other) and decision.",
		}, []string{"method", "tool", "decision"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "jwks_fetches_total",
			Help: "JWKS and discovery fetches by issuer and result (ok, error).",
		}, []string{"issuer", "result"}),
		jwksDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "jwks_fetch_duration_seconds",
			Help:    "Latency of JWKS and discovery fetches.",
			Buckets: prometheus.DefBuckets,
		}, []string{"issuer"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_total",
			Help: "Cache lookups by cache (verify, upstream) and result (hit, miss).",
		}, []string{"cache", "result"}),
		sourceDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "token_source_duration_seconds",
			Help:    "Latency of upstream token source calls by result (ok, no_token, rejected, error).",
			Buckets: prometheus.DefBuckets,
		}, []string{"result"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.calls = register(reg, m.calls)
		m.jwksFetches = register(reg, m.jwksFetches)
		m.jwksDuration = register(reg, m.jwksDuration)
		m.cache = register(reg, m.cache)
		m.sourceDuration = register(reg, m.sourceDuration)
	}
	m.allowed = m.requests.WithLabelValues(outcomeAllowed, "ok")
	m.verifyHit = m.cache.WithLabelValues("verify", "hit")
	m.verifyMiss = m.cache.WithLabelValues("verify", "miss")
	m.upstreamHit = m.cache.WithLabelValues("upstream", "hit")
	m.upstreamMiss = m.cache.WithLabelValues("upstream", "miss")
	return m
}

// register adds c to reg, or returns the collector already registered under
// the same name (a second mcp_auth handler in the same config).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		// A conflicting collector of another type: keep ours unregistered
		// rather than fail the config; metrics are not worth an outage.
	}
	return c
}

func (m *metrics) outcome(outcome, reason string) {
	if outcome == outcomeAllowed && reason == "ok" {
		m.allowed.Inc()
		return
	}
	m.requests.WithLabelValues(outcome, reason).Inc()
}

// call counts one MCP call under the tool policy; method and tool are
// bounded labels (toolpolicy.Policy.Labels).
func (m *metrics) call(method, tool, decision string) {
	k := callLabels{method, tool, decision}
	if s := m.callSeries.Load(); s != nil {
		if c, ok := (*s)[k]; ok {
			c.Inc()
			return
		}
	}
	c := m.calls.WithLabelValues(method, tool, decision)
	c.Inc()
	m.callMu.Lock()
	defer m.callMu.Unlock()
	old := m.callSeries.Load()
	next := make(map[callLabels]prometheus.Counter, 1)
	if old != nil {
		next = make(map[callLabels]prometheus.Counter, len(*old)+1)
		maps.Copy(next, *old)
	}
	next[k] = c
	m.callSeries.Store(&next)
}

// JWKSFetch implements jwtverify.Observer.
func (m *metrics) JWKSFetch(issuer string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.jwksFetches.WithLabelValues(issuer, result).Inc()
	m.jwksDuration.WithLabelValues(issuer).Observe(d.Seconds())
}

// VerifyCache implements jwtverify.Observer.
func (m *metrics) VerifyCache(hit bool) {
	if hit {
		m.verifyHit.Inc()
	} else {
		m.verifyMiss.Inc()
	}
}

func (m *metrics) upstreamCache(hit bool) {
	if hit {
		m.upstreamHit.Inc()
	} else {
		m.upstreamMiss.Inc()
	}
}

func (m *metrics) sourceLatency(d time.Duration, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrNoUpstreamToken):
		result = "no_token"
	case errors.Is(err, ErrSubjectTokenRejected):
		result = "rejected"
	default:
		result = "error"
	}
	m.sourceDuration.WithLabelValues(result).Observe(d.Seconds())
}

// observerSwitch is the Observer given to a pooled RemoteKeySet. The key set
// outlives config reloads but each config has its own metrics registry, so
// the switch points at the metrics of the key set's latest registered user
// (see keySetEntry).
type observerSwitch struct {
	cur atomic.Pointer[metrics]
}

// JWKSFetch implements jwtverify.Observer.
func (o *observerSwitch) JWKSFetch(issuer string, d time.Duration, err error) {
	if m := o.cur.Load(); m != nil {
		m.JWKSFetch(issuer, d, err)
	}
}

// VerifyCache implements jwtverify.Observer.
func (o *observerSwitch) VerifyCache(hit bool) {
	if m := o.cur.Load(); m != nil {
		m.VerifyCache(hit)
	}
}

// Interface guards
var (
	_ jwtverify.Observer = (*metrics)(nil)
	_ jwtverify.Observer = (*observerSwitch)(nil)
)
