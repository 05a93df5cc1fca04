package mcpstdio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// pendingCount returns the client calls in flight to p.
func pendingCount(p *proc) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.pending {
		if !c.internal {
			n++
		}
	}
	return n
}

// waitPending waits until p has n calls in flight (the call under test has reached it).
func waitPending(t *testing.T, p *proc, n int) {
	t.Helper()
	eventually(t, "the call reaches the process", func() bool { return p != nil && pendingCount(p) == n })
}

// startBlocked starts a "block" call of user in the background; the answer arrives on the
// returned channel.
func (b *bridge) startBlocked(ctx context.Context, user, token string, id any) chan rpcAnswer {
	out := make(chan rpcAnswer, 1)
	go func() {
		w := b.post(req{ctx: ctx, user: user, token: token, body: toolCall(id, "block", nil)})
		if w.Body.Len() == 0 {
			out <- rpcAnswer{status: w.Code}
			return
		}
		var a rpcAnswer
		_ = json.Unmarshal(w.Body.Bytes(), &a)
		a.status = w.Code
		out <- a
	}()
	return out
}

func answerWithin(t *testing.T, ch chan rpcAnswer) rpcAnswer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("the call hangs")
		return rpcAnswer{}
	}
}

// A process killed from outside mid-call: the caller gets a JSON-RPC error, never a hang;
// the next call starts a new process; nothing is left.
func TestProcessKilledMidCall(t *testing.T) {
	b := newBridge(t, nil)
	b.call("alice", "tok-a", 0, "pid", nil)
	p := b.current("alice")
	ch := b.startBlocked(context.Background(), "alice", "tok-a", 7)
	waitPending(t, p, 1)
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a := answerWithin(t, ch)
	if a.Error == nil || a.Error.Code != codeServerUnavailable || string(a.ID) != "7" {
		t.Fatalf("answer after the kill: %+v", a)
	}
	waitExited(t, p)
	if total, _ := b.h.pool.count("alice"); total != 0 {
		t.Errorf("processes after the crash: %d", total)
	}
	if a := b.call("alice", "tok-a", 8, "pid", nil); a.text() == "" || a.text() == strconv.Itoa(p.cmd.Process.Pid) {
		t.Errorf("after the crash: %+v", a)
	}
}

// A process that crashes while other calls wait: all of them get an error.
func TestProcessCrashFailsEveryPendingCall(t *testing.T) {
	b := newBridge(t, nil)
	b.call("alice", "tok-a", 0, "pid", nil)
	p := b.current("alice")
	var chans []chan rpcAnswer
	for i := range 5 {
		chans = append(chans, b.startBlocked(context.Background(), "alice", "tok-a", i))
	}
	waitPending(t, p, 5)
	if a := b.call("alice", "tok-a", "boom", "crash", nil); a.Error == nil {
		t.Errorf("crash call: %+v", a)
	}
	for _, ch := range chans {
		if a := answerWithin(t, ch); a.Error == nil || a.status != 200 {
			t.Errorf("pending call after the crash: %+v", a)
		}
	}
	waitExited(t, p)
}

// A hung process (it stops reading and answering): the call times out with a JSON-RPC error,
// the ping check kills the process, the next call gets a fresh one.
func TestHungProcessIsReplaced(t *testing.T) {
	b := newBridge(t, func(h *Handler) {
		h.CallTimeout = caddy.Duration(200 * time.Millisecond)
		h.PingTimeout = caddy.Duration(200 * time.Millisecond)
	})
	b.call("alice", "tok-a", 0, "pid", nil)
	p := b.current("alice")
	a := b.call("alice", "tok-a", 1, "hang", nil)
	if a.Error == nil || a.Error.Code != codeRequestTimeout {
		t.Fatalf("hung call: %+v", a)
	}
	waitExited(t, p)
	if a := b.call("alice", "tok-a", 2, "echo", map[string]any{"text": "alive"}); a.text() != "alive" {
		t.Errorf("after the hang: %+v", a)
	}
	if b.current("alice") == p {
		t.Error("the hung process is still current")
	}
}

