package jwtverify

import "testing"

func TestCanonicalResource(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com/mcp/", "https://mcp.example.com/mcp", true},
		{"HTTPS://MCP.Example.com/mcp", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com/MCP", "https://mcp.example.com/MCP", true},
		{"https://mcp.example.com", "https://mcp.example.com", true},
		{"https://mcp.example.com/", "https://mcp.example.com", true},
		{"https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp", true},
		{"http://localhost:80/mcp", "http://localhost/mcp", true},
		{"http://localhost:8080/mcp", "http://localhost:8080/mcp", true},
		{"https://[::1]:443/mcp", "https://[::1]/mcp", true},
		{"https://mcp.example.com/mcp?x=1", "https://mcp.example.com/mcp?x=1", true},
		{"https://mcp.example.com/mcp//", "https://mcp.example.com/mcp/", true},
		{"https://mcp.example.com/mcp#frag", "", false},
		{"https://mcp.example.com/mcp#", "", false},
		{"/mcp", "", false},
		{"mcp.example.com/mcp", "", false},
		{"", "", false},
		{"ftp://mcp.example.com/mcp", "", false},
		{"https://user@mcp.example.com/mcp", "", false},
		{"https:opaque", "", false},
		{"client-1", "", false},
	}
	for _, tc := range tests {
		got, err := CanonicalResource(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CanonicalResource(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSameResource(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp/", true},
		{"https://mcp.example.com/mcp", "HTTPS://MCP.EXAMPLE.COM/mcp", true},
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp2", false},
		{"https://mcp.example.com/mcp", "https://mcp.example.com/Mcp", false},
		{"https://mcp.example.com/mcp", "http://mcp.example.com/mcp", false},
		{"https://mcp.example.com/mcp", "https://mcp.example.com:8443/mcp", false},
		{"bad", "bad", false},
		{"", "", false},
	}
	for _, tc := range tests {
		if got := SameResource(tc.a, tc.b); got != tc.want {
			t.Errorf("SameResource(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
