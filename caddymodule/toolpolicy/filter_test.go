package toolpolicy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// listPolicy denies rm_* tools, lets only admins see "admin", and hides a
// prompt and the private resources.
func listPolicy(t testing.TB) *Policy {
	return mustCompile(t, Config{Rules: []Rule{
		{Method: "tools/call", Name: "rm_*", Effect: Deny},
		{Method: "tools/call", Name: "admin", Require: Requirement{Claims: []ClaimMatch{{Claim: "groups", Contains: "admins"}}}},
		{Method: "tools/call", Name: "write", Require: Requirement{ScopesAll: []string{"write"}}},
		{Method: "prompts/get", Name: "secret", Effect: Deny},
		{Method: "resources/read", Name: "file:///private/*", Effect: Deny},
	}})
}

func TestResponseFilterWhenNeeded(t *testing.T) {
	p := listPolicy(t)
	id := mustIdentity(t, p, `{}`)
	if f := p.ResponseFilter(id, mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`)); f != nil {
		t.Error("a filter for a tools/call")
	}
	if f := p.ResponseFilter(id, mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`)); f == nil || f.pending != 1 {
		t.Errorf("filter %+v for resources/templates/list under a resources/read rule", f)
	}
	toolsOnly := mustCompile(t, Config{Rules: []Rule{{Method: "tools/call", Name: "x", Effect: Deny}}})
	if f := toolsOnly.ResponseFilter(id, mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`)); f != nil {
		t.Error("a filter for resources/templates/list without resource rules")
	}
	if f := p.ResponseFilter(id, mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)); f == nil || f.pending != 1 {
		t.Errorf("filter %+v for tools/list", f)
	}
	// No rule names tools: nothing to hide, nothing to parse.
	none := mustCompile(t, Config{Rules: []Rule{{Method: "prompts/get", Name: "x", Effect: Deny}}})
	if f := none.ResponseFilter(id, mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)); f != nil {
		t.Error("a filter for tools/list without tool rules")
	}
	// A deny default hides every unnamed tool.
	deny := mustCompile(t, Config{Default: Deny, Rules: []Rule{{Method: "tools/call", Name: "echo"}}})
	f := deny.ResponseFilter(id, mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	out, err := f.Rewrite([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"other"}]}}`))
	if err != nil || string(out) != `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}` {
		t.Errorf("Rewrite = %s, %v", out, err)
	}
}

