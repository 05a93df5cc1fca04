package mcpstdio

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// A server that cannot start, dies before initialize, or refuses it: 502 with a JSON-RPC
// error, the failure logged, no process counted, and the next request tries again.
func TestStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(h *Handler)
	}{
		{"no such command", func(h *Handler) { h.Command = "/nonexistent/mcp-server" }},
		{"exits at once", func(h *Handler) { h.Env["MCPSTDIO_FAKE_MODE"] = "exit" }},
		{"initialize refused", func(h *Handler) { h.Env["MCPSTDIO_FAKE_MODE"] = "badinit" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBridge(t, func(h *Handler) {
				h.StartTimeout = caddy.Duration(10 * time.Second)
				tc.mutate(h)
			})
			for range 2 {
				w := b.post(req{user: "alice", token: "tok-secret-a", body: toolCall(1, "pid", nil)})
				a := decodeAnswer(t, w)
				if w.Code != http.StatusBadGateway || a.Error == nil || a.Error.Code != codeServerUnavailable {
					t.Errorf("status %d, body %s", w.Code, w.Body)
				}
				if strings.Contains(w.Body.String(), "tok-secret-a") {
					t.Error("token in the response")
				}
			}
			var logged bool
			for _, e := range b.logs.All() {
				if strings.Contains(e.Message, "did not start") {
					logged = true
					if tc.name == "initialize refused" && !strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "bad token [REDACTED]") {
						t.Errorf("the server's error text is not redacted: %v", e.ContextMap()["error"])
					}
				}
				if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), "tok-secret-a") {
					t.Errorf("token in the log: %s %v", e.Message, e.ContextMap())
				}
			}
			if !logged {
				t.Error("the start failure is not logged")
			}
			eventually(t, "the failed process is reaped", func() bool { return b.h.pool.lookup("alice") == nil })
			if total, _ := b.h.pool.count(""); total != 0 {
				t.Errorf("a failed process is counted: %d", total)
			}
		})
	}
}

// After a token change, the old process finishes the call it has and then ends; the new
// token's calls go to the new process meanwhile.
func TestTokenChangeDrainsOldProcess(t *testing.T) {
	b := newBridge(t, nil)
	b.call("alice", "tok-old", 0, "pid", nil)
	old := b.current("alice")
	ch := b.startBlocked(context.Background(), "alice", "tok-old", "old-call")
	waitPending(t, old, 1)
	if a := b.call("alice", "tok-new", 1, "env", map[string]any{"name": "TOKEN"}); a.text() != "tok-new" {
		t.Fatalf("new token: %+v", a)
	}
	if old.isDead() {
		t.Fatal("the old process ended with a call in flight")
	}
	if _, user := b.h.pool.count("alice"); user != 2 {
		t.Errorf("alice's processes while draining: %d, want 2", user)
	}
	b.post(req{user: "alice", token: "tok-new", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"old-call"}}`})
	if a := answerWithin(t, ch); a.Error == nil {
		t.Errorf("old call: %+v", a)
	}
	waitExited(t, old)
	if _, user := b.h.pool.count("alice"); user != 1 {
		t.Errorf("alice's processes after draining: %d, want 1", user)
	}
}

func TestSessionsExpireAndStreamsAreBounded(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.SessionTimeout = caddy.Duration(time.Hour) })
	w := b.post(req{user: "alice", token: "tok-a", body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`})
	sid := w.Header().Get(headerSession)

	// Another user's session on GET: 404, as on POST.
	if w := b.serve("GET", req{user: "bob", session: sid}); w.Code != http.StatusNotFound {
		t.Errorf("bob's GET with alice's session: %d", w.Code)
	}
	// A client that does not accept event streams: 406.
	if w := b.serve("GET", req{user: "alice", session: sid, header: map[string]string{"Accept": "application/json"}}); w.Code != http.StatusNotAcceptable {
		t.Errorf("GET accepting JSON only: %d", w.Code)
	}
	// At most maxStreamsPerUser GET streams per user: the next gets 429.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range maxStreamsPerUser {
		go b.serve("GET", req{ctx: ctx, user: "alice", session: sid})
	}
	eventually(t, "every stream open", func() bool {
		b.h.hub.mu.Lock()
		defer b.h.hub.mu.Unlock()
		return len(b.h.hub.subs["alice"]) == maxStreamsPerUser
	})
	if w := b.serve("GET", req{user: "alice", session: sid}); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("one stream too many: %d", w.Code)
	}
	cancel()

	// Unused for the session timeout: forgotten.
	b.clock.Advance(59 * time.Minute)
	b.h.sessions.reap(b.clock.Now())
	if _, ok := b.h.sessions.get(sid, "alice"); !ok {
		t.Fatal("session forgotten early")
	}
	b.clock.Advance(61 * time.Minute)
	b.h.sessions.reap(b.clock.Now())
	if w := b.post(req{user: "alice", token: "tok-a", session: sid, body: toolCall(2, "pid", nil)}); w.Code != http.StatusNotFound {
		t.Errorf("expired session: %d", w.Code)
	}
	// One user's sessions are bounded: the oldest goes.
	var first string
	for i := range maxSessionsPerUser + 1 {
		id := b.h.sessions.create("carol", "2025-11-25")
		if i == 0 {
			first = id
		}
	}
	if _, ok := b.h.sessions.get(first, "carol"); ok {
		t.Error("the oldest of too many sessions is still there")
	}
}

// A process that stops reading its stdin: a write that does not complete within write_timeout
// kills it, and both the blocked caller and the calls in flight get errors, not a hang.
func TestStuckStdinKillsProcess(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.WriteTimeout = caddy.Duration(200 * time.Millisecond) })
	b.call("alice", "tok-a", 0, "pid", nil)
	p := b.current("alice")
	hung := make(chan rpcAnswer, 1)
	go func() { hung <- b.call("alice", "tok-a", 1, "hang", nil) }()
	waitPending(t, p, 1)
	// The hang call is pending, but the fake may not have read it yet; a pending count of 1 on
	// the bridge side is enough: the fake stops reading once it has.
	big := strings.Repeat("x", 1<<20) // far more than a pipe holds
	w := b.post(req{user: "alice", token: "tok-a", body: toolCall(2, "echo", map[string]any{"text": big})})
	if a := decodeAnswer(t, w); a.Error == nil {
		t.Errorf("write to a stuck process: %d %.200s", w.Code, w.Body)
	}
	waitExited(t, p)
	if a := answerWithin(t, hung); a.Error == nil {
		t.Errorf("call in flight on the stuck process: %+v", a)
	}
}
