package idp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// downStore is a Store that fails every call while down is set, as a database that went away;
// with only set, just the calls on those buckets fail.
type downStore struct {
	Store
	down atomic.Bool
	only atomic.Pointer[[]string]
}

func (d *downStore) fail(bucket string) error {
	if !d.down.Load() {
		return nil
	}
	if only := d.only.Load(); only != nil && !slices.Contains(*only, bucket) {
		return nil
	}
	return errDown
}

// failOnly takes the store down for the given buckets only (none: every bucket).
func (d *downStore) failOnly(buckets ...string) {
	if len(buckets) == 0 {
		d.only.Store(nil)
	} else {
		d.only.Store(&buckets)
	}
	d.down.Store(true)
}

func (d *downStore) Get(ctx context.Context, b, k string) ([]byte, error) {
	if err := d.fail(b); err != nil {
		return nil, err
	}
	return d.Store.Get(ctx, b, k)
}

func (d *downStore) Put(ctx context.Context, b, k string, v []byte) error {
	if err := d.fail(b); err != nil {
		return err
	}
	return d.Store.Put(ctx, b, k, v)
}

func (d *downStore) Delete(ctx context.Context, b, k string) error {
	if err := d.fail(b); err != nil {
		return err
	}
	return d.Store.Delete(ctx, b, k)
}

func (d *downStore) Update(ctx context.Context, b, k string, fn func([]byte) ([]byte, error)) error {
	if err := d.fail(b); err != nil {
		return err
	}
	return d.Store.Update(ctx, b, k, fn)
}

func (d *downStore) ForEach(ctx context.Context, b string, fn func(string, []byte) error) error {
	if err := d.fail(b); err != nil {
		return err
	}
	return d.Store.ForEach(ctx, b, fn)
}

func (d *downStore) DeleteIf(ctx context.Context, b string, pred func(string, []byte) bool) (int, error) {
	if err := d.fail(b); err != nil {
		return 0, err
	}
	return d.Store.DeleteIf(ctx, b, pred)
}

func (d *downStore) Count(ctx context.Context, b string) (int, error) {
	if err := d.fail(b); err != nil {
		return 0, err
	}
	return d.Store.Count(ctx, b)
}

