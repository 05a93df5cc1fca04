package githubfake

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// OAuth is GitHub's OAuth web application flow for one OAuth app, in front of a Fake: what an
// identity broker such as Keycloak's GitHub provider calls, with a Fake's base URL as both its
// "Base URL" and "API URL". It is an http.Handler; every path it does not serve goes to the Fake.
//
// Served endpoints:
//
//	GET  /login/oauth/authorize     client_id, redirect_uri (required here), state, scope,
//	                                login or login_hint, code_challenge (+ _method S256)
//	POST /login/oauth/access_token  client_id and client_secret (form or HTTP Basic), code,
//	                                redirect_uri, code_verifier
//	GET  /user/emails               Authorization: Bearer/token <user's token>
//
// Authorization approves at once for the user named by login (GitHub's parameter) or login_hint
// (what a broker forwards); without one, it answers a small HTML page with one link per user and
// a "Cancel" link (which redirects back with error=access_denied, as GitHub does on denial).
//
// The access token issued for a user is that user's User.Token in the Fake, so whatever the broker
// stores later works against the Fake's API as that user. The token response is form-encoded
// (access_token=...&scope=...&token_type=bearer) unless the request's Accept names
// application/json; errors are answered with status 200 and an error field, as GitHub does.
// Codes are single use and expire after 10 minutes.
type OAuth struct {
	fake         *Fake
	clientID     string
	clientSecret string

	mu        sync.Mutex
	grants    map[string]grant // by code
	exchanges []Exchange
}

type grant struct {
	login       string
	redirectURI string
	scope       string
	challenge   string
	expires     time.Time
}

// Exchange records one request to /login/oauth/access_token (never the code, secret or token).
type Exchange struct {
	Accept     string // the request's Accept header
	ClientAuth string // "client_secret_basic", "client_secret_post" or "" (none)
	PKCE       bool   // whether a code_verifier was sent
	Login      string // the user whose token was issued; "" on error
	Error      string // the GitHub error code answered, e.g. "bad_verification_code"; "" on success
}

// NewOAuth returns the OAuth flow of the app clientID/clientSecret in front of f.
func NewOAuth(f *Fake, clientID, clientSecret string) *OAuth {
	return &OAuth{fake: f, clientID: clientID, clientSecret: clientSecret, grants: map[string]grant{}}
}

// Exchanges returns a copy of the token requests received so far, in order.
func (o *OAuth) Exchanges() []Exchange {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.exchanges)
}

// ServeHTTP implements http.Handler.
func (o *OAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login/oauth/authorize":
		o.authorize(w, r)
	case "/login/oauth/access_token":
		o.accessToken(w, r)
	case "/user/emails":
		o.emails(w, r)
	default:
		o.fake.ServeHTTP(w, r)
	}
}

