package idp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

var usernameRe = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,39}$`)

// continueURL is where a successful sign-in goes: the pending authorization, or the account page.
// Only these two internal targets exist, so there is no open redirect.
func (s *Server) continueURL(reqID string) string {
	if reqID != "" {
		return s.endpoint("/consent?req=" + url.QueryEscape(reqID))
	}
	return s.endpoint("/account")
}

// handleLoginPage shows "Sign in with GitHub" and, in development, the username form.
func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reqID := q.Get("req")
	if reqID != "" && s.pendingRequest(w, r, reqID) == nil {
		return
	}
	if u := s.onlyUpstream(reqID); u != "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusFound)
		return
	}
	s.renderLogin(w, r, reqID, "", http.StatusOK)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, reqID, errMsg string, status int) {
	csrf, err := s.loginCSRF(w, r)
	if err != nil {
		s.log.Error("load session", "error", err)
		s.renderStorageError(w, err)
		return
	}
	ghURL := s.endpoint("/login/github")
	if reqID != "" {
		ghURL += "?req=" + url.QueryEscape(reqID)
	}
	s.renderPage(w, status, "login", map[string]any{
		"Title":     "Sign in",
		"Error":     errMsg,
		"GitHub":    s.githubConfigured() && !s.opts.GitHub.LinkOnly,
		"GitHubURL": ghURL,
		"Upstreams": s.upstreamLoginOptions(reqID),
		"Dev":       s.opts.DevLogin,
		"CSRF":      csrf,
		"ReqID":     reqID,
		"Action":    s.endpoint("/login"),
	})
}

// handleDevLogin is the development login: a username (sub "dev:<username>") and optionally a
// GitHub personal access token to link, checked with GitHub first (checkPAT; on failure the form
// is shown again with the error and nothing is stored, not even the user). Enabled only with
// Options.DevLogin.
func (s *Server) handleDevLogin(w http.ResponseWriter, r *http.Request) {
	if !s.opts.DevLogin {
		s.renderError(w, http.StatusNotFound, "Not found", "Development login is disabled.")
		return
	}
	if err := parsePageForm(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	if err := s.checkLoginCSRF(r); err != nil {
		if !errors.Is(err, errCSRF) {
			s.log.Error("load session", "error", err)
			s.renderStorageError(w, err)
			return
		}
		s.renderError(w, http.StatusForbidden, "Forbidden", "The form's security token is missing or wrong. Go back and try again.")
		return
	}
	reqID := r.PostForm.Get("req")
	if reqID != "" && s.pendingRequest(w, r, reqID) == nil {
		return
	}
	username := r.PostForm.Get("username")
	if !usernameRe.MatchString(username) {
		s.renderLogin(w, r, reqID, "A username is 1 to 39 letters, digits, '.', '_' or '-'.", http.StatusBadRequest)
		return
	}
	pat := strings.TrimSpace(r.PostForm.Get("github_token"))
	if pat != "" && !validPAT(pat) {
		s.renderLogin(w, r, reqID, "That does not look like a GitHub token.", http.StatusBadRequest)
		return
	}
	sub := "dev:" + username
	ctx := r.Context()
	var gt *githubToken
	if pat != "" {
		// Checked like a token pasted on /account, before anything is stored: a wrong token is
		// an error on the form, not GitHub's 401 in a tool's answer later.
		gu, status, msg := s.checkPAT(w, r, sub, pat)
		if gu == nil {
			s.renderLogin(w, r, reqID, msg, status)
			return
		}
		gt = &githubToken{AccessToken: pat, PersonalAccess: true, GitHubID: gu.ID, Login: gu.Login}
	}
	if err := s.upsertUser(r, userRecord{Sub: sub, Login: username}); err != nil {
		s.log.Error("store user", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if gt != nil {
		if err := s.saveGitHubToken(ctx, sub, gt); err != nil {
			s.log.Error("store GitHub token", "error", err)
			s.renderStorageError(w, err)
			return
		}
	}
	if err := s.signIn(w, r, sub, reqID); err != nil {
		s.log.Error("create session", "error", err)
		s.renderStorageError(w, err)
		return
	}
	s.log.Info("development sign-in", "sub", sub)
	http.Redirect(w, r, s.continueURL(reqID), http.StatusSeeOther)
}

func validPAT(t string) bool {
	if len(t) < 8 || len(t) > 255 {
		return false
	}
	for _, c := range t {
		if c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// callbackState checks a sign-in callback's state against this browser's state cookie (named
// cookie, cleared here) and takes the login state it names, once. ok false: a page was answered
// (a state missing or not this browser's, 400; a storage fault, 503). ls is nil when the state
// was already used or has expired; the caller refuses it with its own checks.
func (s *Server) callbackState(w http.ResponseWriter, r *http.Request, cookie string) (state string, ls *loginState, ok bool) {
	state = r.URL.Query().Get("state")
	ck, err := r.Cookie(cookie)
	if state == "" || len(state) > 100 || err != nil || !constantTimeEqual(ck.Value, state) {
		s.renderError(w, http.StatusBadRequest, "Invalid sign-in", "The sign-in state is missing or does not belong to this browser. Start again.")
		return "", nil, false
	}
	ls, err = s.takeLoginState(r.Context(), state)
	if err != nil {
		// The state is untouched and the cookie kept: reloading the callback retries.
		s.log.Error("take login state", "error", err)
		s.renderStorageError(w, err)
		return "", nil, false
	}
	s.setCookie(w, cookie, "", 0)
	return state, ls, true
}

// takeLoginState consumes the login state (single use: deleted whatever it holds) and returns it
// unless it is missing or expired.
func (s *Server) takeLoginState(ctx context.Context, state string) (*loginState, error) {
	ls, err := s.db.TakeLoginState(ctx, hashSecret(state))
	return live(&ls, ls.Exp, s.opts.Now(), err)
}

func (s *Server) upsertUser(r *http.Request, u userRecord) error {
	return s.db.UpsertUser(r.Context(), u, s.opts.Now())
}

// handleGitHubStart begins the GitHub OAuth web flow, to sign in (req=<pending authorization> or
// none for the account page) or, with link=1, to link GitHub to the signed-in user. The state is
// random, single use, short-lived, and bound to this browser by a cookie.
func (s *Server) handleGitHubStart(w http.ResponseWriter, r *http.Request) {
	if !s.githubConfigured() {
		s.renderError(w, http.StatusNotFound, "Not found", "GitHub sign-in is not configured.")
		return
	}
	q := r.URL.Query()
	ls := loginState{ReqID: q.Get("req"), Purpose: "login", Exp: s.opts.Now().Add(s.opts.LoginTTL).Unix()}
	forceLogin := false
	if ls.ReqID != "" {
		ar := s.pendingRequest(w, r, ls.ReqID)
		if ar == nil {
			return
		}
		forceLogin = ar.ForceLogin
	}
	if q.Get("link") != "1" && s.opts.GitHub.LinkOnly {
		s.renderError(w, http.StatusNotFound, "Not found", "GitHub is used here only to link an account, not to sign in.")
		return
	}
	if q.Get("link") == "1" {
		sess, ok := s.pageSession(w, r)
		if !ok {
			return
		}
		if sess == nil || sess.Sub == "" {
			http.Redirect(w, r, s.endpoint("/login"), http.StatusFound)
			return
		}
		// ReqID (validated above) brings the user back to that pending authorization's consent
		// page after linking, instead of the account page.
		ls.Purpose, ls.Sub = "link", sess.Sub
	}
	if !s.allowLoginStart(w, r) {
		return
	}
	state := randomToken()
	if err := s.db.PutLoginState(r.Context(), hashSecret(state), ls); err != nil {
		s.log.Error("store login state", "error", err)
		s.renderStorageError(w, err)
		return
	}
	s.setCookie(w, s.stateCookieName(), state, s.opts.LoginTTL)
	v := url.Values{
		"client_id":    {s.opts.GitHub.ClientID},
		"redirect_uri": {s.githubCallbackURL()},
		"state":        {state},
	}
	if len(s.opts.GitHub.Scopes) > 0 {
		v.Set("scope", strings.Join(s.opts.GitHub.Scopes, " "))
	}
	if forceLogin && ls.Purpose == "login" {
		// GitHub has no prompt=login; its account picker is the closest it offers.
		v.Set("prompt", "select_account")
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.opts.GitHub.BaseURL+"/login/oauth/authorize?"+v.Encode(), http.StatusFound)
}

// handleGitHubCallback completes the GitHub web flow. A missing, mismatched (not this browser's)
// or reused state is refused with 400 before any code is exchanged.
func (s *Server) handleGitHubCallback(w http.ResponseWriter, r *http.Request) {
	if !s.githubConfigured() {
		s.renderError(w, http.StatusNotFound, "Not found", "GitHub sign-in is not configured.")
		return
	}
	q := r.URL.Query()
	_, ls, ok := s.callbackState(w, r, s.stateCookieName())
	if !ok {
		return
	}
	if ls == nil {
		s.renderError(w, http.StatusBadRequest, "Invalid sign-in", "This sign-in was already used or has expired. Start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.renderError(w, http.StatusBadRequest, "GitHub sign-in cancelled", "GitHub did not sign you in. Start again.")
		return
	}
	code := q.Get("code")
	if code == "" {
		s.renderError(w, http.StatusBadRequest, "Invalid sign-in", "GitHub sent no authorization code.")
		return
	}
	ctx := r.Context()
	tok, err := s.githubExchangeCode(ctx, code)
	if err != nil {
		s.log.Info("GitHub code exchange failed", "error", err)
		s.renderError(w, http.StatusBadGateway, "GitHub sign-in failed", "GitHub did not accept the sign-in. Start again.")
		return
	}
	gu, err := s.githubFetchUser(ctx, tok.AccessToken)
	if err != nil {
		s.log.Error("GitHub /user failed", "error", err)
		s.renderError(w, http.StatusBadGateway, "GitHub sign-in failed", "Could not read your GitHub identity. Try again.")
		return
	}
	tok.GitHubID, tok.Login = gu.ID, gu.Login
	ghSub := githubSub(gu.ID)
	target := ghSub
	if ls.Purpose == "link" {
		sess, ok := s.pageSession(w, r)
		if !ok {
			return
		}
		if sess == nil || sess.Sub != ls.Sub {
			s.renderError(w, http.StatusBadRequest, "Invalid sign-in", "You are no longer signed in as the account that started linking.")
			return
		}
		if strings.HasPrefix(sess.Sub, "github:") && sess.Sub != ghSub {
			s.renderError(w, http.StatusBadRequest, "Different GitHub account", "You are signed in with another GitHub account. Sign out first.")
			return
		}
		target = sess.Sub
	} else if err := s.upsertUser(r, userRecord{Sub: ghSub, Login: gu.Login, Name: gu.Name, GitHubID: gu.ID}); err != nil {
		s.log.Error("store user", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if err := s.saveGitHubToken(ctx, target, tok); err != nil {
		s.log.Error("store GitHub token", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if ls.Purpose == "link" {
		s.log.Info("GitHub linked", "sub", target, "github_login", gu.Login)
		back := s.endpoint("/account?msg=linked")
		if ls.ReqID != "" {
			back = s.continueURL(ls.ReqID)
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	if err := s.signIn(w, r, ghSub, ls.ReqID); err != nil {
		s.log.Error("create session", "error", err)
		s.renderStorageError(w, err)
		return
	}
	s.log.Info("GitHub sign-in", "sub", ghSub)
	http.Redirect(w, r, s.continueURL(ls.ReqID), http.StatusSeeOther)
}
