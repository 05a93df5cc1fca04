package idp

import "net/http"

// handleLogout ends the signed-in session (POST with the session's CSRF token) and returns to
// the login page.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.accountForm(w, r)
	if !ok {
		return
	}
	_ = s.db.DeleteSession(r.Context(), sess.key)
	s.setCookie(w, s.cookie, "", 0)
	http.Redirect(w, r, s.endpoint("/login"), http.StatusSeeOther)
}
