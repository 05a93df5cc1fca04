package pyenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPinnedVersion(t *testing.T) {
	req := filepath.Join(t.TempDir(), "requirements.txt")
	if err := os.WriteFile(req, []byte("anyio==4.9.0\nfastmcp==4.1.6\nfastmcp-extra==1.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for pkg, want := range map[string]string{"fastmcp": "4.1.6", "anyio": "4.9.0", "fastmcp-extra": "1.0", "mcp": ""} {
		got, err := PinnedVersion(req, pkg)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("PinnedVersion(%q) = %q, %v; want %q", pkg, got, err, want)
		}
	}
}
