package mcpbackend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

func newTestClient(t *testing.T, baseURL string, edit func(*Options)) *githubClient {
	t.Helper()
	o := Options{GitHubAPIURL: baseURL}
	if edit != nil {
		edit(&o)
	}
	b, err := newBackend(o)
	if err != nil {
		t.Fatal(err)
	}
	return b.gh
}

func TestGitHubRequestHeaders(t *testing.T) {
	fake := githubfake.NewDemo()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	gh := newTestClient(t, srv.URL, func(o *Options) { o.UserAgent = "test-agent/1" })
	var u map[string]any
	if _, err := gh.get(context.Background(), githubfake.AliceToken, "/user", nil, &u); err != nil {
		t.Fatal(err)
	}
	h := fake.Requests()[0].Header
	want := map[string]string{
		"Accept":               "application/vnd.github+json",
		"X-Github-Api-Version": "2022-11-28",
		"User-Agent":           "test-agent/1",
		"Authorization":        "Bearer " + githubfake.AliceToken,
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestPathEscaping(t *testing.T) {
	tests := []struct{ got, want string }{
		{endpoint("repos", "alice", "hello-world"), "/repos/alice/hello-world"},
		{endpoint("repos", "a b", "c?d#e"), "/repos/a%20b/c%3Fd%23e"},
		{endpoint("repos", "x/y"), "/repos/x%2Fy"},
		{filePath("docs/a file.txt"), "docs/a%20file.txt"},
		{filePath("dir/100%/?.md"), "dir/100%25/%3F.md"},
		{filePath("ünï/ç.go"), "%C3%BCn%C3%AF/%C3%A7.go"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParseLink(t *testing.T) {
	gh := newTestClient(t, "https://ghe.example.com/api/v3", nil)
	tests := []struct {
		name, header string
		want         pageInfo
	}{
		{"none", "", pageInfo{}},
		{"next and last", `<https://ghe.example.com/api/v3/user/repos?page=2&per_page=10>; rel="next", <https://ghe.example.com/api/v3/user/repos?page=5&per_page=10>; rel="last"`,
			pageInfo{next: 2, last: 5, nextURL: "https://ghe.example.com/api/v3/user/repos?page=2&per_page=10"}},
		{"only prev and first", `<https://ghe.example.com/api/v3/x?page=1>; rel="prev", <https://ghe.example.com/api/v3/x?page=1>; rel="first"`, pageInfo{}},
		{"other host: page noted, not followed", `<https://evil.example/api/v3/user/repos?page=2>; rel="next"`, pageInfo{next: 2}},
		{"other scheme: not followed", `<http://ghe.example.com/api/v3/user/repos?page=2>; rel="next"`, pageInfo{next: 2}},
		{"outside the API path: not followed", `<https://ghe.example.com/login?page=2>; rel="next"`, pageInfo{next: 2}},
		{"userinfo: not followed", `<https://x@ghe.example.com/api/v3/user/repos?page=2>; rel="next"`, pageInfo{next: 2}},
		{"garbage", `garbage, <>; rel=next, <%zz>; rel="next"`, pageInfo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gh.parseLink(tt.header); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPaginationBoundAndOrigin follows Link headers up to MaxPages, and never to another origin.
func TestPaginationBoundAndOrigin(t *testing.T) {
	fake := githubfake.NewDemo()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(`[]`))
	}))
	defer other.Close()

	tests := []struct {
		name      string
		maxPages  int
		pages     int
		fault     *githubfake.Fault
		wantReqs  int
		wantItems int
	}{
		{"bounded by MaxPages", 2, 5, nil, 2, 20},
		{"bounded by pages", 5, 3, nil, 3, 30},
		{"stops at the last page", 10, 10, nil, 5, 47},
		{"foreign next link not followed", 5, 5, &githubfake.Fault{Status: 200, Body: `[{"id":1}]`,
			Header: http.Header{"Link": {`<` + other.URL + `/user/repos?page=2>; rel="next"`}}}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.Reset()
			if tt.fault != nil {
				fake.FailNext(*tt.fault)
			}
			gh := newTestClient(t, srv.URL, func(o *Options) { o.MaxPages = tt.maxPages })
			items := 0
			_, err := gh.getPages(context.Background(), githubfake.AliceToken, "/user/repos",
				url.Values{"per_page": {"10"}}, tt.pages, func(raw json.RawMessage) error {
					var l []any
					err := json.Unmarshal(raw, &l)
					items += len(l)
					return err
				})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(fake.Requests()); n != tt.wantReqs || items != tt.wantItems {
				t.Errorf("%d requests, %d items; want %d, %d", n, items, tt.wantReqs, tt.wantItems)
			}
			for _, r := range fake.Requests() {
				if r.Token != githubfake.AliceToken {
					t.Errorf("page request with token %q", r.Token)
				}
			}
		})
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the client followed a Link to another origin %d times", elsewhere.Load())
	}
}

func TestEnterpriseBasePath(t *testing.T) {
	fake := githubfake.NewDemo()
	srv := httptest.NewServer(http.StripPrefix("/api/v3", fake))
	defer srv.Close()
	gh := newTestClient(t, srv.URL+"/api/v3/", nil)
	var raw json.RawMessage
	if _, err := gh.get(context.Background(), githubfake.AliceToken, endpoint("repos", "alice", "hello-world", "contents")+"/"+filePath("docs/a file.txt"), nil, &raw); err != nil {
		t.Fatal(err)
	}
	if p := fake.Requests()[0].Path; p != "/repos/alice/hello-world/contents/docs/a file.txt" {
		t.Errorf("path %q", p)
	}
}

func TestResponseSizeBound(t *testing.T) {
	fake := githubfake.NewDemo()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	gh := newTestClient(t, srv.URL, func(o *Options) { o.MaxResponseBytes = 100 })
	var v any
	_, err := gh.get(context.Background(), githubfake.AliceToken, "/user", nil, &v)
	var ge *githubError
	if !errors.As(err, &ge) || ge.kind != errTooLarge {
		t.Fatalf("err %v, want too large", err)
	}
}

func TestStatusErrorMapping(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		status int
		header http.Header
		want   errKind
	}{
		{401, nil, errUnauthorized},
		{403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1800000600"}}, errRateLimited},
		{429, http.Header{"X-Ratelimit-Remaining": {"0"}}, errRateLimited},
		{429, nil, errRateLimited},
		{403, http.Header{"Retry-After": {"30"}}, errRateLimited},
		{403, http.Header{"X-Ratelimit-Remaining": {"10"}}, errForbidden},
		{404, nil, errNotFound},
		{409, nil, errValidation},
		{422, nil, errValidation},
		{500, nil, errServer},
		{503, nil, errServer},
	}
	gh := newTestClient(t, "https://api.github.com", func(o *Options) { o.Now = func() time.Time { return now } })
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: tt.header}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		err := gh.statusError(resp, []byte(`{"message":"m"}`), "tok")
		ge := err.(*githubError)
		if ge.kind != tt.want {
			t.Errorf("%d %v: kind %v, want %v", tt.status, tt.header, ge.kind, tt.want)
		}
		if tt.header.Get("X-Ratelimit-Reset") != "" && !strings.Contains(err.Error(), "in 10m0s") {
			t.Errorf("rate limit text %q lacks the reset time", err)
		}
	}
}

func TestNetworkErrorHidesToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close() // nothing listens any more
	gh := newTestClient(t, u, nil)
	var v any
	_, err := gh.get(context.Background(), githubfake.AliceToken, "/user", nil, &v)
	var ge *githubError
	if !errors.As(err, &ge) || ge.kind != errNetwork || !strings.Contains(err.Error(), "cannot reach the GitHub API") {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), githubfake.AliceToken) {
		t.Errorf("token in error: %v", err)
	}
}

