package idp

import "net/http"

// handleLogout ends the signed-in session (POST with the session's CSRF token), ends the user's
// grants at every client (their refresh tokens stop working, and their access tokens are refused
// at token exchange and introspection, so the gateway stops handing on their GitHub token), and
// returns to the login page. A storage fault leaves the session in place and says so: a user who
// asked to sign out must not believe the grants ended when they did not.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.accountForm(w, r)
	if !ok {
		return
	}
	if err := s.db.RevokeUserFamilies(r.Context(), sess.Sub); err != nil {
		s.log.Error("sign-out: revoking the user's grants failed", "sub", sess.Sub, "error", err)
		s.renderError(w, http.StatusServiceUnavailable, "Sign-out failed", "Your sessions could not be ended. Try again in a moment.")
		return
	}
	_ = s.db.DeleteSession(r.Context(), sess.key)
	s.setCookie(w, s.cookie, "", 0)
	http.Redirect(w, r, s.endpoint("/login"), http.StatusSeeOther)
}