// While the storage is down every endpoint that needs it answers 503 with Retry-After (a JSON
// temporarily_unavailable, or a page), never a protocol error that would make a client drop its
// registration or its tokens, nor a sign-in page; and nothing is lost: afterwards the code
// redeems, the refresh token refreshes, the pending consent completes.
func TestStorageDownAnswers503(t *testing.T) {
	ds := &downStore{Store: NewMemoryStore()}
	e := newEnv(t, func(o *Options) {
		o.Store, o.EncryptionKey = ds, make([]byte, 32)
		o.GitHub.ClientID, o.GitHub.ClientSecret = "gh-client", "gh-secret"
	})
	c := e.register(nil)
	tok := e.login(c, "alice", "ghp_alice_token_0123")
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)

	// A browser signed in, with a pending consent; and a code not yet redeemed.
	b := e.browser()
	p := newPKCE()
	consent := b.follow(authorizeURL(e, c, p, url.Values{"prompt": {"consent"}, "state": {"s-down"}}))
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

	// A GitHub sign-in started before the outage, whose callback arrives during it.
	gb := e.browser()
	start := gb.get(e.url("/login/github"))
	ghAuth, err := url.Parse(start.location)
	if start.status != http.StatusFound || err != nil || ghAuth.Query().Get("state") == "" {
		t.Fatalf("GitHub start: %d %s", start.status, start.location)
	}

	ds.down.Store(true)
	form := func(v url.Values) func() (int, http.Header, string) {
		return func() (int, http.Header, string) {
			pg := b.post(e.url("/token"), v)
			return pg.status, pg.header, pg.body
		}
	}
	get := func(path string) func() (int, http.Header, string) {
		return func() (int, http.Header, string) {
			pg := b.get(e.url(path))
			return pg.status, pg.header, pg.body
		}
	}
	post := func(path string, v url.Values) func() (int, http.Header, string) {
		return func() (int, http.Header, string) {
			pg := b.post(e.url(path), v)
			return pg.status, pg.header, pg.body
		}
	}
	csrf := formValue(t, csrfRe, consent.body)
	tests := []struct {
		name string
		do   func() (int, http.Header, string)
	}{
		{"register", func() (int, http.Header, string) {
			resp, m := e.postJSON("/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"}, nil)
			return resp.StatusCode, resp.Header, mapString(m)
		}},
		{"client configuration", func() (int, http.Header, string) {
			req, _ := http.NewRequest(http.MethodGet, e.url("/register/"+c.ID), nil)
			req.Header.Set("Authorization", "Bearer "+c.RAT)
			resp, m := doJSON(t, req)
			return resp.StatusCode, resp.Header, mapString(m)
		}},
		{"authorize", func() (int, http.Header, string) {
			pg := e.browser().get(authorizeURL(e, c, newPKCE(), nil))
			return pg.status, pg.header, pg.body
		}},
		{"development login", func() (int, http.Header, string) {
			pg := lb.post(e.url("/login"), url.Values{"csrf_token": {formValue(t, csrfRe, loginPage.body)},
				"req": {formValue(t, reqRe, loginPage.body)}, "username": {"carol"}})
			return pg.status, pg.header, pg.body
		}},
		{"consent page", get("/consent?req=" + url.QueryEscape(formValue(t, reqRe, consent.body)))},
		{"consent approve", post("/consent", url.Values{"csrf_token": {csrf}, "req": {formValue(t, reqRe, consent.body)}, "action": {"approve"}})},
		{"account", get("/account")},
		{"GitHub sign-in start", get("/login/github")},
		{"logout", post("/logout", url.Values{"csrf_token": {csrf}})},
		{"GitHub callback", func() (int, http.Header, string) {
			pg := gb.get(e.url("/github/callback?code=gh-code&state=" + url.QueryEscape(ghAuth.Query().Get("state"))))
			return pg.status, pg.header, pg.body
		}},
		{"code", form(url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "code": {code}, "redirect_uri": {c.RedirectURI}, "code_verifier": {pc.verifier}})},
		{"refresh", form(url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {rt}})},
		{"revoke", post("/revoke", url.Values{"client_id": {c.ID}, "token": {rt}})},
		{"userinfo", func() (int, http.Header, string) {
			req, _ := http.NewRequest(http.MethodGet, e.url("/userinfo"), nil)
			req.Header.Set("Authorization", "Bearer "+at)
			resp, m := doJSON(t, req)
			return resp.StatusCode, resp.Header, mapString(m)
		}},
		{"token exchange", func() (int, http.Header, string) {
			resp, m := e.exchange(at, "gateway", "gateway-secret-0123456789")
			return resp.StatusCode, resp.Header, mapString(m)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, hdr, body := tc.do()
			if st != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
				t.Fatalf("status %d Retry-After %q, want 503 with Retry-After: %.300s", st, hdr.Get("Retry-After"), body)
			}
			if strings.HasPrefix(hdr.Get("Content-Type"), "application/json") && !strings.Contains(body, "temporarily_unavailable") {
				t.Errorf("JSON answer without temporarily_unavailable: %s", body)
			}
		})
	}

	ds.down.Store(false)
	if resp, m := e.redeem(c, code, pc.verifier, nil); resp.StatusCode != 200 {
		t.Fatalf("code after the outage: %d %v", resp.StatusCode, m)
	}
	if resp, m := e.refresh(c, rt); resp.StatusCode != 200 {
		t.Fatalf("refresh after the outage: %d %v", resp.StatusCode, m)
	}
	if pg := b.approve(consent); pg.status != http.StatusFound || !strings.Contains(pg.location, "code=") {
		t.Fatalf("consent after the outage: %d %s %s", pg.status, pg.location, pg.body)
	}
}

