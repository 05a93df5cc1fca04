package main

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The load generator speaks HTTP/1.1 over one persistent loopback
// connection per worker: it writes the request bytes (built in a reused
// buffer, no allocation) and parses the answer with http.ReadResponse. This
// costs the shared CPU far less than net/http's Transport, so more of the two
// cores is left to the server being measured.

// target is one endpoint under load.
type target struct {
	addr           string // host:port on loopback
	path           string
	expectUpstream bool   // ask the backend to check the gateway's header rewrite
	body           string // the JSON-RPC request; default toolsCallBody
}

// picker hands out the bearer tokens of a phase. No tokens: no
// Authorization header. Without wrap, the phase ends when the tokens run
// out (every request gets a distinct token); with fullPass, it does not end
// at its deadline before every token was sent once.
type picker struct {
	toks     []string
	wrap     bool
	fullPass bool
	n        atomic.Int64
}

// fixed returns a picker that sends tok on every request ("" for none).
func fixed(tok string) *picker {
	if tok == "" {
		return &picker{wrap: true}
	}
	return &picker{toks: []string{tok}, wrap: true}
}

func (p *picker) next() (string, bool) {
	if len(p.toks) == 0 {
		return "", true
	}
	i := p.n.Add(1) - 1
	if !p.wrap && i >= int64(len(p.toks)) {
		return "", false
	}
	return p.toks[i%int64(len(p.toks))], true
}

// mustContinue reports whether the phase must go on past its deadline.
func (p *picker) mustContinue() bool {
	return p.fullPass && p.n.Load() < int64(len(p.toks))
}

// result is one measured phase.
type result struct {
	Name    string
	Conc    int
	Reqs    int
	Errors  int
	Elapsed time.Duration
	P50     time.Duration
	P99     time.Duration
	// CaddyCPU is the Caddy process's CPU time (user+system) during the
	// phase; zero when not measured.
	CaddyCPU time.Duration
	// firstError describes the first failure (status or I/O), for the log.
	firstError string
}

// RPS is completed requests per second.
func (r result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Reqs) / r.Elapsed.Seconds()
}

// CPUPerReq is Caddy's CPU time per request sent (0 if not measured).
func (r result) CPUPerReq() time.Duration {
	if n := r.Reqs + r.Errors; n > 0 {
		return r.CaddyCPU / time.Duration(n)
	}
	return 0
}

// shortName is a case's label, "(b)" of "(b) Caddy reverse_proxy".
func shortName(name string) string {
	if i := strings.IndexByte(name, ' '); i > 0 {
		return name[:i]
	}
	return name
}

// requestTemplate is a request without its Authorization line.
type requestTemplate struct{ pre, post []byte }

