package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/testutil"
)

// fakeMCP is an open streamable HTTP MCP server that records what the proxy sends.
type fakeMCP struct {
	t     *testing.T
	noGET bool

	mu        sync.Mutex
	posts     []http.Header // headers of the POSTs carrying Mcp-Method, and of answers
	methods   []string      // their JSON-RPC methods ("" for answers)
	gets      []http.Header
	deletes   []string // session ids ended
	sessions  map[string]bool
	nSessions int
	expire    string        // this session is forgotten at the next request that names it
	unblock   chan struct{} // closed by the "unblock" tool; the "wait" tool waits for it
}

func newFakeMCP(t *testing.T) (*fakeMCP, string) {
	f := &fakeMCP{t: t, sessions: map[string]bool{}, unblock: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/mcp"
}

func (f *fakeMCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get("Mcp-Session-Id")
	switch r.Method {
	case http.MethodGet:
		f.mu.Lock()
		f.gets = append(f.gets, r.Header.Clone())
		known := f.sessions[sid]
		first := len(f.gets) == 1
		f.mu.Unlock()
		if f.noGET {
			http.Error(w, "no GET stream", http.StatusMethodNotAllowed)
			return
		}
		if !known {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if first {
			fmt.Fprint(w, "id: e1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\n")
			fmt.Fprint(w, "data:  \"method\":\"notifications/tools/list_changed\"}\n\n")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
		return
	case http.MethodDelete:
		f.mu.Lock()
		f.deletes = append(f.deletes, sid)
		f.mu.Unlock()
		return
	}
	body, _ := io.ReadAll(r.Body)
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &m)
	if r.Header.Get("Mcp-Method") == "" && m.Method == "ping" && string(m.ID) == "0" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":0,"result":{}}`) // the login probe: no login needed
		return
	}
	f.mu.Lock()
	f.posts = append(f.posts, r.Header.Clone())
	f.methods = append(f.methods, m.Method)
	if sid != "" && sid == f.expire {
		delete(f.sessions, sid)
		f.expire = ""
	}
	known := f.sessions[sid]
	var newSID string
	if m.Method == "initialize" {
		f.nSessions++
		newSID = fmt.Sprintf("s%d", f.nSessions)
		f.sessions[newSID] = true
	}
	f.mu.Unlock()

	switch {
	case m.Method == "initialize":
		w.Header().Set("Mcp-Session-Id", newSID)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2026-07-28","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}}`, m.ID)
	case !known:
		http.Error(w, "unknown session", http.StatusNotFound)
	case m.Method == "" || strings.HasPrefix(m.Method, "notifications/"):
		w.WriteHeader(http.StatusAccepted)
	case m.Method == "resources/read":
		http.Error(w, "boom", http.StatusInternalServerError)
	case m.Method == "tools/call" && m.Params.Name == "wait":
		<-f.unblock
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"waited"}]}}`, m.ID)
	case m.Method == "tools/call" && m.Params.Name == "unblock":
		close(f.unblock)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"jsonrpc\":\"2.0\",\n \"id\":%s,\"result\":{\"content\":[]}}\n", m.ID)
	case m.Method == "tools/call":
		// An SSE answer: a progress notification, then the result.
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n")
		fmt.Fprintf(w, ": a comment\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]}}\n\n", m.ID, m.Params.Name)
	case m.Method == "tools/list" && r.Header.Get("Accept") != "application/json, text/event-stream":
		http.Error(w, "bad Accept", http.StatusNotAcceptable)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"method":%q}}`, m.ID, m.Method)
	}
}

// waitPosts waits until the server has seen n POSTs (the test's deadline bounds it).
func (f *fakeMCP) waitPosts(n int) {
	for {
		f.mu.Lock()
		got := len(f.methods)
		f.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// host is the stdio side of a running Proxy.
type host struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan map[string]any
	done  chan error
}

// lineWriter passes each line written to it, parsed, to a channel.
type lineWriter struct {
	t     *testing.T
	lines chan map[string]any
}

func (w *lineWriter) Write(b []byte) (int, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
		w.t.Errorf("a write to the host is not exactly one line: %q", b)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		w.t.Errorf("the proxy wrote a line that is not JSON: %q", b)
	}
	w.lines <- v
	return len(b), nil
}

func startProxy(t *testing.T, ctx context.Context, mcpURL string, opts ProxyOptions) (*host, *testutil.SyncBuffer) {
	t.Helper()
	var stderr testutil.SyncBuffer
	c, err := New(Config{MCPURL: mcpURL, CacheDir: t.TempDir(), NoBrowser: true, LoginTimeout: time.Second, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	h := &host{t: t, in: pw, lines: make(chan map[string]any, 100), done: make(chan error, 1)}
	go func() { h.done <- c.Proxy(ctx, pr, &lineWriter{t, h.lines}, opts) }()
	t.Cleanup(func() { _ = pw.Close() })
	return h, &stderr
}

func (h *host) send(msg string) {
	h.t.Helper()
	if _, err := io.WriteString(h.in, msg+"\n"); err != nil {
		h.t.Fatal(err)
	}
}

// next returns the next line the proxy wrote (failing the test if none comes in 10s).
func (h *host) next() map[string]any {
	h.t.Helper()
	select {
	case v := <-h.lines:
		return v
	case <-time.After(10 * time.Second):
		h.t.Fatal("the proxy wrote nothing more")
		return nil
	}
}

// wait returns Proxy's result once it has returned.
func (h *host) wait() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("the proxy did not stop")
		return nil
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestProxyRelay(t *testing.T) {
	f, u := newFakeMCP(t)
	h, stderr := startProxy(t, context.Background(), u, ProxyOptions{})

	h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if got := h.next(); got["id"] != float64(1) || js(got["result"].(map[string]any)["serverInfo"]) != `{"name":"fake","version":"1"}` {
		t.Fatalf("initialize answer %v", got)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	// The GET stream's event, split over two data lines, arrives as one line.
	if got := h.next(); got["method"] != "notifications/tools/list_changed" {
		t.Fatalf("GET stream event %v", got)
	}

	h.send(`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	if got := h.next(); got["method"] != "notifications/progress" {
		t.Fatalf("want the progress notification first, got %v", got)
	}
	if got := h.next(); got["id"] != "a" || js(got["result"]) != `{"content":[{"text":"echo","type":"text"}]}` {
		t.Fatalf("tools/call answer %v", got)
	}
	h.send(`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///x"}}`)
	got := h.next()
	e, _ := got["error"].(map[string]any)
	if got["id"] != float64(3) || e["code"] != float64(ProxyErrorCode) ||
		e["message"] != "mcpgate-client: the MCP server at "+u+" answered 500 Internal Server Error: boom" {
		t.Fatalf("failed request answer %v", got)
	}
	h.send(`not json`)
	got = h.next()
	if e, _ := got["error"].(map[string]any); got["id"] != nil || e["code"] != float64(-32700) {
		t.Fatalf("parse error answer %v", got)
	}
	h.send(`{"jsonrpc":"2.0","id":4,"method":"tools/list"}`)
	if got := h.next(); got["id"] != float64(4) || js(got["result"]) != `{"method":"tools/list"}` {
		t.Fatalf("tools/list answer %v", got)
	}
	// An answer to a server-initiated request is POSTed; its 202 writes nothing.
	h.send(`{"jsonrpc":"2.0","id":"srv-1","result":{}}`)
	_ = h.in.Close()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-h.lines:
		t.Errorf("unexpected line %v", v)
	default:
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	want := []struct{ method, mcpMethod, name, sid, version string }{
		{"initialize", "initialize", "", "", ""},
		{"notifications/initialized", "notifications/initialized", "", "s1", "2026-07-28"},
		{"tools/call", "tools/call", "echo", "s1", "2026-07-28"},
		{"resources/read", "resources/read", "file:///x", "s1", "2026-07-28"},
		{"tools/list", "tools/list", "", "s1", "2026-07-28"},
		{"", "", "", "s1", "2026-07-28"},
	}
	if len(f.posts) != len(want) {
		t.Fatalf("%d POSTs (%v), want %d", len(f.posts), f.methods, len(want))
	}
	for i, w := range want {
		hd := f.posts[i]
		if f.methods[i] != w.method || hd.Get("Mcp-Method") != w.mcpMethod || hd.Get("Mcp-Name") != w.name ||
			hd.Get("Mcp-Session-Id") != w.sid || hd.Get("MCP-Protocol-Version") != w.version ||
			hd.Get("Accept") != "application/json, text/event-stream" || hd.Get("Content-Type") != "application/json" {
			t.Errorf("POST %d (%s): headers %v", i, f.methods[i], hd)
		}
	}
	if len(f.gets) == 0 || f.gets[0].Get("Mcp-Session-Id") != "s1" || f.gets[0].Get("Accept") != "text/event-stream" {
		t.Errorf("GET streams %v", f.gets)
	}
	if len(f.deletes) != 1 || f.deletes[0] != "s1" {
		t.Errorf("session ends %v", f.deletes)
	}
	if s := stderr.String(); s != "" {
		t.Errorf("stderr: %s", s)
	}
}

