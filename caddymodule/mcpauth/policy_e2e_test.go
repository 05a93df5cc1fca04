package mcpauth

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// policyBackend is an MCP backend for the tool policy's end-to-end test:
// tools/list is answered with four tools, as SSE when the client accepts
// only text/event-stream (a notification first), else as JSON; any other
// call with an empty result. It records what reached it.
type policyBackend struct {
	srv      *httptest.Server
	calls    atomic.Int64
	mu       sync.Mutex
	bodies   []string
	lastHdr  http.Header
	released chan struct{}
}

func newPolicyBackend(t *testing.T) *policyBackend {
	b := &policyBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, string(body))
		b.lastHdr = r.Header.Clone()
		b.mu.Unlock()
		if !strings.Contains(string(body), `"tools/list"`) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
			return
		}
		if r.Header.Get("Accept") != "text/event-stream" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, fourTools)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "event: message\ndata: "+fourTools[:30])
		w.(http.Flusher).Flush()
		io.WriteString(w, fourTools[30:]+"\n\n")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *policyBackend) header() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastHdr
}

// TestE2EToolPolicy runs the policy in a real Caddy in front of
// reverse_proxy: refused calls never reach the backend, lists are filtered
// in JSON and SSE, and the placeholders reach the proxy's header_up.
func TestE2EToolPolicy(t *testing.T) {
	e := newE2E(t)
	pb := newPolicyBackend(t)
	e.backend.srv = pb.srv // reverse_proxy to the policy backend
	e.auth = `tool_policy {
			max_body_bytes 2048
			allow tools/call read_* scopes_any mcp:tools
			deny  tools/call delete_*
			allow tools/call admin_* scopes_all mcp:admin
		}`
	e.transport = "header_up X-MCP-Call {http.auth.mcp.method}:{http.auth.mcp.tool}"
	e.load("policy")
	tok := e.token("github:9")

	post := func(body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", e2eOrigin+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := e.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// Refused: none of these reach the backend.
	if resp, body := post(callBody(1, "delete_repo")); resp.StatusCode != 200 || !strings.Contains(body, `"code":-32003`) {
		t.Errorf("denied: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(callBody(2, "delete_repo"), "Mcp-Method", "tools/call", "Mcp-Name", "read_file"); resp.StatusCode != 400 || !strings.Contains(body, "-32020") {
		t.Errorf("lying Mcp-Name: %d %s", resp.StatusCode, body)
	}
	resp, _ := post(callBody(3, "admin_users"))
	if want := `scope="mcp:admin mcp:tools", error="insufficient_scope"`; resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), want) {
		t.Errorf("step-up: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := post("[" + callBody(4, "read_file") + "," + callBody(5, "delete_repo") + "]"); resp.StatusCode != 200 {
		t.Errorf("batch: %d", resp.StatusCode)
	}
	if resp, _ := post(callBody(6, "read_"+strings.Repeat("x", 4096))); resp.StatusCode != 413 {
		t.Errorf("huge body: %d", resp.StatusCode)
	}
	if n := pb.calls.Load(); n != 0 {
		t.Fatalf("the backend saw %d refused requests", n)
	}

	// Allowed: the body arrives intact, the placeholders are set.
	if resp, _ := post(callBody(7, "read_file"), "Mcp-Method", "tools/call", "Mcp-Name", "read_file"); resp.StatusCode != 200 {
		t.Fatalf("allowed: %d", resp.StatusCode)
	}
	if got := pb.header().Get("X-MCP-Call"); got != "tools/call:read_file" {
		t.Errorf("placeholders in header_up: %q", got)
	}
	if pb.bodies[0] != callBody(7, "read_file") {
		t.Errorf("backend got body %q", pb.bodies[0])
	}

	// A chunked body (no Content-Length) is read, decided and passed on whole.
	req, _ := http.NewRequest("POST", e2eOrigin+"/mcp", io.MultiReader(strings.NewReader(callBody(8, "read_chunked"))))
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := e.tester.Client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("chunked: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if got := pb.bodies[len(pb.bodies)-1]; got != callBody(8, "read_chunked") {
		t.Errorf("backend got chunked body %q", got)
	}

	// tools/list, JSON: delete_repo and admin_users hidden.
	wantList := `{"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"read_file"},{"name":"echo"}],"nextCursor":"c2"}}`
	list := `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`
	// The client's Accept-Encoding is not passed on (reverse_proxy's
	// transport may add its own gzip, which it decodes itself).
	if resp, body := post(list, "Accept-Encoding", "br, zstd"); resp.StatusCode != 200 || body != wantList {
		t.Errorf("JSON list: %d %s", resp.StatusCode, body)
	}
	if enc := pb.header().Get("Accept-Encoding"); strings.Contains(enc, "br") {
		t.Errorf("the backend was offered %q", enc)
	}

	// tools/list over SSE.
	req, _ = http.NewRequest("POST", e2eOrigin+"/mcp", strings.NewReader(list))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := e.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	all, _ := io.ReadAll(rd)
	want := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n" +
		"event: message\ndata: " + wantList + "\n\n"
	if string(all) != want {
		t.Errorf("SSE list:\n%q\nwant\n%q", all, want)
	}
}
