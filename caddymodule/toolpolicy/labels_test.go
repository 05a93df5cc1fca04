package toolpolicy

import "testing"

func TestLabels(t *testing.T) {
	p := mustCompile(t, Config{Rules: []Rule{
		{Method: "tools/call", Name: "echo"},
		{Method: "tools/call", Name: "read_*", Require: Requirement{ScopesAny: []string{"read"}}},
		{Method: "tools/call", Name: "delete_*", Effect: Deny},
		{Method: "resources/read", Name: "file:///public/*"},
		{Method: "tools/list", Require: Requirement{ScopesAll: []string{"list"}}},
	}})
	other := mustCompile(t, Config{Rules: []Rule{{Method: "tools/call", Name: "*", Effect: Deny}}})
	id := mustIdentity(t, p, `{"scope":"read"}`)
	for _, c := range []struct{ method, name, wantMethod, wantName string }{
		{"tools/call", "echo", "tools/call", "echo"},
		{"tools/call", "read_file", "tools/call", "read_*"},
		{"tools/call", "delete_repo", "tools/call", "delete_*"},
		{"tools/call", "made_up_123", "tools/call", OtherLabel},
		{"prompts/get", "anything", "prompts/get", OtherLabel},
		{"resources/read", "file:///public/a", "resources/read", "file:///public/*"},
		{"resources/read", "file:///etc/passwd", "resources/read", OtherLabel},
		{"tools/list", "", "tools/list", ""},
		{"tools/list", "ignored", "tools/list", ""},
		{"x/made_up", "echo", OtherLabel, ""},
	} {
		m, n := p.Labels(c.method, c.name)
		if m != c.wantMethod || n != c.wantName {
			t.Errorf("Labels(%q, %q) = %q, %q; want %q, %q", c.method, c.name, m, n, c.wantMethod, c.wantName)
		}
		// CallLabels takes the rule Decide noted, and must agree; a call
		// another policy decided, or none did, gets Labels' answer too.
		req := &Request{Calls: []Call{{Method: c.method, Name: c.name}}}
		if m, n := p.CallLabels(&req.Calls[0]); m != c.wantMethod || n != c.wantName {
			t.Errorf("CallLabels(%q, %q) undecided = %q, %q", c.method, c.name, m, n)
		}
		other.Decide(id, req)
		if m, n := p.CallLabels(&req.Calls[0]); m != c.wantMethod || n != c.wantName {
			t.Errorf("CallLabels(%q, %q) decided by another policy = %q, %q", c.method, c.name, m, n)
		}
		p.Decide(id, req)
		if m, n := p.CallLabels(&req.Calls[0]); m != c.wantMethod || n != c.wantName {
			t.Errorf("CallLabels(%q, %q) after Decide = %q, %q; want %q, %q", c.method, c.name, m, n, c.wantMethod, c.wantName)
		}
	}
	if n := testing.AllocsPerRun(100, func() { p.Labels("tools/call", "read_file") }); n != 0 {
		t.Errorf("Labels allocates %v times", n)
	}
}
