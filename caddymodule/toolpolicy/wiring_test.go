package toolpolicy

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// guard is the request path doc.go describes, as mcp_auth is to run it
// (minus token verification: the tests' tokens are unsigned). It lives in
// a test so that the package's API is exercised the way the gateway will
// call it, over real HTTP on loopback.
func guard(p *Policy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := ReadRequestBody(r, p.MaxBodyBytes())
		var re *RequestError
		if errors.As(err, &re) {
			writeJSON(w, re.Status, re.ErrorBody())
			return
		} else if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		req, err := Inspect(r.Header, body)
		if errors.As(err, &re) {
			writeJSON(w, re.Status, re.ErrorBody())
			return
		}
		id, err := p.IdentityFromJWT(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		switch d := p.Decide(id, req); d.Outcome {
		case StepUp:
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+d.Scope+`"`)
			writeJSON(w, d.HTTPStatus(), d.ErrorBody())
			return
		case Forbidden:
			writeJSON(w, d.HTTPStatus(), d.ErrorBody())
			return
		}
		f := p.ResponseFilter(id, req)
		if f == nil {
			next.ServeHTTP(w, r)
			return
		}
		r.Header.Del("Accept-Encoding") // the filter reads plain bodies
		fw := f.Wrap(w)
		next.ServeHTTP(fw, r)
		fw.Finish() // mcp_auth: log a non-nil error
	})
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// fakeBackend answers tools/list with three tools, as JSON or (when the
// request asks with ?sse) as an SSE stream that first sends
// notifications/tools/list_changed and then waits for release before the
// result. It counts the requests that reach it.
type fakeBackend struct {
	calls   atomic.Int32
	release chan struct{}
}

const threeTools = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"rm_rf"},{"name":"admin"}],"nextCursor":"p2"}}`

func (b *fakeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(body), `"tools/list"`) {
		writeJSON(w, http.StatusOK, []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`))
		return
	}
	if _, ok := r.URL.Query()["sse"]; !ok {
		writeJSON(w, http.StatusOK, []byte(threeTools))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n")
	w.(http.Flusher).Flush()
	<-b.release
	for _, part := range []string{"data: " + threeTools[:40], threeTools[40:90], threeTools[90:] + "\n", "\n"} {
		io.WriteString(w, part)
		w.(http.Flusher).Flush()
	}
}

func bearer(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return "Bearer " + enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(payload)) + ".sig"
}

func TestGuardOverHTTP(t *testing.T) {
	backend := &fakeBackend{release: make(chan struct{})}
	srv := httptest.NewServer(guard(listPolicy(t), backend))
	defer srv.Close()
	post := func(path, auth, body string, kv ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	readAll := func(resp *http.Response) string {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	user := bearer(`{"sub":"u","scope":"read"}`)

	// A lying client: the headers name an allowed tool, the body calls a
	// denied one. 400 -32020, and the backend never sees it.
	resp := post("/mcp", user, toolCall("rm_rf"), "Mcp-Method", "tools/call", "Mcp-Name", "echo")
	if body := readAll(resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "-32020") {
		t.Errorf("lying client: %d %s", resp.StatusCode, body)
	}
	// Denied outright: a JSON-RPC error with the request's id.
	resp = post("/mcp", user, toolCall("rm_rf"))
	if body := readAll(resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"id":1,"error":{"code":-32003`) {
		t.Errorf("denied: %d %s", resp.StatusCode, body)
	}
	// Step-up: 403 with the union of scopes.
	resp = post("/mcp", user, toolCall("write"))
	if readAll(resp); resp.StatusCode != http.StatusForbidden ||
		resp.Header.Get("WWW-Authenticate") != `Bearer error="insufficient_scope", scope="read write"` {
		t.Errorf("step-up: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A batch with one denied call.
	resp = post("/mcp", user, "["+toolCall("echo")+","+toolCall("rm_rf")+"]")
	if body := readAll(resp); !strings.HasPrefix(body, "[") || strings.Count(body, "-32003") != 2 {
		t.Errorf("batch: %d %s", resp.StatusCode, body)
	}
	// A huge body: 413, by Content-Length and by reading.
	huge := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":"` + strings.Repeat("a", 2<<20) + `"}}}`
	resp = post("/mcp", user, huge)
	if readAll(resp); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", io.MultiReader(strings.NewReader(huge))) // no Content-Length
	req.Header.Set("Authorization", user)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge chunked body: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if n := backend.calls.Load(); n != 0 {
		t.Fatalf("the backend saw %d refused requests", n)
	}

	// Allowed call: forwarded with its body intact.
	resp = post("/mcp", user, toolCall("echo"))
	if body := readAll(resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"content"`) || backend.calls.Load() != 1 {
		t.Errorf("allowed: %d %s", resp.StatusCode, body)
	}

	// tools/list as JSON: rm_rf and admin hidden from this user.
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	resp = post("/mcp", user, list)
	want := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}],"nextCursor":"p2"}}`
	if body := readAll(resp); body != want || resp.ContentLength != int64(len(want)) {
		t.Errorf("JSON list: %s (Content-Length %d)", body, resp.ContentLength)
	}

	// tools/list as SSE: the list_changed notification arrives while the
	// backend still holds the result; the result arrives filtered.
	resp = post("/mcp?sse", bearer(`{"sub":"a","groups":["admins"]}`), list)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	var first strings.Builder
	for !strings.HasSuffix(first.String(), "\n\n") {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the notification: %v", err)
		}
		first.WriteString(line)
	}
	if !strings.Contains(first.String(), "notifications/tools/list_changed") {
		t.Fatalf("first event %q", first.String())
	}
	close(backend.release)
	rest, _ := io.ReadAll(rd)
	wantEvent := `data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"admin"}],"nextCursor":"p2"}}` + "\n\n"
	if string(rest) != wantEvent {
		t.Errorf("SSE result %q, want %q", rest, wantEvent)
	}
}