// The host may send a request before the previous one is answered: the server answers "wait"
// only after "unblock" arrived, which a serial relay would never send.
func TestProxyConcurrentRequests(t *testing.T) {
	f, u := newFakeMCP(t)
	f.noGET = true
	h, _ := startProxy(t, context.Background(), u, ProxyOptions{})
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`)
	h.next()
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait"}}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"unblock"}}`)
	ids := map[float64]string{}
	for range 2 {
		got := h.next()
		ids[got["id"].(float64)] = js(got["result"])
	}
	if ids[1] != `{"content":[{"text":"waited","type":"text"}]}` || ids[2] != `{"content":[]}` {
		t.Errorf("answers %v", ids)
	}
	// The GET stream is opened in the background after initialization: wait for it (its 405)
	// before ending the session, so that the count below cannot be 0 by timing.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		n := len(f.gets)
		f.mu.Unlock()
		if n > 0 {
			break
		}
	}
	_ = h.in.Close()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.gets) != 1 {
		t.Errorf("%d GET requests after a 405, want 1", len(f.gets))
	}
}

// An expired session (404) is replaced by replaying initialize and notifications/initialized;
// the host sees only the answer to its request.
func TestProxySessionExpiry(t *testing.T) {
	f, u := newFakeMCP(t)
	f.noGET = true
	h, stderr := startProxy(t, context.Background(), u, ProxyOptions{})
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`)
	h.next()
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	f.waitPosts(2)
	f.mu.Lock()
	f.expire = "s1"
	f.mu.Unlock()
	h.send(`{"jsonrpc":"2.0","id":5,"method":"ping"}`)
	if got := h.next(); got["id"] != float64(5) || js(got["result"]) != `{"method":"ping"}` {
		t.Fatalf("ping answer %v", got)
	}
	_ = h.in.Close()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.methods, ","); got != "initialize,notifications/initialized,ping,initialize,notifications/initialized,ping" {
		t.Errorf("methods %s", got)
	}
	if sid := f.posts[len(f.posts)-1].Get("Mcp-Session-Id"); sid != "s2" {
		t.Errorf("retried with session %q", sid)
	}
	if !strings.Contains(stderr.String(), "the MCP session expired; opening a new one") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// Canceling ctx (SIGTERM) lets the request in flight finish and be answered.
func TestProxyCancelDrains(t *testing.T) {
	f, u := newFakeMCP(t)
	f.noGET = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, _ := startProxy(t, ctx, u, ProxyOptions{})
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`)
	h.next()
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait"}}`)
	f.waitPosts(2) // the server holds the request
	cancel()
	close(f.unblock)
	if got := h.next(); got["id"] != float64(1) || js(got["result"]) != `{"content":[{"text":"waited","type":"text"}]}` {
		t.Fatalf("answer %v", got)
	}
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
}

