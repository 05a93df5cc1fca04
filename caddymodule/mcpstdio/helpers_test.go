package mcpstdio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeServerEnv) == "1" {
		runFakeServer()
		return
	}
	// The in-process Caddy of the end-to-end tests must not touch the user's config or data.
	dir, err := os.MkdirTemp("", "mcpstdio-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddy.ConfigAutosavePath = filepath.Join(dir, "config", "caddy", "autosave.json")
	caddy.DefaultStorage.Path = filepath.Join(dir, "data", "caddy")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// bridge is a provisioned Handler running the fake server, with its logs captured.
type bridge struct {
	t     *testing.T
	h     *Handler
	logs  *observer.ObservedLogs
	clock *testClock
}

// newBridge provisions a Handler whose command is this test binary as the fake server and
// whose TOKEN variable is the request's X-GitHub-Token header. mutate runs before Provision.
func newBridge(t *testing.T, mutate func(h *Handler)) *bridge {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	clock := &testClock{now: time.Now()}
	h := &Handler{
		Command: os.Args[0],
		Env:     map[string]string{fakeServerEnv: "1", "TOKEN": "{http.request.header.X-GitHub-Token}"},
		// The unit tests name users by sub alone; TestDefaultUserKey covers the default.
		UserKey:     "{http.auth.user.id}",
		StopTimeout: caddy.Duration(2 * time.Second),
		logger:      zap.New(core),
		now:         clock.Now,
	}
	if mutate != nil {
		mutate(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = h.Cleanup()
	})
	return &bridge{t: t, h: h, logs: logs, clock: clock}
}

// req is one POST to the bridge.
type req struct {
	user, token, session string
	body                 string
	header               map[string]string
	ctx                  context.Context
}

// post sends r through the handler and returns the recorded response.
func (b *bridge) post(r req) *httptest.ResponseRecorder {
	return b.serve("POST", r)
}

func (b *bridge) serve(method string, r req) *httptest.ResponseRecorder {
	hr := httptest.NewRequest(method, "https://mcp.example.com/mcp", strings.NewReader(r.body))
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json, text/event-stream")
	if r.token != "" {
		hr.Header.Set("X-GitHub-Token", r.token)
	}
	if r.session != "" {
		hr.Header.Set(headerSession, r.session)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	repl := caddy.NewReplacer()
	hr = caddyhttp.PrepareRequest(hr, repl, w, nil)
	if r.user != "" {
		repl.Set("http.auth.user.id", r.user)
	}
	if err := b.h.ServeHTTP(w, hr, nil); err != nil {
		b.t.Fatalf("ServeHTTP: %v", err)
	}
	return w
}

// call sends tools/call name with arguments and returns the decoded answer.
func (b *bridge) call(user, token string, id any, name string, args map[string]any) rpcAnswer {
	b.t.Helper()
	w := b.post(req{user: user, token: token, body: toolCall(id, name, args)})
	return decodeAnswer(b.t, w)
}

func toolCall(id any, name string, args map[string]any) string {
	bs, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": name, "arguments": args}})
	return string(bs)
}

// rpcAnswer is a decoded JSON-RPC response of a tool call.
type rpcAnswer struct {
	status int
	ID     json.RawMessage `json:"id"`
	Result *struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
	Error *rpcError `json:"error"`
}

func (a rpcAnswer) text() string {
	if a.Result == nil || len(a.Result.Content) == 0 {
		return ""
	}
	return a.Result.Content[0].Text
}

// decodeAnswer reads a JSON answer, or the last event of an event stream.
func decodeAnswer(t *testing.T, w *httptest.ResponseRecorder) rpcAnswer {
	t.Helper()
	body := w.Body.String()
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		evs := events(body)
		if len(evs) == 0 {
			t.Fatalf("empty event stream")
		}
		body = evs[len(evs)-1]
	}
	var a rpcAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("status %d, body %q: %v", w.Code, body, err)
	}
	a.status = w.Code
	return a
}

// events returns the data of each event in an event-stream body.
func events(body string) []string {
	var out []string
	for block := range strings.SplitSeq(body, "\n\n") {
		for line := range strings.SplitSeq(block, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// eventually waits until cond holds, failing the test after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// current returns the user's current process (nil if none).
func (b *bridge) current(user string) *proc { return b.h.pool.lookup(user) }

// waitExited fails the test if p has not exited within a generous bound.
func waitExited(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("process %d did not exit", p.cmd.Process.Pid)
	}
}

// readAll drains a body for tests that stream.
func readAll(r io.Reader) string { b, _ := io.ReadAll(r); return string(b) }
