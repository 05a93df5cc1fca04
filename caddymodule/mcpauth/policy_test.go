package mcpauth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
)

// testPolicy is the policy of the tests below. The test tokens carry
// "mcp:tools github:repo" (testEnv.claims).
const testPolicyCaddyfile = `mcp_auth {
	tool_policy {
		default allow
		max_body_bytes 4096
		allow tools/call read_* scopes_any github:repo mcp:admin
		deny  tools/call delete_*
		allow tools/call admin_* claim groups contains admins
		allow tools/call write_* scopes_all mcp:write
	}
}`

// policyEnv is a testEnv whose handler has testPolicyCaddyfile's policy.
func policyEnv(t *testing.T, mutate func(*Handler, *testEnv)) *testEnv {
	t.Helper()
	var parsed Handler
	if err := parsed.UnmarshalCaddyfile(caddyfile.NewTestDispenser(testPolicyCaddyfile)); err != nil {
		t.Fatal(err)
	}
	return newTestEnv(t, func(h *Handler, env *testEnv) {
		h.ToolPolicy = parsed.ToolPolicy
		if mutate != nil {
			mutate(h, env)
		}
	})
}

func callBody(id int, tool string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"secret_arg":"hunter2-argument"}}}`, id, tool)
}

func postMCP(tok, body string, kv ...string) *http.Request {
	r := bearerRequest("POST", "/mcp", tok)
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	return r
}

func TestToolPolicyDecisions(t *testing.T) {
	for _, c := range []struct {
		name      string
		claims    func(map[string]any)
		body      string
		hdr       []string
		status    int
		forwarded bool
		wantBody  string // substring of the response body
		challenge string // WWW-Authenticate, "" for none
	}{
		{name: "allowed by a scopes_any rule", body: callBody(1, "read_file"), status: 200, forwarded: true, wantBody: "backend ok"},
		{name: "no rule, default allow", body: callBody(2, "echo"), status: 200, forwarded: true},
		{name: "deny rule: JSON-RPC error with the id", body: callBody(7, "delete_repo"), status: 200,
			wantBody: `"id":7,"error":{"code":-32003`},
		{name: "claim fails: forbidden, no challenge", body: callBody(3, "admin_users"), status: 200,
			wantBody: `"code":-32003`},
		{name: "claim holds", claims: func(c map[string]any) { c["groups"] = []string{"staff", "admins"} },
			body: callBody(3, "admin_users"), status: 200, forwarded: true},
		{name: "step-up asks for the union of scopes", body: callBody(4, "write_file"), status: 403,
			challenge: `Bearer resource_metadata="` + testPRMURL + `", scope="github:repo mcp:tools mcp:write", error="insufficient_scope"`},
		{name: "step-up satisfied", claims: func(c map[string]any) { c["scope"] = "mcp:tools mcp:write" },
			body: callBody(4, "write_file"), status: 200, forwarded: true},
		{name: "lying Mcp-Name: 400 -32020", body: callBody(5, "delete_repo"), hdr: []string{"Mcp-Method", "tools/call", "Mcp-Name", "read_file"},
			status: 400, wantBody: "-32020"},
		{name: "honest headers pass", body: callBody(5, "read_file"), hdr: []string{"Mcp-Method", "tools/call", "Mcp-Name", "read_file"},
			status: 200, forwarded: true},
		{name: "batch with one denied call is refused whole", body: "[" + callBody(1, "read_file") + "," + callBody(2, "delete_repo") + "]",
			status: 200, wantBody: `[{"jsonrpc":"2.0","id":1,"error":{"code":-32003`},
		{name: "malformed JSON-RPC", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`, status: 400, wantBody: `"error"`},
		{name: "huge body: 413", body: callBody(1, "read_"+strings.Repeat("a", 5000)), status: 413, wantBody: "-32600"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := policyEnv(t, nil)
			claims := env.claims("github:1")
			if c.claims != nil {
				c.claims(claims)
			}
			w := env.do(postMCP(env.token(claims), c.body, c.hdr...))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if got := env.backend.Calls() == 1; got != c.forwarded {
				t.Fatalf("forwarded = %v, want %v", got, c.forwarded)
			}
			if !c.forwarded && env.exchange.calls.Load() != 0 {
				t.Errorf("a refused call cost %d token exchanges", env.exchange.calls.Load())
			}
			if !strings.Contains(w.Body.String(), c.wantBody) {
				t.Errorf("body %s, want containing %s", w.Body, c.wantBody)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if strings.Contains(w.Body.String(), "hunter2") {
				t.Error("the arguments were echoed")
			}
		})
	}
}

// TestToolPolicyBodyReachesBackend: the backend receives exactly the body
// the policy inspected.
func TestToolPolicyBodyReachesBackend(t *testing.T) {
	env := policyEnv(t, nil)
	body := callBody(1, "read_file")
	var got string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
		return nil
	})
	r := postMCP(env.validToken("github:1"), body)
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	if err := env.h.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	if got != body {
		t.Errorf("backend got %q", got)
	}
}

