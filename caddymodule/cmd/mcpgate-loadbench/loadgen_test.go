package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

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

// TestTemplateBody checks that a target's body replaces the tools/call
// with a matching Content-Length, and that the default stays tools/call.
func TestTemplateBody(t *testing.T) {
	for _, tt := range []struct {
		t    target
		want string
	}{
		{target{addr: "127.0.0.1:1", path: pathMCP}, toolsCallBody},
		{target{addr: "127.0.0.1:1", path: pathMCP, body: toolsListBody}, toolsListBody},
	} {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(newTemplate(tt.t).build(nil, "tok"))))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(req.Body)
		if string(b) != tt.want || req.ContentLength != int64(len(tt.want)) || req.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("body %q (length %d), Authorization %q; want %q", b, req.ContentLength, req.Header.Get("Authorization"), tt.want)
		}
	}
}
