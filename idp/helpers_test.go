package idp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testEnv struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	clock  *fakeClock
	issuer string
}

// newEnv starts a Server on an httptest listener; the issuer is the listener's URL. mod may
// adjust the options before New.
func newEnv(t *testing.T, mod func(*Options)) *testEnv {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	clock := newFakeClock()
	opts := Options{
		Issuer:          issuer,
		DevLogin:        true,
		GitHub:          GitHubConfig{HTTPClient: newPATGitHub()},
		Now:             clock.Now,
		DefaultResource: "https://mcp.example.com/mcp",
		ExchangeClients: []ExchangeClient{{ID: "gateway", Secret: "gateway-secret-0123456789", Audiences: []string{"https://mcp.example.com/mcp"}}},
	}
	if mod != nil {
		mod(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return &testEnv{t: t, srv: srv, ts: ts, clock: clock, issuer: issuer}
}

// newPATGitHub is an in-process stand-in for GitHub's GET /user, the check of a token pasted on
// the development login form or on /account. It returns an HTTP client that answers requests for
// https://api.github.com (the default APIURL, which is also the token exchange audience) itself,
// without a connection, and sends every other request to its destination. A token starting with
// "ghp_bad" is rejected (401); any other gets 200 with a user whose id and login derive from it.
func newPATGitHub() *http.Client {
	user := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.URL.Path != "/user" || !ok || tok == "" || strings.HasPrefix(tok, "ghp_bad") {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 1000 + int64(crc32.ChecksumIEEE([]byte(tok))), "login": "gh-" + strconv.Itoa(len(tok))})
	})
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != "api.github.com" {
			return http.DefaultTransport.RoundTrip(r)
		}
		rec := httptest.NewRecorder()
		user.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (e *testEnv) url(p string) string { return e.issuer + p }

// postJSON posts v (or raw bytes) and decodes the JSON answer.
func (e *testEnv) postJSON(path string, v any, hdr map[string]string) (*http.Response, map[string]any) {
	e.t.Helper()
	var body []byte
	switch b := v.(type) {
	case []byte:
		body = b
	case string:
		body = []byte(b)
	default:
		body, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url(path), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return doJSON(e.t, req)
}

func doJSON(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp, m
}

// postForm posts a form to the token-style endpoints with optional basic auth.
func (e *testEnv) postForm(path string, v url.Values, user, pass string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url(path), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return doJSON(e.t, req)
}

type testClient struct {
	ID, Secret, RAT, RedirectURI string
}

func (e *testEnv) register(md map[string]any) testClient {
	e.t.Helper()
	if md == nil {
		md = map[string]any{}
	}
	if _, ok := md["redirect_uris"]; !ok {
		md["redirect_uris"] = []string{"http://127.0.0.1/cb"}
	}
	if _, ok := md["token_endpoint_auth_method"]; !ok {
		md["token_endpoint_auth_method"] = "none"
	}
	if _, ok := md["grant_types"]; !ok {
		md["grant_types"] = []string{"authorization_code", "refresh_token"}
	}
	if _, ok := md["client_name"]; !ok {
		md["client_name"] = "Test Client"
	}
	resp, m := e.postJSON("/register", md, nil)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("register: status %d %v", resp.StatusCode, m)
	}
	c := testClient{ID: m["client_id"].(string), RAT: m["registration_access_token"].(string)}
	if s, ok := m["client_secret"].(string); ok {
		c.Secret = s
	}
	c.RedirectURI = md["redirect_uris"].([]string)[0]
	return c
}

// browser is a cookie-jar HTTP client that never follows redirects by itself.
type browser struct {
	t *testing.T
	e *testEnv
	c *http.Client
}