func TestRewrite(t *testing.T) {
	p := listPolicy(t)
	admin := mustIdentity(t, p, `{"scope":"write","groups":["admins"]}`)
	user := mustIdentity(t, p, `{"scope":"read"}`)
	tests := []struct {
		name    string
		id      *Identity
		request string
		body    string
		want    string // "" → the body unchanged
		err     error
	}{
		{"tools with cursor and meta kept byte for byte", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0", "id":1, "result":{"_meta":{"k":[1]}, "tools":[ {"name":"echo","inputSchema":{"type":"object"}}, {"name":"rm_rf"},` +
				` {"description":"x","name":"admin"}, {"name":"write"}, {"name":"read","annotations":{"name":"decoy"}} ], "nextCursor":"c2"}}`,
			`{"jsonrpc":"2.0", "id":1, "result":{"_meta":{"k":[1]}, "tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"read","annotations":{"name":"decoy"}}], "nextCursor":"c2"}}`, nil},
		{"admin sees more, but never rm_*", admin, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"rm_rf"},{"name":"admin"},{"name":"write"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"admin"},{"name":"write"}]}}`, nil},
		{"nothing hidden: the same bytes", admin, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}],"nextCursor":"x"}}`, "", nil},
		{"everything hidden", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"rm_a"},{"name":"rm_b"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`, nil},
		{"escaped names are decoded", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"r\u006d_x"},{"name":"ok"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok"}]}}`, nil},
		{"error response untouched", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"boom"}}`, "", nil},
		{"prompts", user, `{"jsonrpc":"2.0","id":1,"method":"prompts/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"secret"},{"name":"hello"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"hello"}]}}`, nil},
		{"resources by uri", user, `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///private/k","name":"public"},{"uri":"file:///pub/a","name":"file:///private/x"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///pub/a","name":"file:///private/x"}]}}`, nil},
		{"batch: only the list result changes", user,
			`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`,
			`[{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"rm_rf"}]}}, {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"rm_rf"},{"name":"echo"}]}}]`,
			`[{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"rm_rf"}]}}, {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo"}]}}]`, nil},
		{"server/discover lists tools and prompts", user, `{"jsonrpc":"2.0","id":1,"method":"server/discover"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2026-07-28","capabilities":{"tools":{}},"tools":[{"name":"rm_rf"},{"name":"echo"}],` +
				`"prompts":[{"name":"hello"},{"name":"secret"}],"serverInfo":{"name":"s"}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2026-07-28","capabilities":{"tools":{}},"tools":[{"name":"echo"}],` +
				`"prompts":[{"name":"hello"}],"serverInfo":{"name":"s"}}}`, nil},
		{"server/discover without lists", user, `{"jsonrpc":"2.0","id":1,"method":"server/discover"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2026-07-28","capabilities":{}}}`, "", nil},
		{"two tools lists in one result", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[],"Tools":[{"name":"rm_rf"}]}}`, "", ErrBadResponse},
		{"a tool named twice", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","name":"rm_rf"}]}}`, "", ErrBadResponse},
		{"result twice", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			`{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{"tools":[{"name":"rm_rf"}]}}`, "", ErrBadResponse},
		{"not JSON", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `<html>`, "", ErrBadResponse},
		{"truncated", user, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}`, "", ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := p.ResponseFilter(tt.id, mustInspect(t, tt.request))
			if f == nil {
				t.Fatal("no filter")
			}
			out, err := f.Rewrite([]byte(tt.body))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.body
			}
			if string(out) != want {
				t.Errorf("got\n%s\nwant\n%s", out, want)
			}
		})
	}
}

func TestRewriteTooLarge(t *testing.T) {
	p := mustCompile(t, Config{MaxResponseBytes: 100, Rules: []Rule{{Method: "tools/call", Name: "x", Effect: Deny}}})
	f := p.ResponseFilter(p.IdentityFromScopes(nil), mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	body := `{"jsonrpc":"2.0","id":1,"result":{"tools":[` + strings.Repeat(`{"name":"y"},`, 20) + `{"name":"x"}]}}`
	if _, err := f.Rewrite([]byte(body)); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("err = %v", err)
	}
}

// TestTemplateVisible: a URI template is hidden only when the policy
// refuses every URI it can expand to, as its literal prefix tells.
func TestTemplateVisible(t *testing.T) {
	// Allow by default; the private tree is denied, one file in it is not,
	// and the admin tree needs a scope.
	allow := mustCompile(t, Config{Rules: []Rule{
		{Method: "resources/read", Name: "file:///private/readme", Require: Requirement{ScopesAll: []string{"read"}}},
		{Method: "resources/read", Name: "file:///private/*", Effect: Deny},
		{Method: "resources/read", Name: "file:///admin/*", Require: Requirement{ScopesAll: []string{"admin"}}},
		{Method: "resources/read", Name: "db://*/secret", Effect: Deny},
	}})
	// Deny by default: only the public tree, and one odd glob.
	deny := mustCompile(t, Config{Default: Deny, Rules: []Rule{
		{Method: "resources/read", Name: "file:///public/*"},
		{Method: "resources/read", Name: "mem://*/open"},
	}})
	// Deny by default, with a glob for every URI that needs a scope.
	all := mustCompile(t, Config{Default: Deny, Rules: []Rule{
		{Method: "resources/read", Name: "*", Require: Requirement{ScopesAll: []string{"read"}}},
	}})
	tests := []struct {
		name   string
		p      *Policy
		scopes string
		tmpl   string
		want   bool
	}{
		{"outside every rule, default allow", allow, `{}`, "file:///srv/{path}", true},
		{"inside a denied tree", allow, `{}`, "file:///private/{name}.txt", false},
		{"denied tree, exact allow inside it, token has its scope", allow, `{"scope":"read"}`, "file:///private/{name}", true},
		{"denied tree, exact allow inside it, token lacks its scope", allow, `{}`, "file:///private/{name}", false},
		{"prefix shorter than the deny: some URIs escape it", allow, `{}`, "file:///{path}", true},
		{"scoped tree without the scope", allow, `{}`, "file:///admin/{x}", false},
		{"scoped tree with the scope", allow, `{"scope":"admin"}`, "file:///admin/{x}", true},
		{"a glob that is not a prefix refuses only some", allow, `{}`, "db://{host}/secret", true},
		{"no expression: one URI, denied", allow, `{}`, "file:///private/a", false},
		{"no expression: one URI, allowed", allow, `{}`, "file:///public/a", true},
		{"default deny, allowed tree", deny, `{}`, "file:///public/{+path}", true},
		{"default deny, prefix reaching the allowed tree", deny, `{}`, "file:///{dir}/x", true},
		{"default deny, other tree", deny, `{}`, "file:///srv/{path}", false},
		{"default deny, a non-prefix glob may match", deny, `{}`, "mem://{id}/open", true},
		{"an encoded literal cuts the prefix", deny, `{}`, "file:///public dir/{x}", true},
		{"default deny, encoded literal before another tree", deny, `{}`, "git://a b/{x}", false},
		{"a glob for every URI, scope held", all, `{"scope":"read"}`, "x://{y}", true},
		{"a glob for every URI, scope missing", all, `{}`, "x://{y}", false},
	}
	for _, tt := range tests {
		id := mustIdentity(t, tt.p, tt.scopes)
		if got := tt.p.templateVisible(id, tt.tmpl); got != tt.want {
			t.Errorf("%s: templateVisible(%q) = %v, want %v", tt.name, tt.tmpl, got, tt.want)
		}
	}
}

// TestRewriteTemplates: resources/templates/list loses the templates the
// token can read nothing through; nextCursor, _meta and the rest stay, in
// JSON and over SSE.
func TestRewriteTemplates(t *testing.T) {
	p := listPolicy(t) // file:///private/* denied
	id := mustIdentity(t, p, `{}`)
	req := `{"jsonrpc":"2.0","id":7,"method":"resources/templates/list","params":{"cursor":"c1"}}`
	body := `{"jsonrpc":"2.0","id":7,"result":{"resourceTemplates":[` +
		`{"uriTemplate":"file:///private/{name}","name":"private"},` +
		`{"uriTemplate":"file:///srv/{+path}","name":"srv","mimeType":"text/plain"},` +
		`{"uriTemplate":"file:///private/notes/{day}.md","name":"notes"}` +
		`],"nextCursor":"c2","_meta":{"k":1}}}`
	want := `{"jsonrpc":"2.0","id":7,"result":{"resourceTemplates":[` +
		`{"uriTemplate":"file:///srv/{+path}","name":"srv","mimeType":"text/plain"}` +
		`],"nextCursor":"c2","_meta":{"k":1}}}`
	f := p.ResponseFilter(id, mustInspect(t, req))
	out, err := f.Rewrite([]byte(body))
	if err != nil || string(out) != want {
		t.Errorf("JSON: Rewrite = %s, %v\nwant %s", out, err, want)
	}

	var sse bytes.Buffer
	w := p.ResponseFilter(id, mustInspect(t, req)).SSE(&sse, nil)
	in := "id: e1\nevent: message\ndata: " + body + "\n\n"
	for i := 0; i < len(in); i += 7 {
		if _, err := w.Write([]byte(in[i:min(i+7, len(in))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, wantSSE := sse.String(), "id: e1\nevent: message\ndata: "+want+"\n\n"; got != wantSSE {
		t.Errorf("SSE: got\n%q\nwant\n%q", got, wantSSE)
	}

	// resources/list in the same policy still filters by URI, and a
	// template list with nothing to hide comes back as it was.
	keep := `{"jsonrpc":"2.0","id":7,"result":{"resourceTemplates":[{"uriTemplate":"file:///srv/{p}"}],"nextCursor":"c3"}}`
	if out, err := p.ResponseFilter(id, mustInspect(t, req)).Rewrite([]byte(keep)); err != nil || string(out) != keep {
		t.Errorf("nothing to hide: Rewrite = %s, %v", out, err)
	}
}