// TestToolPolicyChunkedHugeBody: a body without Content-Length is bounded
// while it is read.
func TestToolPolicyChunkedHugeBody(t *testing.T) {
	env := policyEnv(t, nil)
	r := postMCP(env.validToken("github:1"), "")
	r.Body = io.NopCloser(strings.NewReader(callBody(1, "read_"+strings.Repeat("a", 10000))))
	r.ContentLength = -1
	if w := env.do(r); w.Code != http.StatusRequestEntityTooLarge || env.backend.Calls() != 0 {
		t.Errorf("status %d, backend calls %d", w.Code, env.backend.Calls())
	}
}

// TestToolPolicyGetPasses: GET (the SSE stream) and DELETE carry no call
// and pass without a body read or an audit entry.
func TestToolPolicyGetPasses(t *testing.T) {
	env := policyEnv(t, nil)
	for _, m := range []string{"GET", "DELETE"} {
		if w := env.do(bearerRequest(m, "/mcp", env.validToken("github:1"))); w.Code != 200 {
			t.Errorf("%s: %d", m, w.Code)
		}
	}
	if n := env.logs.FilterLoggerName("audit").Len(); n != 0 {
		t.Errorf("%d audit entries for GET/DELETE", n)
	}
}

// listBackend answers tools/list with four tools, as JSON, or as SSE when
// the request accepts only text/event-stream. The SSE answer first sends a
// notification and flushes.
type listBackend struct {
	calls    atomic.Int32
	encoding atomic.Value  // the Accept-Encoding it saw
	release  chan struct{} // the SSE answer waits for it after the notification
}

const fourTools = `{"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"read_file"},{"name":"delete_repo"},{"name":"admin_users"},{"name":"echo"}],"nextCursor":"c2"}}`

func (b *listBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	b.calls.Add(1)
	b.encoding.Store(r.Header.Get("Accept-Encoding"))
	if r.Header.Get("Accept") != "text/event-stream" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(fourTools)))
		_, _ = io.WriteString(w, fourTools)
		return nil
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	_, _ = io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n")
	if err := http.NewResponseController(w).Flush(); err != nil {
		return err
	}
	<-b.release
	_, _ = io.WriteString(w, "event: message\ndata: "+fourTools[:50])
	_, _ = io.WriteString(w, fourTools[50:]+"\n\n")
	return nil
}

