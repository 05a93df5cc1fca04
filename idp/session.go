package idp

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Browser sessions: a random id in an HttpOnly, SameSite=Lax cookie (Secure and __Host- prefixed
// when the issuer is https); the store keeps only its hash, the signed-in sub and the session's
// CSRF token. Signing in always starts a new session id (no fixation).

type session struct {
	key string // hash of the cookie value
	sessionRecord
}

func (s *Server) loadSession(r *http.Request) *session {
	c, err := r.Cookie(s.cookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil
	}
	key := hashSecret(c.Value)
	var rec sessionRecord
	if err := s.getJSON(r.Context(), bucketSessions, key, &rec); err != nil {
		return nil
	}
	if s.opts.Now().Unix() >= rec.Exp {
		return nil
	}
	return &session{key: key, sessionRecord: rec}
}

// ensureSession returns the current session or creates an anonymous one (for the CSRF token of
// the login form).
func (s *Server) ensureSession(w http.ResponseWriter, r *http.Request) (*session, error) {
	if sess := s.loadSession(r); sess != nil {
		return sess, nil
	}
	return s.newSession(w, r.Context(), "")
}

func (s *Server) newSession(w http.ResponseWriter, ctx context.Context, sub string) (*session, error) {
	id := randomToken()
	// Anonymous sessions (only a CSRF token for the login form) live as long as a login attempt.
	ttl := s.opts.SessionTTL
	if sub == "" {
		ttl = s.opts.LoginTTL
	}
	rec := sessionRecord{Sub: sub, CSRF: randomToken(), Exp: s.opts.Now().Add(ttl).Unix()}
	key := hashSecret(id)
	if err := s.putJSON(ctx, bucketSessions, key, rec); err != nil {
		return nil, err
	}
	s.setCookie(w, s.cookie, id, ttl)
	return &session{key: key, sessionRecord: rec}, nil
}

// signIn replaces any current session by a new one for sub.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, sub string) error {
	if old := s.loadSession(r); old != nil {
		_ = s.store.Delete(r.Context(), bucketSessions, old.key)
	}
	_, err := s.newSession(w, r.Context(), sub)
	return err
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   int(ttl / time.Second),
	}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

var errCSRF = errors.New("idp: CSRF token missing or wrong")

// checkCSRF verifies the form's csrf_token against the session's token in constant time.
func checkCSRF(r *http.Request, sess *session) error {
	if sess == nil {
		return errCSRF
	}
	tok := r.PostForm.Get("csrf_token")
	if tok == "" || !constantTimeEqual(tok, sess.CSRF) {
		return errCSRF
	}
	return nil
}

func (s *Server) stateCookieName() string {
	if s.secure {
		return "__Host-mcpgate_idp_ghstate"
	}
	return "mcpgate_idp_ghstate"
}

// parsePageForm reads a small urlencoded form from a browser POST.
func parsePageForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	return r.ParseForm()
}
