package idp

import (
	"errors"
	"net/http"
	"strings"
)

// handleUserinfo returns the signed-in user's claims for a valid access token issued here: sub,
// preferred_username (the GitHub login or development username), name (the GitHub profile name if
// set; for a development user the username) and github_linked.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	tok := bearerToken(r)
	claims, err := s.verifyAccessToken(r.Context(), tok)
	if errors.Is(err, errStoreFault) {
		s.log.Error("userinfo: store unavailable", "error", err)
		writeOAuthError(w, errTemporarilyUnavailable("the token store is unavailable; try again"))
		return
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, errInvalidToken("the access token is invalid"))
		return
	}
	u, err := s.db.GetUser(r.Context(), claims.Subject)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("load user", "error", err)
		writeOAuthError(w, errStorage(err))
		return
	}
	out := map[string]any{"sub": claims.Subject}
	if u.Login != "" {
		out["preferred_username"] = u.Login
	}
	switch {
	case u.Name != "":
		out["name"] = u.Name
	case strings.HasPrefix(claims.Subject, "dev:") && u.Login != "":
		out["name"] = u.Login // a development user's only name is the username it signed in with
	}
	if u.Email != "" {
		out["email"] = u.Email
		out["email_verified"] = true
	}
	if len(u.Groups) > 0 {
		out["groups"] = u.Groups
	}
	_, gerr := s.loadGitHubToken(r.Context(), claims.Subject)
	out["github_linked"] = gerr == nil
	writeJSON(w, http.StatusOK, out)
}
