package mcpstdio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func TestInitializeNegotiatesPerClient(t *testing.T) {
	b := newBridge(t, nil)
	for _, tc := range []struct{ asked, want string }{
		{"2025-06-18", "2025-06-18"},
		{"2025-11-25", "2025-11-25"},
		{"2025-03-26", "2025-03-26"},
		{"2026-07-28", "2025-11-25"}, // a stateless client does not initialize; an initialize is legacy
		{"1999-01-01", "2025-11-25"},
	} {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, tc.asked)
		w := b.post(req{user: "alice", token: "tok-a", body: body})
		if w.Code != 200 {
			t.Fatalf("%s: status %d %s", tc.asked, w.Code, w.Body)
		}
		var m struct {
			ID     string `json:"id"`
			Result struct {
				ProtocolVersion string                `json:"protocolVersion"`
				ServerInfo      struct{ Name string } `json:"serverInfo"`
				Capabilities    map[string]any        `json:"capabilities"`
			} `json:"result"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if m.ID != "init-1" || m.Result.ProtocolVersion != tc.want || m.Result.ServerInfo.Name != "fake" || m.Result.Capabilities["tools"] == nil {
			t.Errorf("asked %s: got %s", tc.asked, w.Body)
		}
		if w.Header().Get(headerSession) == "" {
			t.Errorf("asked %s: no session id", tc.asked)
		}
		// The client's notifications/initialized is swallowed: 202, and the process saw one
		// initialize in all (the bridge's own).
		w = b.post(req{user: "alice", token: "tok-a", session: w.Header().Get(headerSession),
			body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`})
		if w.Code != http.StatusAccepted {
			t.Errorf("initialized: status %d", w.Code)
		}
	}
	if a := b.call("alice", "tok-a", 1, "inits", nil); a.text() != "1" {
		t.Errorf("process saw %q initializes, want 1", a.text())
	}
}

