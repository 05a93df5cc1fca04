package toolpolicy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestDecideRuleForms(t *testing.T) {
	claim := func(m ClaimMatch) Requirement { return Requirement{Claims: []ClaimMatch{m}} }
	p := mustCompile(t, Config{Rules: []Rule{
		{Method: "tools/call", Name: "rm_*", Effect: Deny},
		{Method: "tools/call", Name: "rm_draft", Require: Requirement{ScopesAll: []string{"drafts"}}},
		{Method: "tools/call", Name: "both", Require: Requirement{ScopesAll: []string{"a", "b"}}},
		{Method: "tools/call", Name: "either", Require: Requirement{ScopesAny: []string{"x", "y"}}},
		{Method: "tools/call", Name: "admin", Require: claim(ClaimMatch{Claim: "groups", Contains: "admins"})},
		{Method: "tools/call", Name: "staff", Require: claim(ClaimMatch{Claim: "email", Suffix: "@example.com"})},
		{Method: "tools/call", Name: "dev", Require: claim(ClaimMatch{Claim: "email", Prefix: "dev."})},
		{Method: "tools/call", Name: "alice", Require: claim(ClaimMatch{Claim: "sub", In: []string{"alice", "carol"}})},
		{Method: "tools/call", Name: "tenant", Require: claim(ClaimMatch{Claim: "org.id", Equals: "42"})},
		{Method: "tools/call", Name: "verified", Require: claim(ClaimMatch{Claim: "email_verified", Equals: "true"})},
		{Method: "tools/call", Name: "mixed", Require: Requirement{ScopesAll: []string{"s"}, Claims: []ClaimMatch{{Claim: "groups", Contains: "ops"}}}},
		{Method: "tools/call", Name: "read_*", Require: Requirement{ScopesAll: []string{"read"}}},
		{Method: "prompts/get", Name: "secret", Effect: Deny},
		{Method: "resources/read", Name: "file:///private/*", Require: Requirement{ScopesAll: []string{"private"}}},
		{Method: "tools/list", Require: Requirement{ScopesAll: []string{"mcp:tools"}}},
	}})
	alice := mustIdentity(t, p, `{"sub":"alice","scope":"a drafts mcp:tools","groups":["admins","ops"],
		"email":"dev.alice@example.com","org":{"id":42},"email_verified":true}`)
	bob := mustIdentity(t, p, `{"sub":"bob","scope":"b y","groups":"ops","email":"bob@evil-example.com","org":{"id":"43"},"email_verified":"false"}`)
	tests := []struct {
		name   string
		id     *Identity
		method string
		tool   string
		want   Outcome
		rule   int
		scope  string // challenge for StepUp
	}{
		{"unlisted allowed by default", bob, "tools/call", "echo", Allowed, 0, ""},
		{"deny glob", alice, "tools/call", "rm_rf", Forbidden, 1, ""},
		{"exact beats deny glob", alice, "tools/call", "rm_draft", Allowed, 2, ""},
		{"exact beats deny glob, scope missing", bob, "tools/call", "rm_draft", StepUp, 2, "b drafts y"},
		{"scopes_all partial", alice, "tools/call", "both", StepUp, 3, "a b drafts mcp:tools"},
		{"scopes_any one held", bob, "tools/call", "either", Allowed, 4, ""},
		{"scopes_any none held asks for the first", alice, "tools/call", "either", StepUp, 4, "a drafts mcp:tools x"},
		{"contains in array", alice, "tools/call", "admin", Allowed, 5, ""},
		{"contains misses", bob, "tools/call", "admin", Forbidden, 5, ""},
		{"suffix", alice, "tools/call", "staff", Allowed, 6, ""},
		{"suffix of a look-alike domain", bob, "tools/call", "staff", Forbidden, 6, ""},
		{"prefix", alice, "tools/call", "dev", Allowed, 7, ""},
		{"prefix misses", bob, "tools/call", "dev", Forbidden, 7, ""},
		{"in list", alice, "tools/call", "alice", Allowed, 8, ""},
		{"not in list", bob, "tools/call", "alice", Forbidden, 8, ""},
		{"nested equals number", alice, "tools/call", "tenant", Allowed, 9, ""},
		{"nested equals other", bob, "tools/call", "tenant", Forbidden, 9, ""},
		{"equals boolean", alice, "tools/call", "verified", Allowed, 10, ""},
		{"equals string false", bob, "tools/call", "verified", Forbidden, 10, ""},
		{"contains accepts a single string", bob, "tools/call", "mixed", StepUp, 11, "b s y"}, // groups "ops" as a single string counts for contains
		{"claim and scope", alice, "tools/call", "mixed", StepUp, 11, "a drafts mcp:tools s"},
		{"glob requirement", alice, "tools/call", "read_file", StepUp, 12, "a drafts mcp:tools read"},
		{"deny prompt", alice, "prompts/get", "secret", Forbidden, 13, ""},
		{"other prompt", alice, "prompts/get", "public", Allowed, 0, ""},
		{"resource glob", bob, "resources/read", "file:///private/a/b", StepUp, 14, "b private y"},
		{"resource outside glob", bob, "resources/read", "file:///public/a", Allowed, 0, ""},
		{"unnamed method rule", bob, "tools/list", "", StepUp, 15, "b mcp:tools y"},
		{"unnamed method rule passes", alice, "tools/list", "", Allowed, 15, ""},
		{"unknown method allowed by default", bob, "vendor/x", "", Allowed, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Calls: []Call{{Method: tt.method, Name: tt.tool, ID: json.RawMessage("7")}}}
			d := p.Decide(tt.id, req)
			if d.Outcome != tt.want {
				t.Fatalf("outcome %v (%s), want %v", d.Outcome, d.Reason, tt.want)
			}
			if want := map[Outcome]string{Allowed: "allowed", StepUp: "insufficient_scope", Forbidden: "forbidden"}[tt.want]; d.Outcome.String() != want {
				t.Errorf("String() = %q, want %q", d.Outcome.String(), want)
			}
			if d.Outcome == Allowed {
				if d.ErrorBody() != nil || d.HTTPStatus() != 0 {
					t.Error("an allowed decision has an error body or status")
				}
				return
			}
			if d.Rule != tt.rule || d.Method != tt.method || d.Name != tt.tool {
				t.Errorf("rule %d method %q name %q, want %d %q %q", d.Rule, d.Method, d.Name, tt.rule, tt.method, tt.tool)
			}
			if d.Scope != tt.scope {
				t.Errorf("scope %q, want %q", d.Scope, tt.scope)
			}
			if !strings.HasPrefix(d.Reason, tt.method) {
				t.Errorf("reason %q does not start with the method", d.Reason)
			}
			for _, secret := range []string{"alice@", "bob@", "42", "admins"} {
				if tt.tool != "alice" && strings.Contains(d.Reason, secret) {
					t.Errorf("reason %q quotes a claim value %q", d.Reason, secret)
				}
			}
			wantStatus := http.StatusForbidden
			if d.Outcome == Forbidden {
				wantStatus = http.StatusOK
			}
			if d.HTTPStatus() != wantStatus {
				t.Errorf("status %d, want %d", d.HTTPStatus(), wantStatus)
			}
			var body struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Error   struct {
					Code int `json:"code"`
					Data struct{ Method, Name string }
				} `json:"error"`
			}
			if err := json.Unmarshal(d.ErrorBody(), &body); err != nil {
				t.Fatalf("error body %s: %v", d.ErrorBody(), err)
			}
			if body.JSONRPC != "2.0" || string(body.ID) != "7" || body.Error.Code != CodeForbidden ||
				body.Error.Data.Method != tt.method || body.Error.Data.Name != tt.tool {
				t.Errorf("error body %s", d.ErrorBody())
			}
		})
	}
}