func TestToolPolicyFiltersLists(t *testing.T) {
	env := policyEnv(t, nil)
	list := `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`
	wantTools := `{"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"read_file"},{"name":"echo"}],"nextCursor":"c2"}}`

	// Over a real server, so that flushing and streaming are real.
	b := &listBackend{release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
		if err := env.h.ServeHTTP(w, r, caddyhttp.HandlerFunc(b.ServeHTTP)); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	defer srv.Close()
	send := func(accept string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(list))
		req.Header.Set("Authorization", "Bearer "+env.validToken("github:1"))
		req.Header.Set("Accept", accept)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := send("application/json")
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != wantTools || resp.ContentLength != int64(len(wantTools)) {
		t.Errorf("JSON list: %s (Content-Length %d)", got, resp.ContentLength)
	}
	if enc := b.encoding.Load(); enc != "" {
		t.Errorf("the backend was asked for encoding %q", enc)
	}

	resp = send("text/event-stream")
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	var events []string
	var ev strings.Builder
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		ev.WriteString(line)
		if line == "\n" {
			events = append(events, ev.String())
			ev.Reset()
			if len(events) == 1 {
				// The notification arrived while the backend still holds
				// the list: the wrappers flush straight through.
				close(b.release)
			}
		}
	}
	if len(events) != 2 || !strings.Contains(events[0], "list_changed") ||
		events[1] != "event: message\ndata: "+wantTools+"\n\n" {
		t.Errorf("SSE events %q", events)
	}
}

func TestToolPolicyAudit(t *testing.T) {
	env := policyEnv(t, nil)
	tok := env.validToken("github:7")
	env.do(postMCP(tok, callBody(1, "read_file")))
	env.do(postMCP(tok, callBody(2, "delete_repo")))
	env.do(postMCP(tok, callBody(3, "write_file")))
	env.do(postMCP(tok, callBody(4, "delete_repo"), "Mcp-Name", "read_file"))

	entries := env.logs.FilterLoggerName("audit").All()
	if len(entries) != 4 {
		t.Fatalf("%d audit entries, want 4", len(entries))
	}
	want := []map[string]any{
		{"user": "github:7", "client_id": "client-1", "method": "tools/call", "tool": "read_file", "decision": "allowed", "status": int64(200)},
		{"user": "github:7", "method": "tools/call", "tool": "delete_repo", "decision": "forbidden", "status": int64(200), "rule": int64(2)},
		{"user": "github:7", "method": "tools/call", "tool": "write_file", "decision": "insufficient_scope", "status": int64(403), "rule": int64(4)},
		{"user": "github:7", "decision": "header_mismatch", "status": int64(400)},
	}
	for i, e := range entries {
		if e.Level.String() != "info" || e.Message != "mcp call" {
			t.Errorf("entry %d: %s %q", i, e.Level, e.Message)
		}
		fields := e.ContextMap()
		if _, ok := fields["duration"]; !ok {
			t.Errorf("entry %d has no duration", i)
		}
		for k, v := range want[i] {
			if fields[k] != v {
				t.Errorf("entry %d: %s = %v (%T), want %v", i, k, fields[k], fields[k], v)
			}
		}
	}
	assertNoArguments(t, env.logs)
	assertNoLeak(t, httptest.NewRecorder(), env.logs, tok)
}

// assertNoArguments fails when a tool's arguments reached any log entry.
func assertNoArguments(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(b)+e.Message, "hunter2") || strings.Contains(string(b), "secret_arg") {
			t.Errorf("arguments logged: %s %s", e.Message, b)
		}
	}
}

// TestNoPolicyNoAudit: without tool_policy nothing is read or audited and
// the placeholders stay unset.
func TestNoPolicyNoAudit(t *testing.T) {
	env := newTestEnv(t, nil)
	repl := caddy.NewReplacer()
	r := postMCP(env.validToken("github:1"), callBody(1, "delete_repo"))
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, repl, w, nil)
	if err := env.h.ServeHTTP(w, r, env.backend); err != nil || w.Code != 200 {
		t.Fatalf("%d %v", w.Code, err)
	}
	if _, ok := repl.Get(placeholderMCPTool); ok {
		t.Error("tool placeholder set without a policy")
	}
	if n := env.logs.FilterLoggerName("audit").Len(); n != 0 {
		t.Errorf("%d audit entries without a policy", n)
	}
}