func TestSessionsBelongToOneUser(t *testing.T) {
	b := newBridge(t, nil)
	w := b.post(req{user: "alice", token: "tok-a", body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`})
	sid := w.Header().Get(headerSession)
	if sid == "" {
		t.Fatal("no session")
	}
	// alice with her session: fine.
	if w := b.post(req{user: "alice", token: "tok-a", session: sid, body: toolCall(2, "echo", map[string]any{"text": "hi"})}); w.Code != 200 {
		t.Errorf("own session: %d %s", w.Code, w.Body)
	}
	// bob presenting alice's session, and anyone presenting an unknown one: 404, no process for bob.
	for _, r := range []req{
		{user: "bob", token: "tok-b", session: sid, body: toolCall(3, "env", map[string]any{"name": "TOKEN"})},
		{user: "alice", token: "tok-a", session: "nope", body: toolCall(4, "echo", nil)},
	} {
		w := b.post(r)
		if w.Code != http.StatusNotFound {
			t.Errorf("%s with session %q: status %d, want 404", r.user, r.session, w.Code)
		}
		if strings.Contains(w.Body.String(), "tok-a") {
			t.Error("token leaked")
		}
	}
	if b.current("bob") != nil {
		t.Error("bob got a process from a request with alice's session")
	}
	// DELETE by bob: 404; by alice: 204, then the session is gone.
	if w := b.serve("DELETE", req{user: "bob", session: sid}); w.Code != http.StatusNotFound {
		t.Errorf("bob DELETE: %d", w.Code)
	}
	if w := b.serve("DELETE", req{user: "alice", session: sid}); w.Code != http.StatusNoContent {
		t.Errorf("alice DELETE: %d", w.Code)
	}
	if w := b.post(req{user: "alice", token: "tok-a", session: sid, body: toolCall(5, "echo", nil)}); w.Code != http.StatusNotFound {
		t.Errorf("deleted session: %d", w.Code)
	}
}

// 100 concurrent calls of one user share one process; each answer carries its own id and its
// own text though the fake answers out of order, and ids that collide between clients (every
// client numbers from 1) do not mix answers.
func TestConcurrentCallsOfOneUserNeverMix(t *testing.T) {
	b := newBridge(t, nil)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id any = i % 10 // ten clients' worth of colliding numeric ids
			if i%3 == 0 {
				id = fmt.Sprintf("s-%d", i)
			}
			want := fmt.Sprintf("call %d %s", i, strings.Repeat("x", i%13))
			w := b.post(req{user: "alice", token: "tok-a", body: toolCall(id, "echo", map[string]any{"text": want})})
			a := decodeAnswer(t, w)
			wantID, _ := json.Marshal(id)
			if a.status != 200 || a.text() != want || string(a.ID) != string(wantID) {
				errs <- fmt.Sprintf("call %d: status %d id %s text %q", i, a.status, a.ID, a.text())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if total, user := b.h.pool.count("alice"); total != 1 || user != 1 {
		t.Errorf("processes: total %d, alice %d; want 1, 1", total, user)
	}
	p := b.current("alice")
	p.mu.Lock()
	left := len(p.pending)
	p.mu.Unlock()
	if left != 0 {
		t.Errorf("%d calls still pending", left)
	}
}

// Each user has a process of their own with their own token, in its environment only.
func TestUsersIsolatedTokenInEnvOnly(t *testing.T) {
	b := newBridge(t, nil)
	tokens := map[string]string{"alice": "gho_alice_secret_1", "bob": "gho_bob_secret_2"}
	var wg sync.WaitGroup
	for user, tok := range tokens {
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if a := b.call(user, tok, 1, "env", map[string]any{"name": "TOKEN"}); a.text() != tok {
					t.Errorf("%s sees TOKEN %q", user, a.text())
				}
			}()
		}
	}
	wg.Wait()
	pa, pb := b.current("alice"), b.current("bob")
	if pa == nil || pb == nil || pa == pb || pa.cmd.Process.Pid == pb.cmd.Process.Pid {
		t.Fatal("alice and bob do not have separate processes")
	}
	for user, p := range map[string]*proc{"alice": pa, "bob": pb} {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid))
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
		for _, tok := range tokens {
			if strings.Contains(string(cmdline), tok) {
				t.Errorf("%s's command line contains a token", user)
			}
		}
		if !strings.Contains(string(environ), "TOKEN="+tokens[user]+"\x00") {
			t.Errorf("%s's environment lacks their token", user)
		}
		other := tokens["bob"]
		if user == "bob" {
			other = tokens["alice"]
		}
		if strings.Contains(string(environ), other) {
			t.Errorf("%s's environment holds the other user's token", user)
		}
		// Nothing of Caddy's environment beyond pass_env: the test's own variables stay out.
		if strings.Contains(string(environ), "GOFLAGS=") || strings.Contains(string(environ), "GOPATH=") {
			t.Errorf("%s's process inherited Caddy's environment", user)
		}
	}
	for _, e := range b.logs.All() {
		s := fmt.Sprint(e.Message, e.ContextMap())
		for _, tok := range tokens {
			if strings.Contains(s, tok) {
				t.Errorf("token in log entry %q", e.Message)
			}
		}
	}
}

// A new token (refresh, new login) means a new process: the old one is not reused and ends.
func TestTokenChangeReplacesProcess(t *testing.T) {
	b := newBridge(t, nil)
	if a := b.call("alice", "tok-old", 1, "env", map[string]any{"name": "TOKEN"}); a.text() != "tok-old" {
		t.Fatalf("first: %q", a.text())
	}
	old := b.current("alice")
	if a := b.call("alice", "tok-new", 2, "env", map[string]any{"name": "TOKEN"}); a.text() != "tok-new" {
		t.Fatalf("after the change: %q", a.text())
	}
	if b.current("alice") == old {
		t.Fatal("the process with the old token is still current")
	}
	waitExited(t, old)
	if total, _ := b.h.pool.count("alice"); total != 1 {
		t.Errorf("processes: %d, want 1", total)
	}
	// The same token again: the same (new) process.
	cur := b.current("alice")
	b.call("alice", "tok-new", 3, "pid", nil)
	if b.current("alice") != cur {
		t.Error("an unchanged token started another process")
	}
}

// TestDefaultUserKey: by default the same sub at two issuers is two users (two processes), and a
// request with no authenticated user (the key expands to the bare separator) is refused.
func TestDefaultUserKey(t *testing.T) {
	h := &Handler{}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h.logger = zap.NewNop()
	if err := h.Provision(ctx); err != nil && !strings.Contains(err.Error(), "command") {
		t.Fatal(err)
	}
	if h.UserKey != "{http.auth.user.iss}|{http.auth.user.id}" || h.noUserKey != "|" {
		t.Fatalf("default user key %q (without a user %q)", h.UserKey, h.noUserKey)
	}
	repl := caddy.NewReplacer()
	key := func(iss, sub string) string {
		repl.Set("http.auth.user.iss", iss)
		repl.Set("http.auth.user.id", sub)
		return repl.ReplaceAll(h.UserKey, "")
	}
	if a, b := key("https://a.example", "u1"), key("https://b.example", "u1"); a == b {
		t.Errorf("the same sub at two issuers gives one key %q", a)
	}
}