func TestDecideDefaultDeny(t *testing.T) {
	p := mustCompile(t, Config{Default: Deny, Rules: []Rule{
		{Method: "tools/call", Name: "echo"},
		{Method: "tools/list", Effect: Deny},
	}})
	id := mustIdentity(t, p, `{"scope":"a"}`)
	tests := []struct {
		method, name string
		want         Outcome
	}{
		{"tools/call", "echo", Allowed},
		{"tools/call", "other", Forbidden},
		{"prompts/get", "p", Forbidden},
		{"resources/read", "file:///x", Forbidden},
		{"resources/subscribe", "file:///x", Forbidden},
		{"initialize", "", Allowed},
		{"ping", "", Allowed},
		{"notifications/initialized", "", Allowed},
		{"prompts/list", "", Allowed},
		{"tools/list", "", Forbidden}, // a rule names it
		{"vendor/exec", "", Forbidden},
	}
	for _, tt := range tests {
		d := p.Decide(id, &Request{Calls: []Call{{Method: tt.method, Name: tt.name}}})
		if d.Outcome != tt.want {
			t.Errorf("%s %q: %v (%s), want %v", tt.method, tt.name, d.Outcome, d.Reason, tt.want)
		}
		if tt.want == Forbidden {
			// A notification has no id: nothing to answer in JSON-RPC.
			if d.ErrorBody() != nil || d.HTTPStatus() != http.StatusForbidden {
				t.Errorf("%s: body %s status %d for a call without id", tt.method, d.ErrorBody(), d.HTTPStatus())
			}
		}
	}
	d := p.Decide(id, &Request{Calls: []Call{{Method: "vendor/exec", ID: json.RawMessage(`"x"`)}}})
	if !strings.Contains(d.Reason, "not an MCP method") {
		t.Errorf("reason %q", d.Reason)
	}
}