// A client that goes away: the process gets notifications/cancelled with the bridge's id and
// nothing stays pending.
func TestClientGoneCancelsTheCall(t *testing.T) {
	b := newBridge(t, nil)
	b.call("alice", "tok-a", 0, "pid", nil)
	p := b.current("alice")
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.startBlocked(ctx, "alice", "tok-a", "client-1")
	waitPending(t, p, 1)
	var bridgeID string
	p.mu.Lock()
	for k := range p.pending {
		bridgeID = k
	}
	p.mu.Unlock()
	cancel()
	answerWithin(t, ch)
	if n := pendingCount(p); n != 0 {
		t.Errorf("%d calls pending after the client left", n)
	}
	if a := b.call("alice", "tok-a", 2, "cancelled", nil); a.text() != bridgeID {
		t.Errorf("process saw cancellations %q, want the bridge's id %s", a.text(), bridgeID)
	}
}

// notifications/cancelled from the client reaches the process with the mapped id, and the
// cancelled request ends at once.
func TestClientCancellationIsMapped(t *testing.T) {
	b := newBridge(t, nil)
	w := b.post(req{user: "alice", token: "tok-a", body: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`})
	sid := w.Header().Get(headerSession)
	p := b.current("alice")
	out := make(chan rpcAnswer, 1)
	go func() {
		w := b.post(req{user: "alice", token: "tok-a", session: sid, body: toolCall(42, "block", nil)})
		var a rpcAnswer
		_ = json.Unmarshal(w.Body.Bytes(), &a)
		out <- a
	}()
	waitPending(t, p, 1)
	// bob cannot cancel alice's call; another session of alice cannot either.
	b.post(req{user: "bob", token: "tok-b", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42}}`})
	b.post(req{user: "alice", token: "tok-a", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42}}`})
	if n := pendingCount(p); n != 1 {
		t.Fatalf("a cancellation from outside the session ended the call (%d pending)", n)
	}
	w = b.post(req{user: "alice", token: "tok-a", session: sid, body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42,"reason":"user"}}`})
	if w.Code != http.StatusAccepted {
		t.Errorf("cancel: status %d", w.Code)
	}
	a := answerWithin(t, out)
	if a.Error == nil || string(a.ID) != "42" {
		t.Errorf("cancelled call: %+v", a)
	}
	if a := b.call("alice", "tok-a", 2, "cancelled", nil); a.text() == "" || strings.Contains(a.text(), "42") && a.text() == "42" {
		t.Errorf("process saw cancellations %q, want the bridge's id, not 42", a.text())
	}
}

func TestIdleProcessEnds(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.IdleTimeout = caddy.Duration(time.Hour) })
	b.call("alice", "tok-a", 0, "pid", nil)
	p := b.current("alice")
	b.clock.Advance(59 * time.Minute)
	b.h.pool.reap(b.clock.Now())
	if b.current("alice") != p {
		t.Fatal("ended before idle_timeout")
	}
	b.clock.Advance(2 * time.Minute)
	b.h.pool.reap(b.clock.Now())
	waitExited(t, p)
	if total, _ := b.h.pool.count("alice"); total != 0 {
		t.Errorf("processes: %d", total)
	}
}