// A request still in flight after DrainTimeout is abandoned and answered with an error.
func TestProxyDrainTimeout(t *testing.T) {
	f, u := newFakeMCP(t)
	f.noGET = true
	t.Cleanup(func() { close(f.unblock) }) // lets the server shut down
	h, stderr := startProxy(t, context.Background(), u, ProxyOptions{DrainTimeout: time.Millisecond})
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`)
	h.next()
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait"}}`)
	_ = h.in.Close()
	got := h.next()
	if e, _ := got["error"].(map[string]any); got["id"] != float64(1) || e["code"] != float64(ProxyErrorCode) {
		t.Fatalf("answer %v", got)
	}
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "abandoning the requests still in flight") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestMCPName(t *testing.T) {
	tests := []struct{ msg, want string }{
		{`{"method":"tools/call","params":{"name":"echo"}}`, "echo"},
		{`{"method":"prompts/get","params":{"name":"p"}}`, "p"},
		{`{"method":"resources/read","params":{"uri":"file:///a"}}`, "file:///a"},
		{`{"method":"resources/subscribe","params":{"uri":"x://y"}}`, "x://y"},
		{`{"method":"tools/list","params":{"name":"ignored"}}`, ""},
		{`{"method":"tools/call","params":{"name":"caf\u00e9"}}`, ""},
		{`{"method":"tools/call","params":{"name":"a\nb"}}`, ""},
		{`{"method":"tools/call","params":[1]}`, ""},
		{`{"method":"tools/call"}`, ""},
	}
	for _, tt := range tests {
		var m message
		if err := json.Unmarshal([]byte(tt.msg), &m); err != nil {
			t.Fatal(err)
		}
		if got := mcpName(&m); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.msg, got, tt.want)
		}
	}
}
