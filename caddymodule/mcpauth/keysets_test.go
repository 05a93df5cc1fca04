package mcpauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestKeySetSharedAcrossReload simulates a config reload: the new handler is
// provisioned before the old one is cleaned up, shares its key set, and
// needs no JWKS fetch; the key set is destroyed only with its last user.
func TestKeySetSharedAcrossReload(t *testing.T) {
	old := newTestEnv(t, nil)
	if w := old.do(bearerRequest("POST", "/mcp", old.validToken("github:1"))); w.Code != 200 {
		t.Fatalf("old config: %d", w.Code)
	}
	fetches := old.issuer.jwksFetches.Load()

	// "Reload": same issuer settings, other handler options.
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	next := &Handler{
		Resource:       testResource,
		Issuers:        old.h.Issuers,
		RequiredScopes: []string{"mcp:tools"},
		ResourceName:   "reloaded",
		now:            old.clock.Now,
	}
	if err := next.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	key := next.poolKeys[0]
	if n, _ := keySets.References(key); n != 2 {
		t.Fatalf("references during reload = %d, want 2", n)
	}
	if err := old.h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, ok := keySets.References(key); !ok || n != 1 {
		t.Fatalf("references after old Cleanup = %d %v, want 1", n, ok)
	}
	// A token the new handler has never seen verifies with the cached keys.
	w := httptestDo(t, next, bearerRequest("POST", "/mcp", old.validToken("github:2")))
	if w != 200 {
		t.Fatalf("new config: %d", w)
	}
	if got := old.issuer.jwksFetches.Load(); got != fetches {
		t.Errorf("JWKS fetched %d more times after reload, want 0", got-fetches)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := keySets.References(key); ok {
		t.Error("key set survives its last user")
	}
}

// TestKeySetParamsSeparate: changed fetch settings build a separate key set.
func TestKeySetParamsSeparate(t *testing.T) {
	a := keySetParams{Issuer: "https://a", RefetchCooldown: time.Second}
	b := a
	b.RefetchCooldown = 2 * time.Second
	if a.poolKey() == b.poolKey() {
		t.Error("different cooldowns share a pool key")
	}
	c := a
	c.JWKSURI = "https://a/keys"
	if a.poolKey() == c.poolKey() {
		t.Error("different jwks_uri share a pool key")
	}
}

// httptestDo runs one request through h with a trivial backend and returns
// the status.
func httptestDo(t *testing.T, h *Handler, r *http.Request) int {
	t.Helper()
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	if err := h.ServeHTTP(w, r, &recordingBackend{}); err != nil {
		t.Fatal(err)
	}
	return w.Code
}

// TestKeySetReportsToLiveConfig: a pooled key set's metrics and logs go to
// the latest provisioned config still alive. Before, they went to whichever
// config provisioned last (metrics) or first (logs), so after a failed
// reload the metrics landed in the discarded config's registry.
func TestKeySetReportsToLiveConfig(t *testing.T) {
	fi := newFakeIssuer(t)
	p := keySetParams{Issuer: fi.URL(), JWKSURI: fi.URL() + "/jwks"}
	type cfg struct {
		u    *keySetUser
		m    *metrics
		logs *observer.ObservedLogs
		e    *keySetEntry
		key  string
	}
	newCfg := func() *cfg {
		core, logs := observer.New(zapcore.DebugLevel)
		m := newMetrics(prometheus.NewRegistry())
		return &cfg{u: newKeySetUser(zap.New(core), m, nil), m: m, logs: logs}
	}
	provision := func(c *cfg) {
		e, key, err := loadKeySet(p, c.u)
		if err != nil {
			t.Fatal(err)
		}
		c.e, c.key = e, key
	}
	release := func(c *cfg) {
		if err := releaseKeySet(c.key, c.e, c.u); err != nil {
			t.Fatal(err)
		}
	}
	a, b, b2 := newCfg(), newCfg(), newCfg()
	for _, s := range []struct {
		name string
		act  func()
		want *cfg
	}{
		{"first config", func() { provision(a) }, a},
		{"reload in progress: the new config", func() { provision(b) }, b},
		{"failed reload: back to the old config", func() { release(b) }, a},
		{"successful reload", func() { provision(b2); release(a) }, b2},
	} {
		s.act()
		before := map[*cfg][2]float64{}
		for _, c := range []*cfg{a, b, b2} {
			before[c] = [2]float64{testutil.ToFloat64(c.m.jwksFetches.WithLabelValues(p.Issuer, "ok")), float64(c.logs.FilterMessage("jwks fetched").Len())}
		}
		if err := s.want.e.ks.Refresh(context.Background()); err != nil {
			t.Fatalf("%s: refresh: %v", s.name, err)
		}
		for _, c := range []*cfg{a, b, b2} {
			dm := testutil.ToFloat64(c.m.jwksFetches.WithLabelValues(p.Issuer, "ok")) - before[c][0]
			dl := float64(c.logs.FilterMessage("jwks fetched").Len()) - before[c][1]
			want := 0.0
			if c == s.want {
				want = 1
			}
			if dm != want || dl != want {
				t.Errorf("%s: config %p got %v fetch metrics and %v log lines, want %v", s.name, c, dm, dl, want)
			}
		}
	}
	release(b2)
	if _, ok := keySets.References(b2.key); ok {
		t.Error("key set survives its last user")
	}
}

// TestSlogSwitch: with no user nothing is logged; attributes added before a
// handler is set apply to whichever handler is current.
func TestSlogSwitch(t *testing.T) {
	sw := newSlogSwitch()
	l := slog.New(sw).With("issuer", "https://a")
	if sw.Enabled(context.Background(), slog.LevelError) {
		t.Error("enabled without a user")
	}
	l.Error("dropped")
	core, logs := observer.New(zapcore.DebugLevel)
	sw.set(zapslog.NewHandler(core))
	l.Warn("kept")
	if all := logs.All(); len(all) != 1 || all[0].Message != "kept" || all[0].ContextMap()["issuer"] != "https://a" {
		t.Errorf("logs %v", all)
	}
}

// TestKeyFetchFaultLogged: a failed JWKS fetch is logged once per fetch, under mcp_auth's
// logger name, at ERROR while the issuer has no keys (every token of it gets a 503) and at
// WARN while cached keys still serve (docs/mcp_auth.md, Operations).
func TestKeyFetchFaultLogged(t *testing.T) {
	var down atomic.Bool
	fi := newFakeIssuer(t)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, fi.URL()+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer gate.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	u := newKeySetUser(zap.New(core).Named("http.handlers.mcp_auth"), newMetrics(prometheus.NewRegistry()), nil)
	// The JWKS URI is the fake issuer's own while up; the gate answers 503 while down.
	p := keySetParams{Issuer: "https://keys.example", JWKSURI: gate.URL + "/jwks"}
	down.Store(true)
	e, key, err := loadKeySet(p, u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = releaseKeySet(key, e, u) }()
	_ = e.ks.Refresh(context.Background())
	check := func(level zapcore.Level, msg string) {
		t.Helper()
		got := logs.FilterMessage(msg).All()
		if len(got) == 0 {
			t.Fatalf("no %q entry; logs: %v", msg, logs.All())
		}
		last := got[len(got)-1]
		if last.Level != level || last.LoggerName != "http.handlers.mcp_auth" {
			t.Errorf("%q at %v by logger %q, want %v by http.handlers.mcp_auth", msg, last.Level, last.LoggerName, level)
		}
	}
	check(zapcore.ErrorLevel, "jwks fetch failed; no keys for this issuer yet")
	down.Store(false)
	if err := e.ks.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh with the issuer up: %v", err)
	}
	down.Store(true)
	_ = e.ks.Refresh(context.Background())
	check(zapcore.WarnLevel, "jwks fetch failed; keeping cached keys")
}
