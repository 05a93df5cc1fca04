package idp

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// handleAccount shows the signed-in user and their GitHub link, with forms to (re)link (GitHub
// OAuth, or pasting a personal access token in development), unlink and sign out.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	sess, err := s.loadSession(r)
	if err != nil {
		s.log.Error("load session", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if sess == nil || sess.Sub == "" {
		http.Redirect(w, r, s.endpoint("/login"), http.StatusFound)
		return
	}
	user, err := s.db.GetUser(r.Context(), sess.Sub)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errUndecodable) {
		s.log.Error("load user", "error", err)
		s.renderStorageError(w, err)
		return
	}
	data := map[string]any{
		"Title":        "Your account",
		"User":         user.Login,
		"Sub":          sess.Sub,
		"GitHub":       s.githubConfigured(),
		"LinkURL":      s.endpoint("/login/github?link=1"),
		"Dev":          s.opts.DevLogin,
		"CSRF":         sess.CSRF,
		"PATAction":    s.endpoint("/account/github-token"),
		"UnlinkAction": s.endpoint("/account/unlink"),
		"LogoutAction": s.endpoint("/logout"),
	}
	switch r.URL.Query().Get("msg") {
	case "linked":
		data["Message"] = "GitHub is linked."
	case "unlinked":
		data["Message"] = "GitHub is unlinked."
	}
	t, err := s.loadGitHubToken(r.Context(), sess.Sub)
	switch {
	case err == nil:
		data["Linked"] = true
		data["GitHubLogin"] = t.Login
		if !t.Expiry.IsZero() {
			data["Expiry"] = t.Expiry.UTC().Format(time.RFC3339)
		}
	case !errors.Is(err, ErrNotFound):
		s.log.Error("load GitHub token", "sub", sess.Sub, "error", err)
		if errors.Is(err, ErrStoreFault) {
			s.renderStorageError(w, err)
			return
		}
	}
	s.renderPage(w, http.StatusOK, "account", data)
}

func (s *Server) accountForm(w http.ResponseWriter, r *http.Request) (*session, bool) {
	if err := parsePageForm(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return nil, false
	}
	sess, err := s.loadSession(r)
	if err != nil {
		s.log.Error("load session", "error", err)
		s.renderStorageError(w, err)
		return nil, false
	}
	if err := checkCSRF(r, sess); err != nil || sess.Sub == "" {
		s.renderError(w, http.StatusForbidden, "Forbidden", "The form's security token is missing or wrong, or you are not signed in.")
		return nil, false
	}
	return sess, true
}

// handleAccountPAT checks a pasted personal access token with GitHub (checkPAT) and stores it with
// the GitHub identity it belongs to (development login only). Nothing is stored unless GitHub
// answers 200 with a valid user. The token is never logged or shown.
func (s *Server) handleAccountPAT(w http.ResponseWriter, r *http.Request) {
	if !s.opts.DevLogin {
		s.renderError(w, http.StatusNotFound, "Not found", "Pasting tokens is only available with development login.")
		return
	}
	sess, ok := s.accountForm(w, r)
	if !ok {
		return
	}
	pat := strings.TrimSpace(r.PostForm.Get("github_token"))
	if !validPAT(pat) {
		s.renderError(w, http.StatusBadRequest, "Invalid token", "That does not look like a GitHub token.")
		return
	}
	gu, status, msg := s.checkPAT(w, r, sess.Sub, pat)
	if gu == nil {
		s.renderError(w, status, "Token not linked", msg)
		return
	}
	if strings.HasPrefix(sess.Sub, "github:") && sess.Sub != githubSub(gu.ID) {
		s.renderError(w, http.StatusBadRequest, "Different GitHub account", "This token belongs to another GitHub account than the one you signed in with. Nothing was linked.")
		return
	}
	t := &githubToken{AccessToken: pat, PersonalAccess: true, GitHubID: gu.ID, Login: gu.Login}
	if err := s.saveGitHubToken(r.Context(), sess.Sub, t); err != nil {
		s.log.Error("store GitHub token", "error", err)
		s.renderStorageError(w, err)
		return
	}
	s.log.Info("GitHub token pasted and linked", "sub", sess.Sub, "github_login", gu.Login)
	http.Redirect(w, r, s.endpoint("/account?msg=linked"), http.StatusSeeOther)
}

func (s *Server) handleAccountUnlink(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.accountForm(w, r)
	if !ok {
		return
	}
	if err := s.db.DeleteSealed(r.Context(), SealedGitHub, sess.Sub); err != nil {
		s.log.Error("delete GitHub token", "error", err)
		s.renderStorageError(w, err)
		return
	}
	http.Redirect(w, r, s.endpoint("/account?msg=unlinked"), http.StatusSeeOther)
}

// checkPAT asks GitHub (GET {APIURL}/user) whose personal access token pat is, for a token pasted
// on /account or on the development login form by sub (for logs; "" before sign-in). On failure
// it returns a nil user, the status of the page to show and its message, and has set Retry-After
// when GitHub is unreachable: 401 from GitHub is 400 ("GitHub rejected this token"), an
// unreachable GitHub 503, any other answer 502. The token is never logged.
func (s *Server) checkPAT(w http.ResponseWriter, r *http.Request, sub, pat string) (*githubUser, int, string) {
	gu, err := s.githubFetchUser(r.Context(), pat)
	switch {
	case err == nil:
		return gu, http.StatusOK, ""
	case errors.Is(err, errGitHubBadCredentials):
		s.log.Info("GitHub rejected a pasted token", "sub", sub)
		return nil, http.StatusBadRequest, "GitHub rejected this token. Check that it was copied completely and is neither expired nor revoked. Nothing was linked."
	case errors.Is(err, errGitHubUnreachable):
		s.log.Error("checking a pasted token: GitHub unreachable", "sub", sub, "error", err)
		w.Header().Set("Retry-After", "30")
		return nil, http.StatusServiceUnavailable, "GitHub could not be reached to check this token. Nothing was linked. Try again in a moment."
	default:
		s.log.Error("checking a pasted token: bad answer from GitHub", "sub", sub, "error", err)
		return nil, http.StatusBadGateway, "GitHub did not confirm this token (it answered with an error). Nothing was linked. Try again later."
	}
}