// A busy process is never ended for being idle: idleness counts from its last call's end.
func TestBusyProcessIsNotIdle(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.IdleTimeout = caddy.Duration(time.Minute) })
	b.call("alice", "tok-a", 0, "pid", nil)
	p := b.current("alice")
	ch := b.startBlocked(context.Background(), "alice", "tok-a", 1)
	waitPending(t, p, 1)
	b.clock.Advance(time.Hour)
	b.h.pool.reap(b.clock.Now())
	if b.current("alice") != p || p.isDead() {
		t.Fatal("a process with a call in flight was reaped")
	}
	b.post(req{user: "alice", token: "tok-a", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`})
	answerWithin(t, ch)
}

func TestProcessLimits(t *testing.T) {
	b := newBridge(t, func(h *Handler) {
		h.MaxProcesses = 2
		h.MaxProcessesPerUser = 1
		h.RetryAfter = caddy.Duration(7 * time.Second)
	})
	// alice and bob each have a busy process: the limit is full.
	chA := b.startBlocked(context.Background(), "alice", "tok-a", 1)
	chB := b.startBlocked(context.Background(), "bob", "tok-b", 1)
	for _, u := range []string{"alice", "bob"} {
		eventually(t, u+" has a process", func() bool { return b.current(u) != nil })
		waitPending(t, b.current(u), 1)
	}
	w := b.post(req{user: "carol", token: "tok-c", body: toolCall(1, "pid", nil)})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "7" {
		t.Errorf("carol over the limit: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// alice's token changes while her old process is busy: one process per user, so 503 too.
	w = b.post(req{user: "alice", token: "tok-a2", body: toolCall(2, "pid", nil)})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("alice's second process: %d", w.Code)
	}
	if total, _ := b.h.pool.count(""); total != 2 {
		t.Errorf("processes: %d, want 2", total)
	}
	// bob's call ends: his idle process makes room for carol.
	bob := b.current("bob")
	b.post(req{user: "bob", token: "tok-b", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`})
	answerWithin(t, chB)
	if a := b.call("carol", "tok-c", 3, "env", map[string]any{"name": "TOKEN"}); a.text() != "tok-c" {
		t.Errorf("carol after bob went idle: %+v", a)
	}
	waitExited(t, bob)
	if total, _ := b.h.pool.count(""); total > 2 {
		t.Errorf("processes: %d > limit", total)
	}
	b.post(req{user: "alice", token: "tok-a", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`})
	answerWithin(t, chA)
}

func TestTooManyCallsPerProcess(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.MaxConcurrentCalls = 2 })
	ch1 := b.startBlocked(context.Background(), "alice", "tok-a", 1)
	eventually(t, "alice has a process", func() bool { return b.current("alice") != nil })
	p := b.current("alice")
	waitPending(t, p, 1)
	ch2 := b.startBlocked(context.Background(), "alice", "tok-a", 2)
	waitPending(t, p, 2)
	w := b.post(req{user: "alice", token: "tok-a", body: toolCall(3, "pid", nil)})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("third call: %d", w.Code)
	}
	for i, ch := range []chan rpcAnswer{ch1, ch2} {
		b.post(req{user: "alice", token: "tok-a", body: fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d}}`, i+1)})
		answerWithin(t, ch)
	}
}

// Cleanup (Caddy reload or stop) ends every process; none is left running.
func TestCleanupEndsEveryProcess(t *testing.T) {
	b := newBridge(t, nil)
	var pids []int
	for _, u := range []string{"alice", "bob", "carol"} {
		a := b.call(u, "tok-"+u, 1, "pid", nil)
		pid, err := strconv.Atoi(a.text())
		if err != nil {
			t.Fatalf("%s: %+v", u, a)
		}
		pids = append(pids, pid)
	}
	// One of them is busy during the cleanup: it still ends and its caller gets an answer.
	ch := b.startBlocked(context.Background(), "alice", "tok-alice", 9)
	waitPending(t, b.current("alice"), 1)
	if err := b.h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	answerWithin(t, ch)
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Cleanup (%v)", pid, err)
		}
	}
	if total, _ := b.h.pool.count(""); total != 0 {
		t.Errorf("pool still counts %d processes", total)
	}
	w := b.post(req{user: "alice", token: "tok-alice", body: toolCall(1, "pid", nil)})
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("after Cleanup: %d", w.Code)
	}
}

// stderr reaches the log with the user id and the token redacted.
func TestStderrLoggedRedacted(t *testing.T) {
	b := newBridge(t, nil)
	const tok = "gho_supersecret_value_123"
	b.call("alice", tok, 1, "stderr", map[string]any{"text": "auth with " + tok + " failed"})
	p := b.current("alice")
	b.call("alice", tok, 2, "crash", nil) // ends the process, so its stderr is fully read
	waitExited(t, p)
	var found bool
	for _, e := range b.logs.All() {
		m := e.ContextMap()
		line, _ := m["line"].(string)
		if strings.Contains(fmt.Sprint(e.Message, m), tok) {
			t.Errorf("token in log: %q", e.Message)
		}
		if strings.Contains(line, "auth with "+redacted+" failed") {
			found = true
			if m["user_id"] != "alice" {
				t.Errorf("stderr line without user id: %v", m)
			}
		}
	}
	if !found {
		t.Error("the redacted stderr line is not in the log")
	}
}