func TestRateLimitResetInThePast(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	gh := newTestClient(t, "https://api.github.com", func(o *Options) { o.Now = func() time.Time { return now } })
	resp := &http.Response{StatusCode: 403, Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1799999990"}}}
	if err := gh.statusError(resp, nil, "tok"); !strings.Contains(err.Error(), "(in 0s)") {
		t.Errorf("got %q", err)
	}
}

// FuzzParseLink: whatever GitHub (or something in between) sends, a next URL that will be followed
// is on the configured API origin and path.
func FuzzParseLink(f *testing.F) {
	f.Add(`<https://api.github.com/user/repos?page=2>; rel="next", <https://api.github.com/user/repos?page=9>; rel="last"`)
	f.Add(`<https://evil.example/user/repos?page=2>; rel="next"`)
	f.Add(`<//evil.example/x>; rel=next`)
	f.Add(`<https://api.github.com@evil.example/>; rel="next"`)
	gh := &githubClient{base: &url.URL{Scheme: "https", Host: "api.github.com"}}
	f.Fuzz(func(t *testing.T, h string) {
		info := gh.parseLink(h)
		if info.nextURL == "" {
			return
		}
		u, err := url.Parse(info.nextURL)
		if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, "api.github.com") || u.User != nil || !strings.HasPrefix(u.EscapedPath(), "/") {
			t.Fatalf("would follow %q from %q", info.nextURL, h)
		}
	})
}

func TestRedirectPolicy(t *testing.T) {
	var foreignAuth atomic.Value
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignAuth.Store(r.Header.Get("Authorization") + "|reached")
		_, _ = w.Write([]byte(`{"login":"x"}`))
	}))
	defer foreign.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/repos/old/name": // GitHub's answer for a renamed repository
			http.Redirect(w, r, "/repositories/5001", http.StatusMovedPermanently)
		case "/repositories/5001":
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(401)
				return
			}
			_, _ = w.Write([]byte(`{"id":5001}`))
		case "/elsewhere":
			http.Redirect(w, r, foreign.URL+"/user", http.StatusFound)
		}
	}))
	defer api.Close()
	gh := newTestClient(t, api.URL, nil) // the default client, with its redirect policy
	var v map[string]any
	if _, err := gh.get(context.Background(), "tok", "/repos/old/name", nil, &v); err != nil || v["id"] != float64(5001) {
		t.Errorf("same-origin redirect: %v %v", v, err)
	}
	_, err := gh.get(context.Background(), "tok", "/elsewhere", nil, &v)
	if err == nil || !strings.Contains(err.Error(), "redirect outside the API was not followed") {
		t.Errorf("cross-origin redirect: %v", err)
	}
	if foreignAuth.Load() != nil {
		t.Errorf("the client followed the redirect to another origin: %v", foreignAuth.Load())
	}
}