func newTemplate(t target) requestTemplate {
	var pre bytes.Buffer
	fmt.Fprintf(&pre, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2025-11-25\r\n", t.path, t.addr)
	// Every case sends the header (value 0: no check), so (a), (b) and (c)
	// carry the same number of headers: Go's header map changes
	// representation past 8 entries, and that step must not fall between
	// two cases.
	if t.expectUpstream {
		pre.WriteString(expectHeader + ": 1\r\n")
	} else {
		pre.WriteString(expectHeader + ": 0\r\n")
	}
	body := cmp.Or(t.body, toolsCallBody)
	post := "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	return requestTemplate{pre: pre.Bytes(), post: []byte(post)}
}

func (rt requestTemplate) build(buf []byte, tok string) []byte {
	buf = append(buf[:0], rt.pre...)
	if tok != "" {
		buf = append(buf, "Authorization: Bearer "...)
		buf = append(buf, tok...)
		buf = append(buf, "\r\n"...)
	}
	return append(buf, rt.post...)
}

// run sends the tools/call request to t from conc workers until dur has
// passed (or the picker runs out) and measures every request.
func run(name string, t target, p *picker, conc int, dur time.Duration) result {
	r, _ := runRaw(name, t, p, conc, dur)
	return r
}

// combine merges interleaved rounds of one case into one result.
func combine(rounds []result, lats [][]time.Duration) result {
	var all []time.Duration
	out := result{}
	for i, r := range rounds {
		if i == 0 {
			out.Name, out.Conc = r.Name, r.Conc
		}
		out.Reqs += r.Reqs
		out.Errors += r.Errors
		out.Elapsed += r.Elapsed
		out.CaddyCPU += r.CaddyCPU
		if out.firstError == "" {
			out.firstError = r.firstError
		}
		all = append(all, lats[i]...)
	}
	out.P50, out.P99 = percentile(all, 0.50), percentile(all, 0.99)
	return out
}

// worker is one load-generating connection: it sends requests and keeps
// their latencies and failures until done merges them into the phase's
// collector.
type worker struct {
	tmpl requestTemplate
	addr string
	c    *clientConn
	buf  []byte
	lat  []time.Duration
	nerr int
	ferr string
}

func newWorker(tmpl requestTemplate, addr string, capacity int) *worker {
	return &worker{tmpl: tmpl, addr: addr, buf: make([]byte, 0, 2048), lat: make([]time.Duration, 0, capacity)}
}

func (w *worker) fail(s string) {
	w.nerr++
	w.ferr = cmp.Or(w.ferr, s)
}

// send makes one request with tok and records its latency from since (the
// moment it was sent, or was due). A failed dial is counted and slept on
// when backoff is set, so a closed loop does not spin.
//
// A worker starts on an idle connection left by an earlier phase when there
// is one (see idleConns). If the server closed such a connection while it
// idled (the write or the first read fails with EOF, a reset or a broken
// pipe), the request is sent again on a new connection, and only that
// attempt counts: its latency starts after the new dial (or at the due
// time, in the open loop).
func (w *worker) send(tok string, since func() time.Time, backoff bool) {
	pooled := false
	if w.c == nil {
		if w.c = idleConns.get(w.addr); w.c != nil {
			pooled = true
		} else if !w.dial(backoff) {
			return
		}
	}
	w.buf = w.tmpl.build(w.buf, tok)
	t0 := since()
	status, keep, err := w.c.roundTrip(w.buf)
	if pooled && closedWhileIdle(err) {
		w.c.close()
		if !w.dial(backoff) {
			return
		}
		t0 = since()
		status, keep, err = w.c.roundTrip(w.buf)
	}
	d := time.Since(t0)
	switch {
	case err != nil:
		w.fail(err.Error())
	case status != http.StatusOK:
		w.fail("status " + strconv.Itoa(status))
	default:
		w.lat = append(w.lat, d)
	}
	if err != nil || !keep {
		w.c.close()
		w.c = nil
	}
}

// dial opens a new connection for w; a failure is counted, and slept on
// with backoff.
func (w *worker) dial(backoff bool) bool {
	c, err := dial(w.addr)
	if err != nil {
		w.c = nil
		w.fail(err.Error())
		if backoff {
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	w.c = c
	return true
}

// closedWhileIdle reports whether err is how a kept connection that the
// server has closed fails on its next request.
func closedWhileIdle(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// idleConns keeps the load generator's open connections between phases and
// rounds, per address, so that the short interleaved rounds measure requests
// on established connections, as MCP clients keep them, not a burst of new
// connections at the start of every round.
var idleConns = connPool{idle: map[string][]*clientConn{}}

type connPool struct {
	mu   sync.Mutex
	idle map[string][]*clientConn
}

// get takes an idle connection to addr, or returns nil.
func (p *connPool) get(addr string) *clientConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.idle[addr]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	p.idle[addr] = cs[:len(cs)-1]
	return c
}

// put keeps c for the next phase that sends to addr.
func (p *connPool) put(addr string, c *clientConn) {
	p.mu.Lock()
	p.idle[addr] = append(p.idle[addr], c)
	p.mu.Unlock()
}

// collector merges the workers of one phase.
type collector struct {
	mu       sync.Mutex
	all      []time.Duration
	errs     int
	firstErr string
}

// done keeps w's connection for the next phase and merges what it
// measured.
func (col *collector) done(w *worker) {
	if w.c != nil {
		idleConns.put(w.addr, w.c)
		w.c = nil
	}
	col.mu.Lock()
	col.all = append(col.all, w.lat...)
	col.errs += w.nerr
	col.firstErr = cmp.Or(col.firstErr, w.ferr)
	col.mu.Unlock()
}

func (col *collector) result(name string, conc int, elapsed time.Duration) (result, []time.Duration) {
	r := result{Name: name, Conc: conc, Reqs: len(col.all), Errors: col.errs, Elapsed: elapsed, firstError: col.firstErr}
	r.P50, r.P99 = percentile(col.all, 0.50), percentile(col.all, 0.99)
	return r, col.all
}

// runRaw is run that also returns every successful request's latency.
func runRaw(name string, t target, p *picker, conc int, dur time.Duration) (result, []time.Duration) {
	tmpl := newTemplate(t)
	var (
		wg  sync.WaitGroup
		col collector
	)
	start := time.Now()
	deadline := start.Add(dur)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(tmpl, t.addr, 1<<14)
			defer col.done(w)
			for !time.Now().After(deadline) || p.mustContinue() {
				tok, ok := p.next()
				if !ok {
					return
				}
				w.send(tok, time.Now, true)
			}
		}()
	}
	wg.Wait()
	return col.result(name, conc, time.Since(start))
}

// runRate is the open-loop counterpart of runRaw: requests are due at a
// fixed rate (one every 1/rate s) for dur, whether or not earlier ones have
// been answered, and conc workers, each with its own connection, send them.
// A request's latency runs from when it was due, not from when a worker got
// to send it, so time spent waiting behind a slow request counts (no
// coordinated omission). Below saturation this is the latency a client
// sees; at fixed concurrency in runRaw, latency is only concurrency divided
// by throughput (Little's law) plus scheduling noise.
func runRate(name string, t target, p *picker, conc int, rate float64, dur time.Duration) (result, []time.Duration) {
	tmpl := newTemplate(t)
	due := make(chan time.Time, conc)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	n := int(dur / interval)
	go func() {
		defer close(due)
		for i := range n {
			at := start.Add(time.Duration(i) * interval)
			if w := time.Until(at); w > 0 {
				time.Sleep(w)
			}
			due <- at
		}
	}()
	var (
		wg  sync.WaitGroup
		col collector
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(tmpl, t.addr, n/conc+16)
			defer col.done(w)
			for at := range due {
				tok, _ := p.next()
				w.send(tok, func() time.Time { return at }, false)
			}
		}()
	}
	wg.Wait()
	return col.result(name, conc, time.Since(start))
}