// A server's ping to the client is answered by the bridge.
func TestServerPingAnswered(t *testing.T) {
	b := newBridge(t, nil)
	if a := b.call("alice", "tok-a", 1, "pingclient", nil); a.text() != "pong received" {
		t.Errorf("server ping: %+v", a)
	}
}

// Progress notifications of a call stream back over SSE with the client's own token; two
// clients using the same token each get only their own.
func TestProgressStreamsWithClientToken(t *testing.T) {
	b := newBridge(t, nil)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"progress","arguments":{"text":"c%d"},"_meta":{"progressToken":"same"}}}`, i, i)
			w := b.post(req{user: "alice", token: "tok-a", body: body})
			if ct := w.Header().Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("content type %q", ct)
				return
			}
			evs := events(w.Body.String())
			if len(evs) != 4 {
				t.Errorf("client %d: %d events: %v", i, len(evs), evs)
				return
			}
			for _, ev := range evs[:3] {
				if !strings.Contains(ev, `"progressToken":"same"`) || !strings.Contains(ev, "notifications/progress") {
					t.Errorf("client %d: progress event %s", i, ev)
				}
			}
			if want := fmt.Sprintf(`done c%d`, i); !strings.Contains(evs[3], want) || !strings.Contains(evs[3], fmt.Sprintf(`"id":%d`, i)) {
				t.Errorf("client %d: final event %s", i, evs[3])
			}
		}()
	}
	wg.Wait()
	// A client that accepts only JSON gets the result alone.
	w := b.post(req{user: "alice", token: "tok-a", header: map[string]string{"Accept": "application/json"},
		body: `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"progress","arguments":{"text":"j"},"_meta":{"progressToken":1}}}`})
	if a := decodeAnswer(t, w); w.Header().Get("Content-Type") != "application/json" || a.text() != "done j" {
		t.Errorf("JSON-only client: %s %s", w.Header().Get("Content-Type"), w.Body)
	}
}

// Input the bridge refuses, each with its status and JSON-RPC error.
func TestBadRequests(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.MaxMessageBytes = 1024 })
	for _, tc := range []struct {
		name   string
		r      req
		method string
		status int
		code   int
	}{
		{"not json", req{user: "alice", body: `{"jsonrpc":`}, "POST", 400, codeParseError},
		{"batch", req{user: "alice", body: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`}, "POST", 400, codeInvalidRequest},
		{"no jsonrpc", req{user: "alice", body: `{"id":1,"method":"ping"}`}, "POST", 400, codeInvalidRequest},
		{"null id", req{user: "alice", body: `{"jsonrpc":"2.0","id":null,"method":"ping"}`}, "POST", 400, codeInvalidRequest},
		{"too large", req{user: "alice", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 2000) + `"}}`}, "POST", 413, codeInvalidRequest},
		{"Mcp-Method mismatch", req{user: "alice", header: map[string]string{"Mcp-Method": "tools/list"}, body: toolCall(1, "pid", nil)}, "POST", 400, codeHeaderMismatch},
		{"Mcp-Name mismatch", req{user: "alice", header: map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "echo"}, body: toolCall(1, "pid", nil)}, "POST", 400, codeHeaderMismatch},
		{"no user", req{body: toolCall(1, "pid", nil)}, "POST", 403, codeInvalidRequest},
		{"PUT", req{user: "alice"}, "PUT", 405, codeInvalidRequest},
		{"DELETE without session", req{user: "alice"}, "DELETE", 400, codeInvalidRequest},
		{"GET stateless", req{user: "alice", header: map[string]string{"Mcp-Protocol-Version": "2026-07-28"}}, "GET", 405, codeInvalidRequest},
	} {
		w := b.serve(tc.method, tc.r)
		var a rpcAnswer
		_ = json.Unmarshal(w.Body.Bytes(), &a)
		if w.Code != tc.status || a.Error == nil || a.Error.Code != tc.code {
			t.Errorf("%s: status %d body %s; want %d code %d", tc.name, w.Code, w.Body, tc.status, tc.code)
		}
	}
	if total, _ := b.h.pool.count(""); total != 0 {
		t.Errorf("bad requests started %d processes", total)
	}
}

