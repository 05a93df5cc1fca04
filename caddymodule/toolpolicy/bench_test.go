package toolpolicy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// policy20 is a policy of 20 rules in the shapes operators write: exact
// names, globs, scope and claim requirements, denies.
func policy20(tb testing.TB) *Policy {
	var rules []Rule
	for i := range 8 {
		rules = append(rules, Rule{Method: "tools/call", Name: fmt.Sprintf("tool_%d", i),
			Require: Requirement{ScopesAll: []string{"mcp:tools"}, ScopesAny: []string{"read", "write"}}})
	}
	for i := range 6 {
		rules = append(rules, Rule{Method: "tools/call", Name: fmt.Sprintf("group%d_*", i),
			Require: Requirement{Claims: []ClaimMatch{{Claim: "groups", Contains: "admins"}}}})
	}
	rules = append(rules,
		Rule{Method: "tools/call", Name: "delete_*", Effect: Deny},
		Rule{Method: "tools/call", Name: "read_*", Require: Requirement{ScopesAll: []string{"read"},
			Claims: []ClaimMatch{{Claim: "email", Suffix: "@example.com"}}}},
		Rule{Method: "prompts/get", Name: "*", Require: Requirement{ScopesAll: []string{"prompts"}}},
		Rule{Method: "resources/read", Name: "file:///private/*", Effect: Deny},
		Rule{Method: "tools/list", Require: Requirement{ScopesAll: []string{"mcp:tools"}}},
		Rule{Method: "tools/call", Name: "*", Require: Requirement{ScopesAny: []string{"mcp:tools"}}},
	)
	return mustCompile(tb, Config{Rules: rules})
}

const benchPayload = `{"iss":"https://idp.example","sub":"u1","aud":"https://mcp.example/mcp","exp":1900000000,
	"scope":"openid mcp:tools read","groups":["dev","admins"],"email":"u1@example.com"}`

// BenchmarkDecide is the per-request cost of the policy once the body is
// inspected and the token's Identity is at hand (cached with the token):
// a tools/call decided by the 16th rule (a glob after 6 others) and by an
// exact rule.
func BenchmarkDecide(b *testing.B) {
	p := policy20(b)
	id := mustIdentity(b, p, benchPayload)
	for _, name := range []string{"read_file", "tool_3"} {
		req := mustInspect(b, toolCall(name))
		if d := p.Decide(id, req); d.Outcome != Allowed {
			b.Fatalf("%s: %s", name, d.Reason)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p.Decide(id, req).Outcome != Allowed {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkInspect is the cost of reading a typical tools/call body with
// matching 2026-07-28 headers.
func BenchmarkInspect(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"list_repositories",` +
		`"arguments":{"owner":"mcpgate","per_page":50,"sort":"updated","filters":{"archived":false,"topics":["go","mcp"]}},` +
		`"_meta":{"progressToken":"p-42"}}}`)
	h := headers("Mcp-Method", "tools/call", "Mcp-Name", "list_repositories")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdentity is the once-per-token cost of reading the claims the
// policy needs from the payload.
func BenchmarkIdentity(b *testing.B) {
	p := policy20(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Identity([]byte(benchPayload)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewrite filters a tools/list result of 50 tools, 10 refused.
func BenchmarkRewrite(b *testing.B) {
	p := policy20(b)
	id := mustIdentity(b, p, `{"scope":"mcp:tools read"}`)
	var buf bytes.Buffer
	buf.WriteString(`{"jsonrpc":"2.0","id":1,"result":{"tools":[`)
	for i := range 50 {
		if i > 0 {
			buf.WriteByte(',')
		}
		name := fmt.Sprintf("tool_%d", i)
		if i%5 == 0 {
			name = fmt.Sprintf("delete_%d", i)
		}
		fmt.Fprintf(&buf, `{"name":%q,"description":"Does thing %d.","inputSchema":{"type":"object","properties":{"x":{"type":"string"}}}}`, name, i)
	}
	buf.WriteString(`],"nextCursor":"abc"}}`)
	body := buf.Bytes()
	req := mustInspect(b, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ResponseFilter(id, req).Rewrite(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestPath is everything the policy adds to a cached request
// in mcp_auth when the token's Identity is cached with the token: read and
// keep the body, inspect it against its headers, decide.
func BenchmarkRequestPath(b *testing.B) {
	p := policy20(b)
	id := mustIdentity(b, p, benchPayload)
	body := []byte(toolCall("read_file"))
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
	r.Header.Set("Mcp-Method", "tools/call")
	r.Header.Set("Mcp-Name", "read_file")
	rd := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
		got, err := ReadRequestBody(r, p.MaxBodyBytes())
		if err != nil {
			b.Fatal(err)
		}
		req, err := Inspect(r.Header, got)
		if err != nil {
			b.Fatal(err)
		}
		if p.Decide(id, req).Outcome != Allowed {
			b.Fatal("refused")
		}
	}
}