func TestDecideBatch(t *testing.T) {
	p := mustCompile(t, Config{Rules: []Rule{
		{Method: "tools/call", Name: "rm", Effect: Deny},
		{Method: "tools/call", Name: "write", Require: Requirement{ScopesAll: []string{"write"}}},
		{Method: "tools/call", Name: "admin", Require: Requirement{ScopesAll: []string{"admin"}}},
	}})
	id := mustIdentity(t, p, `{"scope":"read"}`)

	// Allowed and denied mixed: the whole batch is refused, every id
	// answered, the allowed call told why.
	req := mustInspect(t, `[
		{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},
		{"jsonrpc":"2.0","method":"notifications/progress","params":{}},
		{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"rm"}},
		{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"write"}}
	]`)
	d := p.Decide(id, req)
	if d.Outcome != Forbidden || d.Name != "rm" || d.Rule != 1 {
		t.Fatalf("decision %+v", d)
	}
	if !strings.Contains(d.Reason, "batch of 4 calls is refused whole") {
		t.Errorf("reason %q", d.Reason)
	}
	var answers []struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(d.ErrorBody(), &answers); err != nil {
		t.Fatalf("%s: %v", d.ErrorBody(), err)
	}
	if len(answers) != 3 || string(answers[0].ID) != "1" || string(answers[1].ID) != `"b"` || string(answers[2].ID) != "3" {
		t.Fatalf("answers %s", d.ErrorBody())
	}
	if !strings.Contains(answers[0].Error.Message, "other calls of its batch") ||
		!strings.Contains(answers[1].Error.Message, "does not allow") ||
		!strings.Contains(answers[2].Error.Message, "more scopes") {
		t.Errorf("messages %s", d.ErrorBody())
	}

	// Only scope failures: step-up with the union of every call's needs.
	req = mustInspect(t, `[
		{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"}},
		{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write"}}
	]`)
	d = p.Decide(id, req)
	if d.Outcome != StepUp || d.Scope != "admin read write" || d.HTTPStatus() != http.StatusForbidden {
		t.Errorf("decision %v scope %q status %d", d.Outcome, d.Scope, d.HTTPStatus())
	}

	// All allowed, and a response to a server request (not a call).
	req = mustInspect(t, `[
		{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},
		{"jsonrpc":"2.0","id":9,"result":{}}
	]`)
	if len(req.Calls) != 1 {
		t.Fatalf("calls %+v", req.Calls)
	}
	if d := p.Decide(id, req); d.Outcome != Allowed {
		t.Errorf("decision %+v", d)
	}
}

func TestChallengeScopeDropsUnquotableScopes(t *testing.T) {
	got := challengeScope([]string{"b", "a"}, []string{"a", `x"y`, "c", "c"})
	if got != "a b c" {
		t.Errorf("challengeScope = %q", got)
	}
}

func TestReasonShortensLongNames(t *testing.T) {
	p := mustCompile(t, Config{Default: Deny})
	long := strings.Repeat("n", 10000) + "\n"
	d := p.Decide(p.IdentityFromScopes(nil), &Request{Calls: []Call{{Method: "tools/call", Name: long, ID: json.RawMessage("1")}}})
	if len(d.Reason) > 200 || strings.Contains(d.Reason, "\n") {
		t.Errorf("reason of %d bytes: %q", len(d.Reason), d.Reason)
	}
}