func (o *OAuth) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if q.Get("client_id") != o.clientID {
		http.Error(w, "Not Found: no OAuth app with this client_id", http.StatusNotFound)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() || (redirect.Scheme != "http" && redirect.Scheme != "https") {
		http.Error(w, "The redirect_uri is missing or not an absolute http(s) URL.", http.StatusBadRequest)
		return
	}
	if m := q.Get("code_challenge_method"); q.Get("code_challenge") != "" && m != "S256" {
		o.redirect(w, r, redirect, url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge_method must be S256"}})
		return
	}
	if q.Get("deny") != "" {
		o.redirect(w, r, redirect, url.Values{
			"error":             {"access_denied"},
			"error_description": {"The user has denied your application access."},
			"error_uri":         {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied"},
		})
		return
	}
	login := q.Get("login")
	if login == "" {
		login = q.Get("login_hint")
	}
	user := o.fake.userByLogin(login)
	if user == nil {
		o.chooser(w, r)
		return
	}
	code, err := randomHex(10) // GitHub's codes are 20 hex digits
	if err != nil {
		http.Error(w, "no randomness", http.StatusInternalServerError)
		return
	}
	o.mu.Lock()
	o.grants[code] = grant{
		login: user.Login, redirectURI: redirect.String(), scope: normalizeScope(q.Get("scope")),
		challenge: q.Get("code_challenge"), expires: o.fake.clock().Add(10 * time.Minute),
	}
	o.mu.Unlock()
	o.redirect(w, r, redirect, url.Values{"code": {code}})
}

// redirect sends the browser back to the app with params and the request's state.
func (o *OAuth) redirect(w http.ResponseWriter, r *http.Request, to *url.URL, params url.Values) {
	u := *to
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if st := r.URL.Query().Get("state"); st != "" {
		q.Set("state", st)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// chooser is the sign-in page: one link per user, and Cancel.
func (o *OAuth) chooser(w http.ResponseWriter, r *http.Request) {
	link := func(k, v string) string {
		q := r.URL.Query()
		q.Del("login_hint")
		q.Set(k, v)
		return html.EscapeString("/login/oauth/authorize?" + q.Encode())
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><title>Sign in to GitHub (fake)</title></head><body>\n<ul id=\"users\">\n")
	o.fake.mu.Lock()
	for _, u := range o.fake.users {
		fmt.Fprintf(&b, "<li><a class=\"user\" href=\"%s\">%s</a></li>\n", link("login", u.Login), html.EscapeString(u.Login))
	}
	o.fake.mu.Unlock()
	fmt.Fprintf(&b, "</ul>\n<a id=\"cancel\" href=\"%s\">Cancel</a>\n</body></html>\n", link("deny", "1"))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

func (o *OAuth) accessToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ex := Exchange{Accept: r.Header.Get("Accept")}
	jsonOut := acceptsJSON(ex.Accept)
	answer := func(v url.Values) {
		if jsonOut {
			m := map[string]string{}
			for k := range v {
				m[k] = v.Get(k)
			}
			writeJSON(w, http.StatusOK, m)
			return
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte(v.Encode()))
	}
	fail := func(code, desc, uri string) {
		ex.Error = code
		o.record(ex)
		answer(url.Values{"error": {code}, "error_description": {desc}, "error_uri": {uri}})
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret, basic := r.BasicAuth()
	switch {
	case basic:
		ex.ClientAuth = "client_secret_basic"
	case r.PostForm.Has("client_secret"):
		ex.ClientAuth = "client_secret_post"
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		id = r.PostForm.Get("client_id")
	}
	ex.PKCE = r.PostForm.Has("code_verifier")
	if subtle.ConstantTimeCompare([]byte(id), []byte(o.clientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(o.clientSecret)) != 1 {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.",
			"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials")
		return
	}
	code := r.PostForm.Get("code")
	o.mu.Lock()
	g, ok := o.grants[code]
	delete(o.grants, code) // single use, whatever follows
	o.mu.Unlock()
	badCode := func() {
		fail("bad_verification_code", "The code passed is incorrect or expired.",
			"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code")
	}
	if !ok || !o.fake.clock().Before(g.expires) {
		badCode()
		return
	}
	if ru := r.PostForm.Get("redirect_uri"); ru != "" && ru != g.redirectURI {
		fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.",
			"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch")
		return
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
			badCode()
			return
		}
	}
	user := o.fake.userByLogin(g.login)
	if user == nil {
		badCode()
		return
	}
	ex.Login = user.Login
	o.record(ex)
	answer(url.Values{"access_token": {user.Token}, "scope": {g.scope}, "token_type": {"bearer"}})
}

func (o *OAuth) record(ex Exchange) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.exchanges = append(o.exchanges, ex)
}

// emails serves GET /user/emails: the user's e-mail, or GitHub's noreply address when the User has
// none, as the primary verified address.
func (o *OAuth) emails(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusNotFound, ghMessage("Not Found"))
		return
	}
	token := bearer(r.Header.Get("Authorization"))
	var user *User
	o.fake.mu.Lock()
	for _, u := range o.fake.users {
		if token != "" && u.Token == token {
			c := *u
			user = &c
		}
	}
	o.fake.mu.Unlock()
	if user == nil {
		writeJSON(w, http.StatusUnauthorized, ghMessage("Bad credentials"))
		return
	}
	email, vis := user.Email, any("public")
	if email == "" {
		email, vis = fmt.Sprintf("%d+%s@users.noreply.github.com", user.ID, user.Login), nil
	}
	writeJSON(w, http.StatusOK, []any{map[string]any{"email": email, "primary": true, "verified": true, "visibility": vis}})
}

// userByLogin returns a copy of the user with this login (case-insensitive, as GitHub), or nil.
func (f *Fake) userByLogin(login string) *User {
	if login == "" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if strings.EqualFold(u.Login, login) {
			c := *u
			return &c
		}
	}
	return nil
}

func (f *Fake) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now()
}

// normalizeScope turns a requested scope list (GitHub accepts spaces or commas) into GitHub's
// granted form: comma-separated, without duplicates, in request order.
func normalizeScope(s string) string {
	var out []string
	for _, sc := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, ",")
}

// acceptsJSON reports whether an Accept header asks for JSON (GitHub's rule for the token response).
func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