// clientConn is one persistent HTTP/1.1 connection.
type clientConn struct {
	nc net.Conn
	br *bufio.Reader
}

func dial(addr string) (*clientConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &clientConn{nc: nc, br: bufio.NewReaderSize(nc, 8192)}, nil
}

func (c *clientConn) close() { _ = c.nc.Close() }

// send writes req and reads the response's header; the caller reads and
// closes the body. A request that takes over 30 s fails.
func (c *clientConn) send(req []byte) (*http.Response, error) {
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.nc.Write(req); err != nil {
		return nil, err
	}
	return http.ReadResponse(c.br, nil)
}

// roundTrip writes req and reads the whole response; keep is false when the
// server will close the connection.
func (c *clientConn) roundTrip(req []byte) (status int, keep bool, err error) {
	resp, err := c.send(req)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, !resp.Close, err
}

// firstEvent measures, n times in sequence on one connection, the time from
// sending GET path until the first complete SSE event ("\n\n") is read.
func firstEvent(addr, path, tok string, expectUpstream bool, n int) (result, error) {
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", path, addr)
	if tok != "" {
		req.WriteString("Authorization: Bearer " + tok + "\r\n")
	}
	if expectUpstream {
		req.WriteString(expectHeader + ": 1\r\n")
	}
	req.WriteString("\r\n")
	c, err := dial(addr)
	if err != nil {
		return result{}, err
	}
	defer func() { c.close() }()
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for range n {
		t0 := time.Now()
		d, keep, err := c.firstEventOnce(req.Bytes(), t0)
		if err != nil {
			return result{}, err
		}
		lat = append(lat, d)
		if !keep {
			c.close()
			if c, err = dial(addr); err != nil {
				return result{}, err
			}
		}
	}
	r := result{Name: "sse", Conc: 1, Reqs: n, Elapsed: time.Since(start)}
	r.P50, r.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	return r, nil
}

// firstEventOnce sends req and returns the time from t0 until the first
// complete SSE event was read; keep is false when the server will close the
// connection.
func (c *clientConn) firstEventOnce(req []byte, t0 time.Time) (time.Duration, bool, error) {
	resp, err := c.send(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("sse: status %d", resp.StatusCode)
	}
	var got []byte
	buf := make([]byte, 512)
	for !bytes.Contains(got, []byte("\n\n")) {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) && bytes.Contains(got, []byte("\n\n")) {
				break
			}
			return 0, false, fmt.Errorf("sse: no event: %w", err)
		}
	}
	d := time.Since(t0)
	_, err = io.Copy(io.Discard, resp.Body)
	return d, !resp.Close, err
}
