package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{5}, 0.99, 5},
		{[]time.Duration{4, 1, 3, 2}, 0.5, 2},
		{[]time.Duration{4, 1, 3, 2}, 0.99, 4},
		{[]time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 0.9, 9},
	}
	for _, tt := range tests {
		if got := percentile(append([]time.Duration(nil), tt.in...), tt.q); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
	}
}

func TestPicker(t *testing.T) {
	p := &picker{toks: []string{"a", "b"}}
	for _, want := range []string{"a", "b"} {
		if got, ok := p.next(); !ok || got != want {
			t.Fatalf("next = %q %v, want %q", got, ok, want)
		}
	}
	if _, ok := p.next(); ok {
		t.Fatal("distinct-token picker did not run out")
	}
	w := &picker{toks: []string{"a", "b", "c"}, wrap: true, fullPass: true}
	if !w.mustContinue() {
		t.Fatal("fullPass picker may stop before one pass")
	}
	for range 3 {
		w.next()
	}
	if got, _ := w.next(); got != "a" || w.mustContinue() {
		t.Fatalf("wrap: got %q, mustContinue %v", got, w.mustContinue())
	}
	if got, ok := fixed("").next(); !ok || got != "" {
		t.Fatal("no-token picker")
	}
}

// TestRunCountsAndChecks drives the load generator against the backend
// handler: requests succeed, a missing header rewrite counts as errors,
// and the request carries the token.
func TestRunCountsAndChecks(t *testing.T) {
	var sawAuth atomic.Value // string; two workers' handlers set it at once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			sawAuth.Store(a)
		}
		backendHandler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	r := run("ok", target{addr: addr, path: pathMCP}, fixed(""), 4, 100*time.Millisecond)
	if r.Reqs == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 || r.RPS() <= 0 {
		t.Fatalf("ok run: %+v", r)
	}
	r = run("distinct", target{addr: addr, path: pathMCP}, &picker{toks: []string{"t1", "t2", "t3"}}, 2, time.Minute)
	if auth, _ := sawAuth.Load().(string); r.Reqs != 3 || !strings.HasPrefix(auth, "Bearer t") {
		t.Fatalf("distinct run: %+v, auth %q", r, auth)
	}
	r = run("unchecked", target{addr: addr, path: pathMCP, expectUpstream: true}, fixed(""), 2, 50*time.Millisecond)
	if r.Errors == 0 || r.Reqs != 0 || !strings.Contains(r.firstError, "500") {
		t.Fatalf("missing upstream header not counted as error: %+v", r)
	}

	sse, err := firstEvent(addr, pathSSE, "", false, 5)
	if err != nil || sse.Reqs != 5 || sse.P50 <= 0 {
		t.Fatalf("firstEvent: %+v, %v", sse, err)
	}
	if _, err := firstEvent(addr, pathSSE, "", true, 1); err == nil {
		t.Fatal("firstEvent accepted a 500")
	}
}

// TestConnectionsKeptBetweenPhases: a phase reuses the connections the
// previous one left open, and a kept connection the server closed meanwhile
// costs a new connection, not a counted error.
func TestConnectionsKeptBetweenPhases(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(backendHandler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tg := target{addr: strings.TrimPrefix(srv.URL, "http://"), path: pathMCP}

	for i := range 3 {
		if r := run("kept", tg, fixed(""), 3, 30*time.Millisecond); r.Reqs == 0 || r.Errors != 0 {
			t.Fatalf("phase %d: %+v", i, r)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("3 phases of 3 workers opened %d connections, want 3", n)
	}
	srv.CloseClientConnections()
	if r := run("after close", tg, fixed(""), 3, 30*time.Millisecond); r.Reqs == 0 || r.Errors != 0 {
		t.Fatalf("after the server closed the kept connections: %+v", r)
	}
	if n := conns.Load(); n != 6 {
		t.Fatalf("connections after the server closed them: %d, want 6", n)
	}
}

func TestCombine(t *testing.T) {
	rs := []result{{Name: "x", Conc: 2, Reqs: 2, Elapsed: time.Second}, {Name: "x", Conc: 2, Reqs: 1, Errors: 1, Elapsed: time.Second, firstError: "e"}}
	got := combine(rs, [][]time.Duration{{1, 3}, {2}})
	if got.Reqs != 3 || got.Errors != 1 || got.Elapsed != 2*time.Second || got.P50 != 2 || got.P99 != 3 || got.firstError != "e" {
		t.Fatalf("combine: %+v", got)
	}
}

func TestParseFlags(t *testing.T) {
	var sb strings.Builder
	c, err := parseFlags([]string{"-conc", "1,8", "-users", "1,10", "-c", "4", "-load", "0.1, 1"}, &sb)
	if err != nil || len(c.ConcList) != 2 || c.Users[1] != 10 || c.Conc != 4 || len(c.Loads) != 2 || c.Loads[0] != 0.1 || c.Loads[1] != 1 {
		t.Fatalf("parse: %+v, %v", c, err)
	}
	if c, err := parseFlags(nil, &sb); err != nil || len(c.Loads) != 2 || c.Loads[0] != 0.25 || c.Loads[1] != 0.5 || c.Rounds != 60 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"-conc", "0"}, {"-users", "x"}, {"-c", "0"}, {"-rounds", "0"}, {"-load", "0"}, {"-load", "1.5"}, {"-load", "0.5,"}, {"-load", "NaN"}} {
		if _, err := parseFlags(bad, &sb); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestListenLoopback(t *testing.T) {
	if _, err := listenLoopback("0.0.0.0:0"); err == nil {
		t.Fatal("non-loopback address accepted")
	}
	l, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestRunRateCountsFromDue drives the open-loop generator at 100 req/s with
// one connection against a server that takes 20 ms per request: requests
// fall behind, and their latency must count from when they were due (a
// closed-loop measurement would report about 20 ms for every one).
func TestRunRateCountsFromDue(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		backendHandler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	r, lats := runRate("slow", target{addr: addr, path: pathMCP}, fixed(""), 1, 100, 300*time.Millisecond)
	if r.Errors != 0 || r.Reqs != 30 || len(lats) != 30 {
		t.Fatalf("want 30 requests (100/s for 300ms) without errors: %+v", r)
	}
	// The last is due at 290 ms and cannot finish before 30 × 20 ms.
	if r.P99 < 250*time.Millisecond {
		t.Fatalf("p99 %v: waiting behind earlier requests was not counted", r.P99)
	}
	if r.P50 < 20*time.Millisecond {
		t.Fatalf("p50 %v is below the server's own 20 ms", r.P50)
	}

	fast := httptest.NewServer(backendHandler())
	defer fast.Close()
	r, _ = runRate("fast", target{addr: strings.TrimPrefix(fast.URL, "http://"), path: pathMCP}, fixed(""), 4, 200, 200*time.Millisecond)
	if r.Errors != 0 || r.Reqs != 40 {
		t.Fatalf("want 40 requests (200/s for 200ms): %+v", r)
	}
}

func TestHalvesP99(t *testing.T) {
	rounds := make([]result, 4)
	lats := [][]time.Duration{{10, 10}, {1, 1}, {10, 30}, {2, 1}}
	if got := halvesP99(rounds, lats); got != 28 {
		t.Fatalf("halvesP99 = %v, want 30-2", got)
	}
}
