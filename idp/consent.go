package idp

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// loadAuthRequest returns the pending authorization request id, or nil when it is unknown,
// unreadable or expired. The error is a storage fault only (see loadSession).
func (s *Server) loadAuthRequest(r *http.Request, id string) (*authRequest, error) {
	if id == "" || len(id) > 100 {
		return nil, nil
	}
	ar, err := s.db.GetAuthRequest(r.Context(), id)
	return live(&ar, ar.Exp, s.opts.Now(), err)
}

// live turns the read of an expiring record into the record, or nil when it is missing,
// unreadable or expired at now; the error is a storage fault only, which callers answer with
// 503 rather than treat as absence.
func live[T any](rec *T, exp int64, now time.Time, err error) (*T, error) {
	if errors.Is(err, ErrNotFound) || errors.Is(err, errUndecodable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if now.Unix() >= exp {
		return nil, nil
	}
	return rec, nil
}

// pendingRequest loads the pending request id for a page, answering the page itself (and
// returning nil) when it is missing or the storage fails.
func (s *Server) pendingRequest(w http.ResponseWriter, r *http.Request, id string) *authRequest {
	ar, err := s.loadAuthRequest(r, id)
	if err != nil {
		s.log.Error("load authorization request", "error", err)
		s.renderStorageError(w, err)
		return nil
	}
	if ar == nil {
		s.renderError(w, http.StatusBadRequest, "Request expired", "This sign-in request is unknown or has expired. Start again from your application.")
	}
	return ar
}

// pageSession loads the browser's session for a page, answering a storage fault itself (ok
// false); a browser without a session gets nil and ok.
func (s *Server) pageSession(w http.ResponseWriter, r *http.Request) (*session, bool) {
	sess, err := s.loadSession(r)
	if err != nil {
		s.log.Error("load session", "error", err)
		s.renderStorageError(w, err)
		return nil, false
	}
	return sess, true
}

// handleConsentPage continues a pending authorization: sign-in if needed, then the consent page,
// unless this user already approved this client for these scopes and resource.
func (s *Server) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	reqID := r.URL.Query().Get("req")
	ar := s.pendingRequest(w, r, reqID)
	if ar == nil {
		return
	}
	sess, ok := s.pageSession(w, r)
	if !ok {
		return
	}
	if sess == nil || sess.Sub == "" || s.needsLogin(ar, sess) {
		if ar.Prompt == "none" {
			taken, ok := s.takeForPage(w, r, reqID)
			if !ok {
				return
			}
			if taken != nil {
				s.redirectError(w, r, ar.RedirectURI, ar.State, newOAuthError(http.StatusBadRequest, "login_required", "the user is not signed in"))
				return
			}
		}
		http.Redirect(w, r, s.endpoint("/login?req="+url.QueryEscape(reqID)), http.StatusFound)
		return
	}
	c, err := s.lookupClient(r.Context(), ar.ClientID, remoteIP(r))
	if errors.Is(err, errCIMDBusy) {
		s.renderBusy(w, err)
		return
	}
	if err != nil {
		if errors.Is(err, errUnknownClient) || errors.Is(err, errCIMD) {
			s.renderError(w, http.StatusBadRequest, "Unknown client", "The application is no longer registered.")
			return
		}
		s.log.Error("client lookup", "error", err)
		s.renderStorageError(w, err)
		return
	}
	cr, err := s.db.GetConsent(r.Context(), sess.Sub, c.ID, ar.Resource)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errUndecodable) {
		s.log.Error("load consent", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if err == nil {
		granted := strings.Fields(cr.Scope)
		covered := true
		for _, sc := range strings.Fields(ar.Scope) {
			if !slices.Contains(granted, sc) {
				covered = false
			}
		}
		if covered && ar.Prompt != "consent" {
			s.finishAuthorization(w, r, reqID, sess.Sub)
			return
		}
	}
	if ar.Prompt == "none" {
		taken, ok := s.takeForPage(w, r, reqID)
		if !ok {
			return
		}
		if taken != nil {
			s.redirectError(w, r, ar.RedirectURI, ar.State, newOAuthError(http.StatusBadRequest, "consent_required", "the user has not approved this client"))
			return
		}
	}
	redirectHost := ar.RedirectURI
	if u, err := url.Parse(ar.RedirectURI); err == nil && u.Host != "" {
		redirectHost = u.Scheme + "://" + u.Host
	} else if err == nil {
		redirectHost = u.Scheme + ":"
	}
	user, _ := s.db.GetUser(r.Context(), sess.Sub)
	name := user.Login
	if name == "" {
		name = sess.Sub
	}
	// A user who signed in upstream may not have linked GitHub yet: offer it here, at first use,
	// coming back to this request afterwards.
	linkURL := ""
	if s.githubConfigured() && strings.HasPrefix(sess.Sub, "oidc:") {
		if _, err := s.loadGitHubToken(r.Context(), sess.Sub); errors.Is(err, ErrNotFound) {
			linkURL = s.endpoint("/login/github?link=1&req=" + url.QueryEscape(reqID))
		}
	}
	s.renderPage(w, http.StatusOK, "consent", map[string]any{
		"LinkGitHubURL": linkURL,
		"Title":         "Authorize " + c.displayName(),
		"ClientName":    c.displayName(),
		"ClientID":      c.ID,
		"ClientIDShown": c.Meta.ClientName != "",
		"RedirectHost":  redirectHost,
		"Scopes":        strings.Fields(ar.Scope),
		"Resource":      ar.Resource,
		"User":          name,
		"CSRF":          sess.CSRF,
		"ReqID":         reqID,
		"Action":        s.endpoint("/consent"),
	})
}

// handleConsentPost records the user's decision. It requires the session's CSRF token (403
// otherwise).
func (s *Server) handleConsentPost(w http.ResponseWriter, r *http.Request) {
	if err := parsePageForm(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	sess, ok := s.pageSession(w, r)
	if !ok {
		return
	}
	if err := checkCSRF(r, sess); err != nil {
		s.renderError(w, http.StatusForbidden, "Forbidden", "The form's security token is missing or wrong. Go back and try again.")
		return
	}
	if sess.Sub == "" {
		s.renderError(w, http.StatusForbidden, "Forbidden", "You are not signed in.")
		return
	}
	reqID := r.PostForm.Get("req")
	ar := s.pendingRequest(w, r, reqID)
	if ar == nil {
		return
	}
	if s.needsLogin(ar, sess) {
		http.Redirect(w, r, s.endpoint("/login?req="+url.QueryEscape(reqID)), http.StatusSeeOther)
		return
	}
	switch r.PostForm.Get("action") {
	case "approve":
		cr := consentRecord{Scope: ar.Scope, Resource: ar.Resource, At: s.opts.Now().Unix()}
		if err := s.db.PutConsent(r.Context(), sess.Sub, ar.ClientID, ar.Resource, cr); err != nil {
			s.log.Error("store consent", "error", err)
			s.renderStorageError(w, err)
			return
		}
		s.finishAuthorization(w, r, reqID, sess.Sub)
	case "deny":
		taken, ok := s.takeForPage(w, r, reqID)
		if !ok {
			return
		}
		if taken != nil {
			s.redirectError(w, r, ar.RedirectURI, ar.State, errAccessDenied("the user denied the request"))
			return
		}
		s.renderError(w, http.StatusBadRequest, "Request expired", "This sign-in request was already completed.")
	default:
		s.renderError(w, http.StatusBadRequest, "Invalid request", "Unknown action.")
	}
}

// takeAuthRequest removes a pending request atomically, so it completes at most once.
// It returns nil when the request is gone or expired; the error is a storage fault only.
func (s *Server) takeAuthRequest(r *http.Request, reqID string) (*authRequest, error) {
	ar, err := s.db.TakeAuthRequest(r.Context(), reqID)
	return live(&ar, ar.Exp, s.opts.Now(), err)
}

// takeForPage is takeAuthRequest for a page: a storage fault is answered (and nil returned).
func (s *Server) takeForPage(w http.ResponseWriter, r *http.Request, reqID string) (*authRequest, bool) {
	ar, err := s.takeAuthRequest(r, reqID)
	if err != nil {
		s.log.Error("take authorization request", "error", err)
		s.renderStorageError(w, err)
		return nil, false
	}
	return ar, true
}

// finishAuthorization issues a code for the pending request and redirects with code, state, iss.
func (s *Server) finishAuthorization(w http.ResponseWriter, r *http.Request, reqID, sub string) {
	ar, ok := s.takeForPage(w, r, reqID)
	if !ok {
		return
	}
	if ar == nil {
		s.renderError(w, http.StatusBadRequest, "Request expired", "This sign-in request was already completed or has expired.")
		return
	}
	code, err := s.issueCode(r, ar, sub)
	if err != nil {
		s.log.Error("issue code", "error", err)
		s.redirectError(w, r, ar.RedirectURI, ar.State, errStorage(err))
		return
	}
	s.redirectWith(w, r, ar.RedirectURI, ar.State, url.Values{"code": {code}})
}

// issueCode stores a single-use code (by hash) bound to client, redirect URI, PKCE challenge,
// scope and resource. The grant family it will start is created now, so that a replay racing the
// first redemption can still revoke everything the code yields.
func (s *Server) issueCode(r *http.Request, ar *authRequest, sub string) (string, error) {
	now := s.opts.Now()
	fam := randomToken()
	if err := s.db.CreateFamily(r.Context(), fam, familyRecord{
		ClientID: ar.ClientID, Sub: sub, Exp: now.Add(s.opts.RefreshTokenTTL).Unix(),
	}); err != nil {
		return "", err
	}
	code := randomToken()
	rec := codeRecord{
		ClientID: ar.ClientID, RedirectURI: ar.RedirectURI, RedirectGiven: ar.RedirectGiven,
		Challenge: ar.Challenge, Resource: ar.Resource, Scope: ar.Scope, Sub: sub,
		Exp: now.Add(s.opts.CodeTTL).Unix(), FamilyID: fam,
	}
	if err := s.db.CreateCode(r.Context(), hashSecret(code), rec); err != nil {
		return "", err
	}
	return code, nil
}
