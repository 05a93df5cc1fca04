package mcpstdio

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// liveServer serves the bridge on a loopback httptest server, so a test can read an event
// stream while the call is still running. The X-Test-User header plays mcp_auth's part.
func (b *bridge) liveServer() *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repl := caddy.NewReplacer()
		r = caddyhttp.PrepareRequest(r, repl, w, nil)
		repl.Set("http.auth.user.id", r.Header.Get("X-Test-User"))
		_ = b.h.ServeHTTP(w, r, nil)
	}))
	b.t.Cleanup(srv.Close)
	return srv
}

func livePost(t *testing.T, ctx context.Context, url, user, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("X-Test-User", user)
	req.Header.Set("X-GitHub-Token", "tok-"+user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// nextEvent reads one event's data from an event stream.
func nextEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream ended: %v", err)
		}
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
			return d
		}
	}
}

// A server-to-client request (sampling) reaches the client on its call's event stream with an
// id of the bridge's; the client's answer goes back to the process with the process's id; an
// answer posted by another user reaches nothing.
func TestServerRequestRelayed(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.ClientCapabilities = []string{"sampling"} })
	if a := b.call("alice", "tok-alice", 0, "caps", nil); a.text() != `{"sampling":{}}` {
		t.Fatalf("capabilities declared to the process: %q", a.text())
	}
	srv := b.liveServer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp := livePost(t, ctx, srv.URL, "alice", toolCall("c1", "ask", map[string]any{"method": "sampling/createMessage"}))
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	var req message
	if err := json.Unmarshal([]byte(nextEvent(t, r)), &req); err != nil || req.Method != "sampling/createMessage" {
		t.Fatalf("first event: %+v %v", req, err)
	}
	if strings.Contains(string(req.ID), "srv-") {
		t.Errorf("the process's own request id reached the client: %s", req.ID)
	}
	answer := func(user, text string) int {
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID,
			"result": map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": text}}})
		resp := livePost(t, ctx, srv.URL, user, string(body))
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := answer("bob", "from bob"); st != http.StatusAccepted {
		t.Errorf("bob's answer: %d", st)
	}
	if st := answer("alice", "from alice"); st != http.StatusAccepted {
		t.Errorf("alice's answer: %d", st)
	}
	var final struct {
		ID     string          `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(nextEvent(t, r)), &final); err != nil {
		t.Fatal(err)
	}
	if final.ID != "c1" || !strings.Contains(string(final.Result), "from alice") || strings.Contains(string(final.Result), "from bob") {
		t.Errorf("final: %s %s", final.ID, final.Result)
	}
}

// Without a stream to carry it (a JSON-only client, no GET stream), a server request gets an
// error at once instead of waiting forever.
func TestServerRequestWithoutStreamFails(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.ClientCapabilities = []string{"elicitation"} })
	w := b.post(req{user: "alice", token: "tok-a", header: map[string]string{"Accept": "application/json"},
		body: toolCall(1, "ask", map[string]any{"method": "elicitation/create"})})
	a := decodeAnswer(t, w)
	if !strings.Contains(a.text(), "no client stream") {
		t.Errorf("answer: %q", a.text())
	}
}
