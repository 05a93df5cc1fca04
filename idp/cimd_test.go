package idp

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type cimdServer struct {
	ts   *httptest.Server
	hits atomic.Int64
	docs map[string]func(self string) any
}

func newCIMDServer(t *testing.T) *cimdServer {
	s := &cimdServer{docs: map[string]func(string) any{}}
	s.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		f, ok := s.docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		v := f(s.ts.URL + r.URL.Path)
		if b, ok := v.([]byte); ok {
			w.Write(b)
			return
		}
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(s.ts.Close)
	return s
}

func (s *cimdServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ts.Certificate())
	return p
}

func TestClientIDMetadataDocuments(t *testing.T) {
	cs := newCIMDServer(t)
	good := func(self string) any {
		return map[string]any{"client_id": self, "client_name": "CIMD App", "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	cs.docs["/good.json"] = good
	cs.docs["/mismatch.json"] = func(string) any {
		return map[string]any{"client_id": "https://other.example/client.json", "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	cs.docs["/badredirect.json"] = func(self string) any {
		return map[string]any{"client_id": self, "redirect_uris": []string{"javascript:alert(1)"}}
	}
	cs.docs["/secret.json"] = func(self string) any {
		return map[string]any{"client_id": self, "client_secret": "x", "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	cs.docs["/huge.json"] = func(self string) any {
		return []byte(`{"client_id":"` + self + `","client_name":"` + strings.Repeat("x", 70<<10) + `"}`)
	}
	e := newEnv(t, func(o *Options) { o.AllowPrivateCIMD = true; o.CIMDRootCAs = cs.pool() })

	t.Run("flow", func(t *testing.T) {
		c := testClient{ID: cs.ts.URL + "/good.json", RedirectURI: "http://127.0.0.1:5555/cb"}
		before := cs.hits.Load()
		p := newPKCE()
		b := e.browser()
		q := e.getCode(b, c, p, "cimduser", "", nil)
		resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("redeem: %d %v", resp.StatusCode, m)
		}
		claims, _ := verifyWithJWKS(t, e, m["access_token"].(string))
		if claims["client_id"] != c.ID {
			t.Errorf("client_id claim %v", claims["client_id"])
		}
		// Cached: the whole flow fetched the document once.
		if n := cs.hits.Load() - before; n != 1 {
			t.Errorf("document fetched %d times, want 1 (cache)", n)
		}
	})
	for _, path := range []string{"/mismatch.json", "/badredirect.json", "/secret.json", "/huge.json", "/missing.json"} {
		t.Run(path, func(t *testing.T) {
			c := testClient{ID: cs.ts.URL + path, RedirectURI: "http://127.0.0.1:5555/cb"}
			pg := e.browser().get(authorizeURL(e, c, newPKCE(), nil))
			if pg.status != http.StatusBadRequest || pg.location != "" {
				t.Fatalf("got %d %q, want 400 error page", pg.status, pg.location)
			}
		})
	}
	t.Run("bad client_id URLs", func(t *testing.T) {
		for _, id := range []string{cs.ts.URL + "/", cs.ts.URL + "/a/../good.json", cs.ts.URL + "/good.json#x", cs.ts.URL + "/good.json?x=1"} {
			if validCIMDURL(id, true) {
				t.Errorf("%s accepted", id)
			}
		}
	})
}

// SSRF: without AllowPrivateCIMD, loopback and private targets are refused at dial time.
func TestCIMDRefusesPrivateAddresses(t *testing.T) {
	cs := newCIMDServer(t)
	cs.docs["/good.json"] = func(self string) any {
		return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	e := newEnv(t, func(o *Options) { o.CIMDRootCAs = cs.pool() })
	c := testClient{ID: cs.ts.URL + "/good.json", RedirectURI: "http://127.0.0.1/cb"}
	pg := e.browser().get(authorizeURL(e, c, newPKCE(), nil))
	if pg.status != http.StatusBadRequest || cs.hits.Load() != 0 {
		t.Fatalf("got %d, %d requests reached the private server", pg.status, cs.hits.Load())
	}
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"127.0.0.1", false}, {"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"100.64.0.1", false}, {"0.0.0.0", false}, {"::1", false},
		{"fe80::1", false}, {"fc00::1", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false},
		{"8.8.8.8", true}, {"2606:4700:4700::1111", true},
	} {
		if got := publicAddr(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("publicAddr(%s) = %v", tc.ip, got)
		}
	}
}

// Only the default https port is allowed in a metadata document URL, unless AllowPrivateCIMD.
func TestCIMDURLPort(t *testing.T) {
	for _, tc := range []struct {
		id      string
		anyPort bool
		want    bool
	}{
		{"https://client.example/c.json", false, true},
		{"https://client.example:443/c.json", false, true},
		{"https://client.example:8443/c.json", false, false},
		{"https://client.example:22/c.json", false, false},
		{"https://client.example:8443/c.json", true, true},
	} {
		if got := validCIMDURL(tc.id, tc.anyPort); got != tc.want {
			t.Errorf("validCIMDURL(%q, anyPort=%v) = %v, want %v", tc.id, tc.anyPort, got, tc.want)
		}
	}
}

// Failed document fetches are cached for CIMDFailureCacheTTL, so unauthenticated requests naming
// a bad client_id cannot make the server fetch without limit; the shared fetch does not run on
// the first caller's context.
func TestCIMDFailureCacheAndDetachedFetch(t *testing.T) {
	cs := newCIMDServer(t)
	release := make(chan struct{})
	cs.docs["/slow.json"] = func(self string) any {
		<-release
		return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	e := newEnv(t, func(o *Options) {
		o.AllowPrivateCIMD = true
		o.CIMDRootCAs = cs.pool()
		o.CIMDFailureCacheTTL = 300 * time.Millisecond
	})
	token := func(id string) int {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {id}}
		resp, _ := e.postForm("/token", v, "", "")
		return resp.StatusCode
	}
	missing := cs.ts.URL + "/missing.json"
	tests := []struct {
		name      string
		run       func()
		wantFetch int64
	}{
		{"20 requests for a missing document fetch it once", func() {
			for range 20 {
				if st := token(missing); st != 401 {
					t.Errorf("token with a missing document: %d, want 401", st)
				}
			}
		}, 1},
		{"after the failure TTL it is fetched again", func() {
			time.Sleep(400 * time.Millisecond)
			token(missing)
			token(missing)
		}, 1},
		{"a caller giving up does not fail the shared fetch", func() {
			id := cs.ts.URL + "/slow.json"
			ctx, cancel := context.WithCancel(context.Background())
			first := make(chan error, 1)
			go func() { _, err := e.srv.cimd.fetch(ctx, id, "192.0.2.1"); first <- err }()
			for cs.hits.Load() == 0 { // wait until the fetch reached the document server
				time.Sleep(5 * time.Millisecond)
			}
			second := make(chan error, 1)
			go func() { _, err := e.srv.cimd.fetch(context.Background(), id, "192.0.2.1"); second <- err }()
			cancel()
			if err := <-first; err == nil {
				t.Errorf("cancelled caller got a client")
			}
			close(release)
			if err := <-second; err != nil {
				t.Errorf("second caller: %v", err)
			}
			if _, err := e.srv.cimd.fetch(context.Background(), id, "192.0.2.1"); err != nil {
				t.Errorf("cached document: %v", err)
			}
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs.hits.Store(0)
			tc.run()
			if got := cs.hits.Load(); got != tc.wantFetch {
				t.Errorf("document fetched %d times, want %d", got, tc.wantFetch)
			}
		})
	}
}

// Metadata document fetches have a budget that no mix of client_id URLs escapes: 30 requests
// naming 30 different documents on one host make at most CIMDFetchLimitPerHost (default 10)
// fetches; the others are refused before fetching (503 temporarily_unavailable with Retry-After
// from the token and revocation endpoints, a 503 page from /authorize), and are not
// failure-cached, so the same documents are fetched once the budget has refilled.
func TestCIMDFetchBudget(t *testing.T) {
	cs := newCIMDServer(t)
	const n = 30
	for i := range n + 3 {
		cs.docs[fmt.Sprintf("/c%d.json", i)] = func(self string) any {
			return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/cb"}}
		}
	}
	e := newEnv(t, func(o *Options) { o.AllowPrivateCIMD = true; o.CIMDRootCAs = cs.pool() })
	id := func(i int) string { return fmt.Sprintf("%s/c%d.json", cs.ts.URL, i) }
	token := func(i int) (*http.Response, map[string]any) {
		return e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {id(i)}}, "", "")
	}
	var refused []int
	for i := range n {
		resp, m := token(i)
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			if m["error"] != "temporarily_unavailable" {
				t.Fatalf("request %d: 503 with %v", i, m)
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Fatalf("request %d: Retry-After %q", i, resp.Header.Get("Retry-After"))
			}
			refused = append(refused, i)
		case http.StatusBadRequest: // fetched; the refresh token is not valid
		default:
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, m)
		}
	}
	if got := cs.hits.Load(); got != 10 {
		t.Fatalf("%d different client_id URLs made %d fetches, want the per-host budget 10", n, got)
	}
	if len(refused) != n-10 {
		t.Fatalf("%d requests refused, want %d", len(refused), n-10)
	}
	// Over budget everywhere a client_id is resolved, and still no fetch.
	if pg := e.browser().get(authorizeURL(e, testClient{ID: id(n), RedirectURI: "http://127.0.0.1:5555/cb"}, newPKCE(), nil)); pg.status != http.StatusServiceUnavailable ||
		pg.header.Get("Retry-After") == "" || !strings.Contains(pg.body, "Try again") {
		t.Fatalf("/authorize over budget: %d %q %s", pg.status, pg.header.Get("Retry-After"), pg.body)
	}
	if resp, m := e.postForm("/revoke", url.Values{"token": {"x"}, "client_id": {id(n + 1)}}, "", ""); resp.StatusCode != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
		t.Fatalf("/revoke over budget: %d %v", resp.StatusCode, m)
	}
	// A cached document costs nothing.
	if resp, m := token(0); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("cached document: %d %v", resp.StatusCode, m)
	}
	if got := cs.hits.Load(); got != 10 {
		t.Fatalf("over-budget requests fetched: %d fetches", got)
	}
	// After the window the budget has refilled: a refused document is fetched (it was not
	// remembered as a failure).
	e.clock.Advance(time.Minute)
	if resp, m := token(refused[0]); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("after refill: %d %v", resp.StatusCode, m)
	}
	if got := cs.hits.Load(); got != 11 {
		t.Fatalf("after refill: %d fetches, want 11", got)
	}
}

