package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

func TestCacheFilePermissions(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	e.cacheDir = filepath.Join(t.TempDir(), "new", "mcpgate")
	c, _ := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rec, _ := c.cachedToken()
	checks := []struct {
		path string
		mode os.FileMode
	}{
		{e.cacheDir, 0o700 | os.ModeDir},
		{filepath.Join(e.cacheDir, "tokens"), 0o700 | os.ModeDir},
		{filepath.Join(e.cacheDir, "clients"), 0o700 | os.ModeDir},
		{c.store.tokenPath(rec.Issuer, rec.Resource), 0o600},
		{c.store.registrationPath(rec.Issuer), 0o600},
	}
	for _, ck := range checks {
		fi, err := os.Stat(ck.path)
		if err != nil {
			t.Fatalf("stat %s: %v", ck.path, err)
		}
		if fi.Mode() != ck.mode {
			t.Errorf("%s has mode %v, want %v", ck.path, fi.Mode(), ck.mode)
		}
	}
	for _, d := range []string{"tokens", "clients"} {
		entries, _ := os.ReadDir(filepath.Join(e.cacheDir, d))
		for _, en := range entries {
			if strings.HasPrefix(en.Name(), ".tmp-") {
				t.Errorf("temporary file left: %s", en.Name())
			}
		}
	}
}

func TestStoreFindToken(t *testing.T) {
	s := &store{dir: t.TempDir()}
	now := time.Now()
	recs := []*tokenRecord{
		{Issuer: "https://as", Resource: "https://h.example/mcp", AccessToken: "a1", ObtainedAt: now.Add(-time.Hour)},
		{Issuer: "https://as2", Resource: "https://h.example/mcp", AccessToken: "a2", ObtainedAt: now},
		{Issuer: "https://as", Resource: "https://other.example/mcp", AccessToken: "a3", ObtainedAt: now},
	}
	for _, r := range recs {
		if err := s.saveToken(r); err != nil {
			t.Fatal(err)
		}
	}
	// A damaged file and a file whose name does not match its content are ignored.
	_ = os.WriteFile(filepath.Join(s.dir, "tokens", "junk.json"), []byte("{not json"), 0o600)
	moved, _ := os.ReadFile(s.tokenPath("https://as", "https://other.example/mcp"))
	_ = os.WriteFile(filepath.Join(s.dir, "tokens", "moved.json"), moved, 0o600)

	tests := []struct{ mcp, want string }{
		{"https://h.example/mcp", "a2"},
		{"https://H.example/mcp/", "a2"},
		{"https://other.example/mcp", "a3"},
		{"https://none.example/mcp", ""},
	}
	for _, tt := range tests {
		got, err := s.findToken(tt.mcp)
		if err != nil {
			t.Fatal(err)
		}
		if (got == nil && tt.want != "") || (got != nil && got.AccessToken != tt.want) {
			t.Errorf("findToken(%s) = %+v, want %s", tt.mcp, got, tt.want)
		}
	}
	if err := s.deleteToken(recs[1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.findToken("https://h.example/mcp"); got == nil || got.AccessToken != "a1" {
		t.Errorf("after delete: %+v", got)
	}
	if err := s.deleteToken(recs[1]); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestWriteJSONFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x", "f.json")
	for i := range 3 {
		if err := writeJSONFile(p, map[string]int{"v": i}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `"v": 2`) {
		t.Errorf("content %s", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("entries %v", entries)
	}
}
