package toolpolicy

import (
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
	if f := p.ResponseFilter(id, mustInspect(t, `{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`)); f != nil {
		t.Error("a filter for resources/templates/list")
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