func mapString(m map[string]any) string {
	var sb strings.Builder
	for k, v := range m {
		sb.WriteString(k + "=" + strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " ")) + " ")
	}
	return sb.String()
}

func fmtAny(v any) string {
	s, ok := v.(string)
	if !ok {
		return "?"
	}
	return s
}

// A storage error that is not a fault (a request cancelled by its client, a value the storage
// refuses) is a plain 500 page or server_error, never anything else.
func TestStorageErrorNotAFault(t *testing.T) {
	e := newEnv(t, nil)
	for _, err := range []error{context.Canceled, errUnstorable, errors.New("something else")} {
		rec := httptest.NewRecorder()
		e.srv.renderStorageError(rec, err)
		if rec.Code != http.StatusInternalServerError || rec.Header().Get("Retry-After") != "" {
			t.Errorf("renderStorageError(%v): %d Retry-After %q, want 500 without", err, rec.Code, rec.Header().Get("Retry-After"))
		}
		if oe := errStorage(err); oe.status != http.StatusInternalServerError || oe.Code != "server_error" {
			t.Errorf("errStorage(%v) = %d %s, want 500 server_error", err, oe.status, oe.Code)
		}
	}
}

// A fault in one part of the storage during a token request is 503, never a verdict on the
// token: the code is not called revoked, the refresh token is not called revoked (its retry,
// in the grace window, gets the successor), a revocation is not answered "done", and a sign-in
// callback that met the fault can be reloaded.
func TestStoragePartialFaults(t *testing.T) {
	ds := &downStore{Store: NewMemoryStore()}
	e := newEnv(t, func(o *Options) {
		o.Store, o.EncryptionKey = ds, make([]byte, 32)
		o.GitHub.ClientID, o.GitHub.ClientSecret = "gh-client", "gh-secret"
	})
	c := e.register(nil)
	rt := e.login(c, "alice", "")["refresh_token"].(string)
	pc := newPKCE()
	code := e.getCode(e.browser(), c, pc, "bob", "", nil).Get("code")
	gb := e.browser()
	start := gb.get(e.url("/login/github"))
	ghAuth, _ := url.Parse(start.location)
	callback := e.url("/github/callback?code=gh-code&state=" + url.QueryEscape(ghAuth.Query().Get("state")))

	want503 := func(what string, resp *http.Response, m map[string]any) {
		t.Helper()
		if resp.StatusCode != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
			t.Fatalf("%s: %d %v, want 503 temporarily_unavailable", what, resp.StatusCode, m)
		}
	}
	ds.failOnly(bucketFamilies)
	resp, m := e.redeem(c, code, pc.verifier, nil)
	want503("code redemption, families unreadable", resp, m)
	resp, m = e.refresh(c, rt)
	want503("refresh, families unreadable", resp, m)

	ds.failOnly(bucketRefresh)
	resp, m = e.postForm("/revoke", url.Values{"token": {rt}}, "gateway", "gateway-secret-0123456789")
	want503("revocation by the gateway, refresh tokens unreadable", resp, m)

	ds.failOnly(bucketStates)
	if pg := gb.get(callback); pg.status != http.StatusServiceUnavailable {
		t.Fatalf("GitHub callback, login states unreadable: %d", pg.status)
	}

	ds.down.Store(false)
	if resp, m := e.redeem(c, code, pc.verifier, nil); resp.StatusCode != 200 {
		t.Fatalf("code after the fault: %d %v", resp.StatusCode, m)
	}
	if resp, m := e.refresh(c, rt); resp.StatusCode != 200 {
		t.Fatalf("refresh after the fault (within the grace window): %d %v", resp.StatusCode, m)
	}
	// The state cookie and the login state survived: the reload goes on to GitHub's token
	// endpoint (which fails here: the test's GitHub is not reachable), not to "state missing".
	if pg := gb.get(callback); strings.Contains(pg.body, "missing or does not belong") || strings.Contains(pg.body, "already used or has expired") {
		t.Fatalf("callback reloaded after the fault: %d %s", pg.status, pg.body)
	}
}
