package client

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no URL", Config{}, "no MCP server URL given"},
		{"relative URL", Config{MCPURL: "/mcp"}, "is not an absolute http(s) URL"},
		{"ftp", Config{MCPURL: "ftp://h/mcp"}, "is not an absolute http(s) URL"},
		{"fragment", Config{MCPURL: "https://h/mcp#x"}, "must not carry a fragment"},
		{"secret without id", Config{MCPURL: "https://h/mcp", ClientSecret: "s"}, "needs a client ID"},
		{"bad port", Config{MCPURL: "https://h/mcp", CallbackPort: 70000}, "out of range"},
		{"missing CA file", Config{MCPURL: "https://h/mcp", CACertFile: "/nonexistent/ca.pem"}, "cannot read the CA certificate file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.CacheDir = t.TempDir()
			_, err := New(tt.cfg)
			mustContain(t, err, tt.want)
		})
	}
	c, err := New(Config{MCPURL: "https://h/mcp", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.LoginTimeout != DefaultLoginTimeout || c.cfg.ClientName != "mcpgate-client" {
		t.Errorf("defaults not applied: %+v", c.cfg)
	}
}

func TestCACertFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	_ = os.WriteFile(bad, []byte("not pem"), 0o600)
	_, err := New(Config{MCPURL: "https://h/mcp", CacheDir: dir, CACertFile: bad})
	mustContain(t, err, "holds no PEM certificate")
}