// fetchBudget's buckets: per remote address, per host and global, each refilling continuously
// over the window; a refusal takes no token from any bucket.
func TestFetchBudget(t *testing.T) {
	type step struct {
		addr, host string
		advance    time.Duration
		ok         bool
		scope      string // of the refusal
	}
	for _, tc := range []struct {
		name                  string
		global, perHost, addr int
		steps                 []step
	}{
		{"per host", 100, 2, 100, []step{
			{"a", "h1", 0, true, ""}, {"b", "h1", 0, true, ""}, {"c", "h1", 0, false, "host"},
			{"c", "h2", 0, true, ""}, {"c", "h1", 30 * time.Second, true, ""}, {"c", "h1", 0, false, "host"},
		}},
		{"per address", 100, 100, 2, []step{
			{"a", "h1", 0, true, ""}, {"a", "h2", 0, true, ""}, {"a", "h3", 0, false, "address"},
			{"b", "h3", 0, true, ""}, {"a", "h3", time.Minute, true, ""},
		}},
		{"global", 3, 100, 100, []step{
			{"a", "h1", 0, true, ""}, {"b", "h2", 0, true, ""}, {"c", "h3", 0, true, ""}, {"d", "h4", 0, false, "global"},
			{"d", "h4", 20 * time.Second, true, ""}, {"e", "h5", 0, false, "global"},
		}},
		{"a refusal takes nothing", 2, 1, 100, []step{
			{"a", "h1", 0, true, ""}, {"a", "h1", 0, false, "host"}, {"a", "h1", 0, false, "host"},
			{"b", "h2", 0, true, ""}, {"c", "h3", 0, false, "global"},
		}},
		{"disabled", -1, -1, -1, []step{
			{"a", "h1", 0, true, ""}, {"a", "h1", 0, true, ""}, {"a", "h1", 0, true, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			b := newFetchBudget(&Options{Now: clock.Now, CIMDFetchWindow: time.Minute, CIMDFetchLimit: tc.global,
				CIMDFetchLimitPerHost: tc.perHost, CIMDFetchLimitPerAddress: tc.addr, CIMDMaxConcurrentFetches: -1})
			for i, st := range tc.steps {
				clock.Advance(st.advance)
				err := b.acquire(st.addr, st.host)
				if (err == nil) != st.ok {
					t.Fatalf("step %d (%s, %s): %v, want ok=%v", i, st.addr, st.host, err, st.ok)
				}
				if err == nil {
					b.release()
					continue
				}
				var be *cimdBusyError
				if !errors.As(err, &be) || !errors.Is(err, errCIMDBusy) || be.scope != st.scope || be.retryAfter <= 0 {
					t.Fatalf("step %d: %#v, want a %s refusal with a wait", i, err, st.scope)
				}
			}
			clock.Advance(time.Hour)
			b.prune()
			if len(b.hosts) != 0 || len(b.addrs) != 0 {
				t.Errorf("after prune: %d hosts, %d addresses kept", len(b.hosts), len(b.addrs))
			}
		})
	}
}

// At most CIMDMaxConcurrentFetches documents are fetched at once; one more is refused without
// waiting and without a fetch, and the slot is free again once a fetch ends.
func TestCIMDConcurrentFetchLimit(t *testing.T) {
	cs := newCIMDServer(t)
	release := make(chan struct{})
	for _, p := range []string{"/slow1.json", "/slow2.json"} {
		cs.docs[p] = func(self string) any {
			<-release
			return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/cb"}}
		}
	}
	cs.docs["/fast.json"] = func(self string) any {
		return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	e := newEnv(t, func(o *Options) {
		o.AllowPrivateCIMD = true
		o.CIMDRootCAs = cs.pool()
		o.CIMDMaxConcurrentFetches = 2
	})
	done := make(chan error, 2)
	for _, p := range []string{"/slow1.json", "/slow2.json"} {
		go func() { _, err := e.srv.cimd.fetch(context.Background(), cs.ts.URL+p, "192.0.2.1"); done <- err }()
	}
	for cs.hits.Load() < 2 { // both fetches reached the document server and hold their slots
		time.Sleep(5 * time.Millisecond)
	}
	_, err := e.srv.cimd.fetch(context.Background(), cs.ts.URL+"/fast.json", "192.0.2.2")
	var be *cimdBusyError
	if !errors.As(err, &be) || be.scope != "concurrent" {
		t.Fatalf("third concurrent fetch: %v, want a concurrency refusal", err)
	}
	if got := cs.hits.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2", got)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("slow fetch: %v", err)
		}
	}
	if _, err := e.srv.cimd.fetch(context.Background(), cs.ts.URL+"/fast.json", "192.0.2.2"); err != nil {
		t.Fatalf("after the slots were released: %v", err)
	}
}
