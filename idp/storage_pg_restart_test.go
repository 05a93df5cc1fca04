package idp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// syncBuffer is a bytes.Buffer safe for the Server's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// PostgreSQL restarted under a running Server (issue 19): while it is down, every endpoint that
// needs it answers 503 with Retry-After at once (the port refuses connections, so no request
// waits for pgx's connect timeout), never a 500 nor a protocol error that would make a client
// drop its tokens or registration; once it is back, the same Server and pool serve everything
// that existed before: the refresh token refreshes, the code redeems, the session signs in,
// the pending consent completes, the client is still registered.
func TestPostgresRestart(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	dsn := cluster.DSN()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenPostgresStorage(context.Background(), dsn, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	var logs syncBuffer
	e := newEnv(t, func(o *Options) {
		o.Storage, o.EncryptionKey = store, make([]byte, 32)
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})

	// Before the outage: a client, a user with tokens (and a GitHub token for token exchange), a
	// browser signed in with a consent pending, a browser on the login page, a code not yet
	// redeemed.
	c := e.register(nil)
	tok := e.login(c, "alice", "ghp_alice_token_0123")
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	b := e.browser()
	consent := b.follow(authorizeURL(e, c, newPKCE(), url.Values{"prompt": {"consent"}, "state": {"s-restart"}}))
	if strings.Contains(consent.body, `name="username"`) {
		consent = b.devLogin(consent, "alice", "")
	}
	if !strings.Contains(consent.body, `value="approve"`) {
		t.Fatalf("no consent page: %d %s", consent.status, consent.body)
	}
	lb := e.browser()
	loginPage := lb.follow(authorizeURL(e, c, newPKCE(), nil))
	pc := newPKCE()
	code := e.getCode(e.browser(), c, pc, "bob", "", nil).Get("code")

	cluster.Stop()

	pageOf := func(pg page) (int, http.Header, string) { return pg.status, pg.header, pg.body }
	jsonOf := func(resp *http.Response, m map[string]any) (int, http.Header, string) {
		return resp.StatusCode, resp.Header, mapString(m)
	}
	bearer := func(method, path, token string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, e.url(path), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return jsonOf(doJSON(t, req))
	}
	const gw, gwSecret = "gateway", "gateway-secret-0123456789"
	tests := []struct {
		name string
		do   func() (int, http.Header, string)
	}{
		{"token: code redemption", func() (int, http.Header, string) { return jsonOf(e.redeem(c, code, pc.verifier, nil)) }},
		{"token: refresh", func() (int, http.Header, string) { return jsonOf(e.refresh(c, rt)) }},
		{"token: exchange", func() (int, http.Header, string) { return jsonOf(e.exchange(at, gw, gwSecret)) }},
		{"register", func() (int, http.Header, string) {
			return jsonOf(e.postJSON("/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"}, nil))
		}},
		{"client configuration", func() (int, http.Header, string) { return bearer(http.MethodGet, "/register/"+c.ID, c.RAT) }},
		{"authorize, new browser", func() (int, http.Header, string) { return pageOf(e.browser().get(authorizeURL(e, c, newPKCE(), nil))) }},
		{"authorize, signed-in browser", func() (int, http.Header, string) { return pageOf(b.get(authorizeURL(e, c, newPKCE(), nil))) }},
		{"login", func() (int, http.Header, string) {
			return pageOf(lb.post(e.url("/login"), url.Values{"csrf_token": {formValue(t, csrfRe, loginPage.body)},
				"req": {formValue(t, reqRe, loginPage.body)}, "username": {"carol"}}))
		}},
		{"consent page", func() (int, http.Header, string) {
			return pageOf(b.get(e.url("/consent?req=" + url.QueryEscape(formValue(t, reqRe, consent.body)))))
		}},
		{"consent approve", func() (int, http.Header, string) {
			return pageOf(b.post(e.url("/consent"), url.Values{"csrf_token": {formValue(t, csrfRe, consent.body)},
				"req": {formValue(t, reqRe, consent.body)}, "action": {"approve"}}))
		}},
		{"introspection: access token", func() (int, http.Header, string) {
			return jsonOf(e.postForm("/introspect", url.Values{"token": {at}}, gw, gwSecret))
		}},
		// The introspection of a refresh token is TestIntrospectRefreshTokenStorageDown's.
		{"userinfo", func() (int, http.Header, string) { return bearer(http.MethodGet, "/userinfo", at) }},
	}
	var slowest time.Duration
	for _, tc := range tests {
		t.Run("down/"+tc.name, func(t *testing.T) {
			t0 := time.Now()
			st, hdr, body := tc.do()
			d := time.Since(t0)
			slowest = max(slowest, d)
			t.Logf("%d in %v", st, d.Round(time.Microsecond))
			if st != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
				t.Fatalf("status %d Retry-After %q, want 503 with Retry-After: %.300s", st, hdr.Get("Retry-After"), body)
			}
			if strings.HasPrefix(hdr.Get("Content-Type"), "application/json") && !strings.Contains(body, "temporarily_unavailable") {
				t.Errorf("JSON answer without temporarily_unavailable: %s", body)
			}
			for _, leak := range []string{cfg.Password, "SQLSTATE", fmt.Sprintf(":%d", cfg.Port)} {
				if strings.Contains(body, leak) {
					t.Errorf("the answer tells about the database (%q): %.300s", leak, body)
				}
			}
		})
	}
	t.Logf("while PostgreSQL was down the slowest answer took %v", slowest.Round(time.Microsecond))

	cluster.Start()

	// Nothing lost, and the same Server's pool reconnects by itself. Each request is made once:
	// a 503 here is a failure, not something to retry.
	if resp, m := e.refresh(c, rt); resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh after the restart: %d %v", resp.StatusCode, m)
	} else if rt2, _ := m["refresh_token"].(string); rt2 == "" || rt2 == rt {
		t.Fatalf("refresh after the restart gave no new refresh token")
	} else if resp, m := e.refresh(c, rt2); resp.StatusCode != http.StatusOK {
		t.Fatalf("second refresh after the restart: %d %v", resp.StatusCode, m)
	}
	if resp, m := e.redeem(c, code, pc.verifier, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("code after the restart: %d %v", resp.StatusCode, m)
	}
	if st, _, body := bearer(http.MethodGet, "/register/"+c.ID, c.RAT); st != http.StatusOK || !strings.Contains(body, c.ID) {
		t.Fatalf("client configuration after the restart: %d %s", st, body)
	}
	if st, _, body := bearer(http.MethodGet, "/userinfo", at); st != http.StatusOK {
		t.Fatalf("userinfo after the restart: %d %s", st, body)
	}
	if resp, m := e.postForm("/introspect", url.Values{"token": {at}}, gw, gwSecret); resp.StatusCode != http.StatusOK || m["active"] != true {
		t.Fatalf("introspection after the restart: %d %v", resp.StatusCode, m)
	}
	if resp, m := e.exchange(at, gw, gwSecret); resp.StatusCode != http.StatusOK {
		t.Fatalf("token exchange after the restart: %d %v", resp.StatusCode, m)
	}
	// The pending consent completes, and the session signs the browser in without the login page.
	if pg := b.approve(consent); pg.status != http.StatusFound || !strings.Contains(pg.location, "code=") {
		t.Fatalf("consent after the restart: %d %s %s", pg.status, pg.location, pg.body)
	}
	p2 := newPKCE()
	pg := b.follow(authorizeURL(e, c, p2, nil))
	if strings.Contains(pg.body, `name="username"`) {
		t.Fatalf("the session did not survive the restart: the login page again")
	}
	if strings.Contains(pg.body, `value="approve"`) {
		pg = b.approve(pg)
	}
	u, _ := url.Parse(pg.location)
	if pg.status != http.StatusFound || u == nil || u.Query().Get("code") == "" {
		t.Fatalf("authorize with the session after the restart: %d %s %.300s", pg.status, pg.location, pg.body)
	}
	if resp, m := e.redeem(c, u.Query().Get("code"), p2.verifier, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("redeem the session's new code: %d %v", resp.StatusCode, m)
	}
	// The login form loaded before the outage still works.
	if pg := lb.post(e.url("/login"), url.Values{"csrf_token": {formValue(t, csrfRe, loginPage.body)},
		"req": {formValue(t, reqRe, loginPage.body)}, "username": {"carol"}}); pg.status != http.StatusSeeOther {
		t.Fatalf("login after the restart: %d %.300s", pg.status, pg.body)
	}
	if c2 := e.register(nil); c2.ID == "" {
		t.Fatal("no client registered after the restart")
	}

	if l := logs.String(); strings.Contains(l, cfg.Password) {
		t.Errorf("the log prints the database password")
	}
}
