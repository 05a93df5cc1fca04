package toolpolicy

import "testing"

func TestLabels(t *testing.T) {
	p := mustCompile(t, Config{Rules: []Rule{
		{Method: "tools/call", Name: "echo"},
		{Method: "tools/call", Name: "read_*", Require: Requirement{ScopesAny: []string{"read"}}},
		{Method: "tools/call", Name: "delete_*", Effect: Deny},
		{Method: "resources/read", Name: "file:///public/*"},
	}})
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
	}
	if n := testing.AllocsPerRun(100, func() { p.Labels("tools/call", "read_file") }); n != 0 {
		t.Errorf("Labels allocates %v times", n)
	}
}