func TestToolPolicyPlaceholders(t *testing.T) {
	env := policyEnv(t, nil)
	for _, c := range []struct{ body, method, tool string }{
		{callBody(1, "read_file"), "tools/call", "read_file"},
		{callBody(1, "delete_repo"), "tools/call", "delete_repo"},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "tools/list", ""},
		{"[" + callBody(1, "read_file") + "," + callBody(2, "delete_x") + "]", "tools/call", "delete_x"},
	} {
		repl := caddy.NewReplacer()
		r := postMCP(env.validToken("github:1"), c.body)
		w := httptest.NewRecorder()
		r = caddyhttp.PrepareRequest(r, repl, w, nil)
		if err := env.h.ServeHTTP(w, r, env.backend); err != nil {
			t.Fatal(err)
		}
		m, _ := repl.GetString(placeholderMCPMethod)
		tool, ok := repl.GetString(placeholderMCPTool)
		if m != c.method || tool != c.tool || !ok {
			t.Errorf("%s: method %q tool %q (set %v), want %q %q", c.body, m, tool, ok, c.method, c.tool)
		}
	}
}

func TestToolPolicyMetricsBounded(t *testing.T) {
	env := policyEnv(t, nil)
	tok := env.validToken("github:1")
	for i := 0; i < 50; i++ {
		env.do(postMCP(tok, callBody(i, fmt.Sprintf("invented_%d", i))))
		env.do(postMCP(tok, callBody(i, fmt.Sprintf("read_%d", i))))
		env.do(postMCP(tok, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"x/made_up_%d"}`, i)))
	}
	env.do(postMCP(tok, callBody(1, "delete_repo")))
	calls := env.h.metrics.calls
	if n := testutil.CollectAndCount(calls); n != 4 {
		t.Errorf("%d calls_total series, want 4 (other, read_*, the unknown method, delete_*)", n)
	}
	if s := env.h.metrics.callSeries.Load(); s == nil || len(*s) != 4 {
		t.Errorf("the resolved series held are not the 4 series: %v", s)
	}
	for _, c := range []struct {
		method, tool, decision string
		want                   float64
	}{
		{"tools/call", toolpolicy.OtherLabel, "allowed", 50},
		{"tools/call", "read_*", "allowed", 50},
		{toolpolicy.OtherLabel, "", "allowed", 50},
		{"tools/call", "delete_*", "forbidden", 1},
	} {
		if got := testutil.ToFloat64(calls.WithLabelValues(c.method, c.tool, c.decision)); got != c.want {
			t.Errorf("calls_total{%s,%s,%s} = %v, want %v", c.method, c.tool, c.decision, got, c.want)
		}
	}
	if got := testutil.ToFloat64(env.h.metrics.requests.WithLabelValues(outcomeRejected, "tool_forbidden")); got != 1 {
		t.Errorf("requests_total{rejected,tool_forbidden} = %v", got)
	}
}

// TestToolPolicyIdentityCache: a policy with claim matchers reads the
// claims once per verified token.
func TestToolPolicyIdentityCache(t *testing.T) {
	env := policyEnv(t, nil)
	claims := env.claims("github:1")
	claims["groups"] = "admins" // a one-element list sent as a string
	tok := env.token(claims)
	for i := 0; i < 3; i++ {
		if w := env.do(postMCP(tok, callBody(i, "admin_users"))); w.Code != 200 || env.backend.Calls() != i+1 {
			t.Fatalf("call %d: %d %s", i, w.Code, w.Body)
		}
	}
	if n := env.h.identities.Len(); n != 1 {
		t.Errorf("identity cache holds %d entries, want 1", n)
	}
}

func TestToolPolicyConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, input, want string }{
		{"unknown option", "mcp_auth {\n tool_policy {\n frob 1\n }\n}", "unrecognized tool_policy option"},
		{"bad rule", "mcp_auth {\n tool_policy {\n allow tools/call\n }\n}", "missing"},
		{"unknown method", "mcp_auth {\n tool_policy {\n allow tools/run\n }\n}", "tools/run"},
		{"conflict", "mcp_auth {\n tool_policy {\n allow tools/call x\n deny tools/call x\n }\n}", "invalid policy"},
		{"bad default", "mcp_auth {\n tool_policy {\n default maybe\n }\n}", "maybe"},
		{"bad size", "mcp_auth {\n tool_policy {\n max_body_bytes 0\n }\n}", "positive"},
		{"twice", "mcp_auth {\n tool_policy {\n }\n tool_policy {\n }\n}", "already specified"},
		{"argument", "mcp_auth {\n tool_policy deny {\n }\n}", "wrong argument count"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want containing %q", err, c.want)
			}
		})
	}
	// JSON configs are compiled at Provision.
	h := &Handler{Resource: testResource, Issuers: []IssuerConfig{{Issuer: "https://a.example", JWKSURI: "https://a.example/jwks"}},
		ToolPolicy: &toolpolicy.Config{Rules: []toolpolicy.Rule{{Method: "tools/call"}}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	err := h.Provision(ctx)
	defer h.Cleanup()
	if err == nil || !strings.Contains(err.Error(), "tool_policy") {
		t.Errorf("Provision: %v", err)
	}
}

func TestToolPolicyCaddyfile(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(testPolicyCaddyfile)); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(h.ToolPolicy)
	want := `{"rules":[{"method":"tools/call","name":"read_*","effect":"allow","require":{"scopes_any":["github:repo","mcp:admin"]}},` +
		`{"method":"tools/call","name":"delete_*","effect":"deny"},` +
		`{"method":"tools/call","name":"admin_*","effect":"allow","require":{"claims":[{"claim":"groups","contains":"admins"}]}},` +
		`{"method":"tools/call","name":"write_*","effect":"allow","require":{"scopes_all":["mcp:write"]}}],"default":"allow","max_body_bytes":4096}`
	if string(b) != want {
		t.Errorf("tool_policy JSON:\n got %s\nwant %s", b, want)
	}
}

// TestToolPolicyShortBody: a body shorter than its Content-Length is a
// client error, answered 400 without reaching the backend.
func TestToolPolicyShortBody(t *testing.T) {
	env := policyEnv(t, nil)
	r := postMCP(env.validToken("github:1"), callBody(1, "read_file"))
	r.ContentLength += 10
	w := env.do(r)
	if w.Code != http.StatusBadRequest || env.backend.Calls() != 0 || !strings.Contains(w.Body.String(), "-32600") {
		t.Errorf("%d %s, backend calls %d", w.Code, w.Body, env.backend.Calls())
	}
	if got := testutil.ToFloat64(env.h.metrics.requests.WithLabelValues(outcomeRejected, "body_unreadable")); got != 1 {
		t.Errorf("requests_total{rejected,body_unreadable} = %v", got)
	}
}

// TestToolPolicyWriterWrappedOnlyForAudit: the answered status is noted
// (statusRecorder) only for the audit entry, so with the audit logger
// above INFO the backend writes to the client's own ResponseWriter, and the
// calls are still counted in calls_total.
func TestToolPolicyWriterWrappedOnlyForAudit(t *testing.T) {
	for _, tc := range []struct {
		level   zapcore.Level
		wrapped bool
	}{{zapcore.InfoLevel, true}, {zapcore.WarnLevel, false}} {
		env := policyEnv(t, nil)
		env.h.audit = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), tc.level))
		w := httptest.NewRecorder()
		var got http.ResponseWriter
		next := caddyhttp.HandlerFunc(func(bw http.ResponseWriter, _ *http.Request) error {
			got = bw
			bw.WriteHeader(http.StatusAccepted)
			return nil
		})
		if err := env.h.ServeHTTP(w, postMCP(env.validToken("github:1"), callBody(1, "read_file")), next); err != nil {
			t.Fatal(err)
		}
		if got == nil || w.Code != http.StatusAccepted {
			t.Fatalf("audit at %v: not forwarded (code %d)", tc.level, w.Code)
		}
		_, isRecorder := got.(*statusRecorder)
		if isRecorder != tc.wrapped || (!tc.wrapped && got != http.ResponseWriter(w)) {
			t.Errorf("audit at %v: the backend wrote to %T, want wrapped %v", tc.level, got, tc.wrapped)
		}
		if n := testutil.CollectAndCount(env.h.metrics.calls); n != 1 {
			t.Errorf("audit at %v: %d calls_total series, want 1", tc.level, n)
		}
	}
}