// 2026-07-28 stateless requests: no initialize, no session, server/discover answered from the
// process's initialize result, results marked complete.
func TestStatelessClient(t *testing.T) {
	b := newBridge(t, nil)
	h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"}
	w := b.post(req{user: "alice", token: "tok-a", header: h, body: `{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`})
	var d struct {
		Result struct {
			ResultType        string   `json:"resultType"`
			SupportedVersions []string `json:"supportedVersions"`
			ServerInfo        struct{ Name string }
			Capabilities      map[string]any
		}
	}
	_ = json.Unmarshal(w.Body.Bytes(), &d)
	if w.Code != 200 || d.Result.ResultType != "complete" || d.Result.SupportedVersions[0] != "2026-07-28" ||
		d.Result.ServerInfo.Name != "fake" || d.Result.Capabilities["tools"] == nil || w.Header().Get(headerSession) != "" {
		t.Errorf("discover: %d %s", w.Code, w.Body)
	}
	w = b.post(req{user: "alice", token: "tok-a", header: map[string]string{"Mcp-Protocol-Version": "2026-07-28",
		"Mcp-Method": "tools/call", "Mcp-Name": "echo"}, body: toolCall(2, "echo", map[string]any{"text": "stateless"})})
	if !strings.Contains(w.Body.String(), `"resultType":"complete"`) || decodeAnswer(t, w).text() != "stateless" {
		t.Errorf("stateless call: %s", w.Body)
	}
}

// Notifications that belong to no call reach the user's GET stream, and only that user's.
func TestNotificationsOnGetStream(t *testing.T) {
	b := newBridge(t, nil)
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	streamA, streamB := make(chan string, 1), make(chan string, 1)
	go func() { streamA <- b.serve("GET", req{ctx: ctxA, user: "alice"}).Body.String() }()
	go func() { streamB <- b.serve("GET", req{ctx: ctxB, user: "bob"}).Body.String() }()
	eventually(t, "both streams open", func() bool {
		b.h.hub.mu.Lock()
		defer b.h.hub.mu.Unlock()
		return len(b.h.hub.subs) == 2
	})
	b.call("alice", "tok-a", 1, "notify", map[string]any{"text": "for alice"})
	b.call("bob", "tok-b", 1, "pid", nil)
	// Give the reader's broadcast a moment only through a second round trip: the fake wrote
	// the notification before the answer, and the bridge reads in order.
	cancelA()
	cancelB()
	a, bo := <-streamA, <-streamB
	if !strings.Contains(a, `"data":"for alice"`) || !strings.Contains(a, "notifications/message") {
		t.Errorf("alice's stream: %q", a)
	}
	if strings.Contains(bo, "for alice") {
		t.Error("bob's stream got alice's notification")
	}
}

// A configured env value redacts from stderr like a placeholder's: a Caddyfile's {$VAR} is
// expanded when adapted, so a shared secret put there has no "{" left by the time it is used.
func TestStderrRedactsLiteralEnvValues(t *testing.T) {
	const shared = "literal-shared-secret-987"
	b := newBridge(t, func(h *Handler) { h.Env["SHARED"] = shared })
	b.call("alice", "tok-a", 1, "stderr", map[string]any{"text": "using " + shared})
	p := b.current("alice")
	b.call("alice", "tok-a", 2, "crash", nil)
	waitExited(t, p)
	var found bool
	for _, e := range b.logs.All() {
		m := e.ContextMap()
		if strings.Contains(fmt.Sprint(e.Message, m), shared) {
			t.Errorf("the literal env value is in the log: %q %v", e.Message, m)
		}
		if line, _ := m["line"].(string); strings.Contains(line, "using "+redacted) {
			found = true
		}
	}
	if !found {
		t.Error("the redacted stderr line is not in the log")
	}
}
