package client

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
	"github.com/mcpgate/mcpgate/internal/testutil"
)

// browser is an in-test "browser": it GETs the authorization URL and follows the redirect to
// the loopback callback, as a user clicking through would.
type browser struct {
	t      testing.TB
	mu     sync.Mutex
	opened []string
	pages  []string
}

func (b *browser) open(u string) error {
	b.mu.Lock()
	b.opened = append(b.opened, u)
	b.mu.Unlock()
	go func() {
		hc := &http.Client{Timeout: 10 * time.Second}
		resp, err := hc.Get(u)
		if err != nil {
			b.t.Logf("browser: %v", err)
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		b.mu.Lock()
		b.pages = append(b.pages, buf.String())
		b.mu.Unlock()
	}()
	return nil
}

func (b *browser) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.opened)
}

// env is a fake authorization server and protected resource with one cache directory.
type env struct {
	as       *oauthtest.AS
	res      *oauthtest.Resource
	cacheDir string
	browser  *browser
}

func newEnv(t *testing.T, ao oauthtest.ASOptions, ro oauthtest.ResourceOptions) *env {
	t.Helper()
	as := oauthtest.NewAS(t, ao)
	return &env{as: as, res: oauthtest.NewResource(t, as, ro), cacheDir: t.TempDir(), browser: &browser{t: t}}
}

// client returns a Client for the environment; mod may adjust the config.
func (e *env) client(t *testing.T, mod func(*Config)) (*Client, *testutil.SyncBuffer) {
	t.Helper()
	errOut := &testutil.SyncBuffer{}
	cfg := Config{
		MCPURL:       e.res.URL,
		CacheDir:     e.cacheDir,
		OpenURL:      e.browser.open,
		Stderr:       errOut,
		Stdout:       &testutil.SyncBuffer{},
		LoginTimeout: 10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, errOut
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeClock is a settable clock shared by the fakes and the client.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func mustContain(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}