func (e *testEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(body), header: resp.Header}
	if loc := resp.Header.Get("Location"); loc != "" {
		u, _ := req.URL.Parse(loc)
		p.location = u.String()
	}
	return p
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, v url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// follow GETs u and follows redirects while they stay on the issuer.
func (b *browser) follow(u string) page {
	b.t.Helper()
	p := b.get(u)
	for i := 0; i < 10 && p.location != "" && strings.HasPrefix(p.location, b.e.issuer+"/"); i++ {
		p = b.get(p.location)
	}
	return p
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
var reqRe = regexp.MustCompile(`name="req" value="([^"]*)"`)

func formValue(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return m[1]
}

// devLogin signs the browser in on the login page p (a page with the dev form).
func (b *browser) devLogin(p page, username, pat string) page {
	b.t.Helper()
	csrf := formValue(b.t, csrfRe, p.body)
	req := formValue(b.t, reqRe, p.body)
	r := b.post(b.e.url("/login"), url.Values{"csrf_token": {csrf}, "req": {req}, "username": {username}, "github_token": {pat}})
	if r.status != http.StatusSeeOther {
		b.t.Fatalf("dev login: status %d %s", r.status, r.body)
	}
	if r.location != "" && strings.HasPrefix(r.location, b.e.issuer+"/") {
		return b.follow(r.location)
	}
	return r
}

// approve posts the consent form on page p.
func (b *browser) approve(p page) page {
	b.t.Helper()
	if !strings.Contains(p.body, `value="approve"`) {
		b.t.Fatalf("not a consent page: %d %s", p.status, p.body)
	}
	return b.post(b.e.url("/consent"), url.Values{
		"csrf_token": {formValue(b.t, csrfRe, p.body)}, "req": {formValue(b.t, reqRe, p.body)}, "action": {"approve"},
	})
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := randomToken() + "abc" // 46 chars
	s := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(s[:])}
}

func authorizeURL(e *testEnv, c testClient, p pkce, extra url.Values) string {
	v := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {c.RedirectURI},
		"state":                 {"st-123"},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
	}
	for k, vals := range extra {
		if len(vals) == 0 {
			v.Del(k)
		} else {
			v[k] = vals
		}
	}
	return e.url("/authorize?" + v.Encode())
}

// getCode runs the browser part for a new user: authorize, dev login, consent; returns the
// redirect's query.
func (e *testEnv) getCode(b *browser, c testClient, p pkce, username, pat string, extra url.Values) url.Values {
	e.t.Helper()
	pg := b.follow(authorizeURL(e, c, p, extra))
	if strings.Contains(pg.body, `name="username"`) {
		pg = b.devLogin(pg, username, pat)
	}
	if strings.Contains(pg.body, `value="approve"`) {
		pg = b.approve(pg)
	}
	if pg.status != http.StatusFound || pg.location == "" {
		e.t.Fatalf("expected redirect to client, got %d %s", pg.status, pg.body)
	}
	u, _ := url.Parse(pg.location)
	return u.Query()
}

func (e *testEnv) redeem(c testClient, code, verifier string, extra url.Values) (*http.Response, map[string]any) {
	e.t.Helper()
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI}, "code_verifier": {verifier}}
	user, pass := "", ""
	if c.Secret != "" {
		user, pass = c.ID, c.Secret
	} else {
		v.Set("client_id", c.ID)
	}
	for k, vals := range extra {
		if len(vals) == 0 {
			v.Del(k)
		} else {
			v[k] = vals
		}
	}
	return e.postForm("/token", v, user, pass)
}

// login runs a full flow and returns the token response.
func (e *testEnv) login(c testClient, username, pat string) map[string]any {
	e.t.Helper()
	p := newPKCE()
	q := e.getCode(e.browser(), c, p, username, pat, nil)
	resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("redeem: %d %v", resp.StatusCode, m)
	}
	return m
}

// loginFor is login without a pasted token and with extra authorization parameters (e.g. a
// resource); the same extra parameters go to the token request.
func (e *testEnv) loginFor(c testClient, username string, extra url.Values) map[string]any {
	e.t.Helper()
	p := newPKCE()
	q := e.getCode(e.browser(), c, p, username, "", extra)
	resp, m := e.redeem(c, q.Get("code"), p.verifier, extra)
	if resp.StatusCode != 200 {
		e.t.Fatalf("redeem: %d %v", resp.StatusCode, m)
	}
	return m
}

// getJSON and putJSON reach into the server's key-value Store in its JSON layout, for tests that
// plant or inspect records directly (production code goes through Storage).
func (s *Server) getJSON(ctx context.Context, bucket, key string, v any) error {
	b, err := s.store.Get(ctx, bucket, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s *Server) putJSON(ctx context.Context, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.store.Put(ctx, bucket, key, b)
}
