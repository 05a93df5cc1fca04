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
		{c.store.tokenPath(rec), 0o600},
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
		{Issuer: "https://as", Resource: "https://h.example/mcp", MCPURL: "https://h.example/mcp", AccessToken: "a1", ObtainedAt: now.Add(-time.Hour)},
		{Issuer: "https://as2", Resource: "https://h.example/mcp", MCPURL: "https://h.example/mcp", AccessToken: "a2", ObtainedAt: now},
		{Issuer: "https://as", Resource: "https://other.example/mcp", MCPURL: "https://other.example/mcp", AccessToken: "a3", ObtainedAt: now},
		// A resource naming the whole origin, obtained for one MCP URL of it.
		{Issuer: "https://as", Resource: "https://t.example", MCPURL: "https://t.example/a/mcp", AccessToken: "a4", ObtainedAt: now},
		// The same issuer and resource for another MCP URL: a separate token set.
		{Issuer: "https://as", Resource: "https://t.example", MCPURL: "https://t.example/b/mcp", AccessToken: "a5", ObtainedAt: now.Add(-time.Minute)},
	}
	for _, r := range recs {
		if err := s.saveToken(r); err != nil {
			t.Fatal(err)
		}
	}
	// A damaged file and a file whose name does not match its content are ignored.
	_ = os.WriteFile(filepath.Join(s.dir, "tokens", "junk.json"), []byte("{not json"), 0o600)
	moved, _ := os.ReadFile(s.tokenPath(recs[2]))
	_ = os.WriteFile(filepath.Join(s.dir, "tokens", "moved.json"), moved, 0o600)

	tests := []struct{ mcp, want string }{
		{"https://h.example/mcp", "a2"},
		{"https://H.example/mcp/", "a2"},
		{"HTTPS://h.example:443/mcp", "a2"},
		{"https://h.example/mcp/x", ""},
		{"https://h.example", ""},
		{"https://other.example/mcp", "a3"},
		{"https://none.example/mcp", ""},
		{"https://t.example/a/mcp", "a4"},
		{"https://t.example/b/mcp", "a5"},
		{"https://t.example/other-tenant/mcp", ""},
		{"https://t.example", ""},
		{"https://t.example/a/mcp?x=1", ""},
	}
	for _, tt := range tests {
		got, err := s.findToken(tt.mcp)
		if err != nil {
			t.Fatal(err)
		}
		if (got == nil && tt.want != "") || (got != nil && got.AccessToken != tt.want) {
			t.Errorf("findToken(%s) = %+v, want %q", tt.mcp, got, tt.want)
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

// TestStoreLegacyTokenFile: a file of the earlier layout (named by issuer and resource only)
// is reused for the MCP URL recorded in it and for no other, and goes away when that token
// set is saved anew or deleted.
func TestStoreLegacyTokenFile(t *testing.T) {
	s := &store{dir: t.TempDir()}
	legacy := &tokenRecord{Issuer: "https://as", Resource: "https://t.example", MCPURL: "https://t.example/a/mcp", AccessToken: "old", ObtainedAt: time.Now().Add(-time.Hour)}
	write := func() {
		t.Helper()
		if err := writeJSONFile(s.legacyTokenPath(legacy), legacy); err != nil {
			t.Fatal(err)
		}
	}
	write()
	if got, _ := s.findToken("https://t.example/a/mcp"); got == nil || got.AccessToken != "old" {
		t.Fatalf("legacy file not read: %+v", got)
	}
	if got, _ := s.findToken("https://t.example/b/mcp"); got != nil {
		t.Fatalf("legacy file reused for another MCP URL: %+v", got)
	}
	// Another URL's token set with the same issuer and resource leaves it alone.
	other := *legacy
	other.MCPURL, other.AccessToken = "https://t.example/b/mcp", "b"
	if err := s.saveToken(&other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.legacyTokenPath(legacy)); err != nil {
		t.Fatalf("another URL's save removed the legacy file: %v", err)
	}
	fresh := *legacy
	fresh.AccessToken, fresh.ObtainedAt = "new", time.Now()
	if err := s.saveToken(&fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.legacyTokenPath(legacy)); !os.IsNotExist(err) {
		t.Fatalf("legacy file still there after a save: %v", err)
	}
	write()
	if err := s.deleteToken(&fresh); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.findToken("https://t.example/a/mcp"); got != nil {
		t.Fatalf("still found after delete: %+v", got)
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

// TestCachedTokenNotSharedAcrossMCPURLs: a token obtained for a resource that names the
// origin (a PRM at the root, resource https://host) belongs to the MCP URL whose discovery
// produced it. Another MCP URL on the same origin (another tenant, perhaps another
// authorization server) must not reuse it; the same URL spelled differently (case of
// scheme/host, default port, trailing slash) must.
func TestCachedTokenNotSharedAcrossMCPURLs(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{PRMResourceOrigin: true})
	origin := strings.TrimSuffix(e.res.URL, "/mcp")
	c, _ := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Status(); !st.LoggedIn || st.Resource != origin {
		t.Fatalf("first login: %+v", st)
	}
	tests := []struct {
		mcpURL string
		reuse  bool
	}{
		{e.res.URL, true},
		{e.res.URL + "/", true},
		{strings.Replace(e.res.URL, "http://", "HTTP://", 1), true},
		{origin + "/other-tenant/mcp", false},
		{e.res.URL + "/sub", false},
		{origin, false},
		{origin + "/", false},
		{e.res.URL + "?tenant=2", false},
	}
	for _, tt := range tests {
		t.Run(tt.mcpURL, func(t *testing.T) {
			c2, _ := e.client(t, func(cfg *Config) { cfg.MCPURL = tt.mcpURL })
			st, err := c2.Status()
			if err != nil {
				t.Fatal(err)
			}
			if st.LoggedIn != tt.reuse {
				t.Errorf("Status().LoggedIn = %v, want %v (%+v)", st.LoggedIn, tt.reuse, st)
			}
			tok, err := c2.accessToken(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if (tok != "") != tt.reuse {
				t.Errorf("accessToken reuse = %v, want %v", tok != "", tt.reuse)
			}
		})
	}
}
