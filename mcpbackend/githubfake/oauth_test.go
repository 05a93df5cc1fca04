package githubfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	testClientID     = "app-id"
	testClientSecret = "app-secret"
	testCallback     = "http://127.0.0.1:9999/broker/github/endpoint"
)

func newOAuthServer(t *testing.T) (*OAuth, *Fake, *httptest.Server) {
	t.Helper()
	f := NewDemo()
	o := NewOAuth(f, testClientID, testClientSecret)
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return o, f, srv
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize calls the authorize endpoint with q and returns the response (redirects not followed).
func authorize(t *testing.T, srv *httptest.Server, q url.Values) *http.Response {
	t.Helper()
	resp, err := noRedirect.Get(srv.URL + "/login/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func authQuery(extra ...string) url.Values {
	q := url.Values{"client_id": {testClientID}, "redirect_uri": {testCallback}, "state": {"st-1"}, "scope": {"read:user user:email,repo"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// codeFor runs authorize for a user and returns the code from the redirect.
func codeFor(t *testing.T, srv *httptest.Server, extra ...string) string {
	t.Helper()
	resp := authorize(t, srv, authQuery(extra...))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testCallback {
		t.Fatalf("redirected to %s, want %s", got, testCallback)
	}
	if loc.Query().Get("state") != "st-1" || len(loc.Query().Get("code")) != 20 {
		t.Fatalf("redirect query: state %q, code length %d", loc.Query().Get("state"), len(loc.Query().Get("code")))
	}
	return loc.Query().Get("code")
}

func tokenRequest(t *testing.T, srv *httptest.Server, form url.Values, accept string, basic bool) (string, string) {
	t.Helper()
	if !basic {
		form.Set("client_id", testClientID)
		form.Set("client_secret", testClientSecret)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if basic {
		req.SetBasicAuth(testClientID, testClientSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint status %d; GitHub answers 200 even for errors", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.Header.Get("Content-Type"), string(b)
}

func TestOAuthCodeFlowIssuesTheUsersToken(t *testing.T) {
	for _, tc := range []struct {
		name, param, login, token, accept string
		basic                             bool
		json                              bool
	}{
		{"login, form response", "login", AliceLogin, AliceToken, "", false, false},
		{"login_hint, JSON response", "login_hint", BobLogin, BobToken, "application/json", false, true},
		{"case-insensitive login, basic auth, JSON among others", "login", "ALICE", AliceToken, "text/plain, application/json;q=0.9", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _, srv := newOAuthServer(t)
			code := codeFor(t, srv, tc.param, tc.login)
			ct, body := tokenRequest(t, srv, url.Values{"code": {code}, "redirect_uri": {testCallback}}, tc.accept, tc.basic)
			got := map[string]string{}
			if tc.json {
				if !strings.HasPrefix(ct, "application/json") || json.Unmarshal([]byte(body), &got) != nil {
					t.Fatalf("want JSON, got %q", ct)
				}
			} else {
				q, err := url.ParseQuery(body)
				if err != nil || !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
					t.Fatalf("want a form, got %q (%v)", ct, err)
				}
				for k := range q {
					got[k] = q.Get(k)
				}
				if !strings.HasPrefix(body, "access_token=") {
					t.Errorf("form keys out of GitHub's order: %.20q", body)
				}
			}
			if len(got) != 3 || got["access_token"] != tc.token || got["token_type"] != "bearer" || got["scope"] != "read:user,user:email,repo" {
				t.Errorf("response: %d keys, right token %v, token_type %q, scope %q", len(got), got["access_token"] == tc.token, got["token_type"], got["scope"])
			}
			ex := o.Exchanges()
			wantAuth := "client_secret_post"
			if tc.basic {
				wantAuth = "client_secret_basic"
			}
			if len(ex) != 1 || ex[0].ClientAuth != wantAuth || ex[0].Accept != tc.accept || ex[0].Error != "" || ex[0].PKCE {
				t.Errorf("exchanges = %+v", ex)
			}
			// The issued token works against the API as that user.
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/user", nil)
			req.Header.Set("Authorization", "Bearer "+got["access_token"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var u struct{ Login string }
			if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || !strings.EqualFold(u.Login, tc.login) {
				t.Errorf("/user with the issued token: %d %q", resp.StatusCode, u.Login)
			}
		})
	}
}

func TestOAuthTokenErrors(t *testing.T) {
	verifier := "a-verifier-of-forty-three-characters-0123456"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, o *OAuth, f *Fake, srv *httptest.Server) url.Values
		basic bool
		want  string
	}{
		{"wrong secret", func(t *testing.T, _ *OAuth, _ *Fake, srv *httptest.Server) url.Values {
			return url.Values{"code": {codeFor(t, srv, "login", AliceLogin)}, "client_secret": {"nope"}}
		}, false, "incorrect_client_credentials"},
		{"unknown code", func(*testing.T, *OAuth, *Fake, *httptest.Server) url.Values {
			return url.Values{"code": {"0123456789abcdef0123"}}
		}, false, "bad_verification_code"},
		{"redirect_uri differs", func(t *testing.T, _ *OAuth, _ *Fake, srv *httptest.Server) url.Values {
			return url.Values{"code": {codeFor(t, srv, "login", AliceLogin)}, "redirect_uri": {"http://127.0.0.1:9999/other"}}
		}, false, "redirect_uri_mismatch"},
		{"code used twice", func(t *testing.T, _ *OAuth, _ *Fake, srv *httptest.Server) url.Values {
			code := codeFor(t, srv, "login", AliceLogin)
			if _, body := tokenRequest(t, srv, url.Values{"code": {code}}, "", false); !strings.HasPrefix(body, "access_token=") {
				t.Fatal("first redemption failed")
			}
			return url.Values{"code": {code}}
		}, false, "bad_verification_code"},
		{"code expired", func(t *testing.T, _ *OAuth, f *Fake, srv *httptest.Server) url.Values {
			code := codeFor(t, srv, "login", AliceLogin)
			f.SetNow(func() time.Time { return time.Now().Add(11 * time.Minute) })
			return url.Values{"code": {code}}
		}, false, "bad_verification_code"},
		{"PKCE verifier wrong", func(t *testing.T, _ *OAuth, _ *Fake, srv *httptest.Server) url.Values {
			code := codeFor(t, srv, "login", AliceLogin, "code_challenge", challenge, "code_challenge_method", "S256")
			return url.Values{"code": {code}, "code_verifier": {verifier + "x"}}
		}, false, "bad_verification_code"},
		{"PKCE verifier right", func(t *testing.T, _ *OAuth, _ *Fake, srv *httptest.Server) url.Values {
			code := codeFor(t, srv, "login", AliceLogin, "code_challenge", challenge, "code_challenge_method", "S256")
			return url.Values{"code": {code}, "code_verifier": {verifier}}
		}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, f, srv := newOAuthServer(t)
			form := tc.setup(t, o, f, srv)
			if form.Has("client_secret") { // a deliberate wrong secret: send it as is
				form.Set("client_id", testClientID)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				q, _ := url.ParseQuery(string(b))
				if resp.StatusCode != 200 || q.Get("error") != tc.want || q.Get("access_token") != "" {
					t.Errorf("got %d error %q", resp.StatusCode, q.Get("error"))
				}
				return
			}
			_, body := tokenRequest(t, srv, form, "", tc.basic)
			q, err := url.ParseQuery(body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if q.Get("access_token") != AliceToken || q.Get("error") != "" {
					t.Errorf("want alice's token, got error %q", q.Get("error"))
				}
				return
			}
			if q.Get("error") != tc.want || q.Get("error_description") == "" || q.Get("access_token") != "" {
				t.Errorf("error %q (description %q), token present %v; want %q", q.Get("error"), q.Get("error_description"), q.Get("access_token") != "", tc.want)
			}
			ex := o.Exchanges()
			if len(ex) == 0 || ex[len(ex)-1].Error != tc.want || ex[len(ex)-1].Login != "" {
				t.Errorf("last exchange %+v", ex)
			}
		})
	}
}

func TestOAuthAuthorizeWithoutUserShowsChooser(t *testing.T) {
	_, _, srv := newOAuthServer(t)
	for _, q := range []url.Values{authQuery(), authQuery("login", "nobody")} {
		resp := authorize(t, srv, q)
		b, _ := io.ReadAll(resp.Body)
		page := string(b)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("chooser: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{`class="user"`, ">alice</a>", ">bob</a>", "login=bob", `id="cancel"`, "deny=1", "state=st-1"} {
			if !strings.Contains(page, want) {
				t.Errorf("chooser lacks %q", want)
			}
		}
		if strings.Contains(page, AliceToken) || strings.Contains(page, BobToken) {
			t.Error("chooser page shows a token")
		}
	}
}

func TestOAuthAuthorizeRejections(t *testing.T) {
	_, _, srv := newOAuthServer(t)
	for _, tc := range []struct {
		name   string
		q      url.Values
		status int
		err    string // the error in the redirect, for 302
	}{
		{"unknown client", authQuery("client_id", "other", "login", AliceLogin), 404, ""},
		{"no redirect_uri", authQuery("redirect_uri", "", "login", AliceLogin), 400, ""},
		{"relative redirect_uri", authQuery("redirect_uri", "/cb", "login", AliceLogin), 400, ""},
		{"user denies", authQuery("deny", "1"), 302, "access_denied"},
		{"plain PKCE", authQuery("login", AliceLogin, "code_challenge", "abc", "code_challenge_method", "plain"), 302, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := authorize(t, srv, tc.q)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 302 {
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if loc.Query().Get("error") != tc.err || loc.Query().Get("state") != "st-1" || loc.Query().Has("code") {
					t.Errorf("redirect query %v", loc.Query())
				}
			}
		})
	}
}

func TestOAuthEmails(t *testing.T) {
	_, _, srv := newOAuthServer(t)
	for _, tc := range []struct {
		token  string
		status int
		email  string
	}{
		{AliceToken, 200, "alice@example.com"},
		{BobToken, 200, "1002+bob@users.noreply.github.com"}, // bob has no e-mail in the demo
		{"nope", 401, ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/user/emails", nil)
		req.Header.Set("Authorization", "token "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list []struct {
			Email    string `json:"email"`
			Primary  bool   `json:"primary"`
			Verified bool   `json:"verified"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			continue
		}
		if tc.status == 200 && (len(list) != 1 || list[0].Email != tc.email || !list[0].Primary || !list[0].Verified) {
			t.Errorf("emails = %+v, want one primary verified %s", list, tc.email)
		}
	}
}
