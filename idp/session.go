package idp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Browser sessions: a random id in an HttpOnly, SameSite=Lax cookie (Secure and __Host- prefixed
// when the issuer is https); the store keeps only its hash, the signed-in sub and the session's
// CSRF token. Signing in always starts a new session id (no fixation).
//
// A visitor who is not signed in has no stored session: the login form's CSRF token is stateless.
// The same cookie then holds "a.<expiry>.<nonce>" and the form token is
// HMAC-SHA256(csrfKey, cookie value), so an anonymous GET /login writes nothing to the store.

type session struct {
	key string // hash of the cookie value
	sessionRecord
}

// loadSession returns the browser's session, or nil when it has none (no cookie, unknown,
// unreadable or expired). The error is a storage fault only: the caller answers it
// (renderStorageError), since treating it as "signed out" would send a signed-in user to the
// login page, or refuse their form as forged, whenever the storage is briefly unreachable.
func (s *Server) loadSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(s.cookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 || strings.HasPrefix(c.Value, anonPrefix) {
		return nil, nil
	}
	key := hashSecret(c.Value)
	rec, err := s.db.GetSession(r.Context(), key)
	return live(&session{key: key, sessionRecord: rec}, rec.Exp, s.opts.Now(), err)
}

const anonPrefix = "a."

// loginCSRF returns the CSRF token for the login form: the signed-in session's, or else the
// stateless anonymous token, setting a new anonymous cookie (valid LoginTTL) unless the browser
// already has a valid one. It never writes to the store.
func (s *Server) loginCSRF(w http.ResponseWriter, r *http.Request) (string, error) {
	sess, err := s.loadSession(r)
	if err != nil {
		return "", err
	}
	if sess != nil {
		return sess.CSRF, nil
	}
	if v, ok := s.anonCookie(r); ok {
		return s.anonToken(v), nil
	}
	exp := s.opts.Now().Add(s.opts.LoginTTL).Unix()
	v := anonPrefix + strconv.FormatInt(exp, 10) + "." + randomToken()
	s.setCookie(w, s.cookie, v, s.opts.LoginTTL)
	return s.anonToken(v), nil
}

// anonCookie returns the browser's anonymous cookie value if it is well formed and unexpired.
func (s *Server) anonCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(s.cookie)
	if err != nil || len(c.Value) > 100 || !strings.HasPrefix(c.Value, anonPrefix) {
		return "", false
	}
	expS, nonce, ok := strings.Cut(strings.TrimPrefix(c.Value, anonPrefix), ".")
	exp, err := strconv.ParseInt(expS, 10, 64)
	if !ok || err != nil || nonce == "" || s.opts.Now().Unix() >= exp {
		return "", false
	}
	return c.Value, true
}

func (s *Server) anonToken(cookieValue string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(cookieValue))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkLoginCSRF accepts the login form's csrf_token if it matches the signed-in session's token
// or the HMAC of this browser's anonymous cookie (constant time).
func (s *Server) checkLoginCSRF(r *http.Request) error {
	sess, err := s.loadSession(r)
	if err != nil {
		return err
	}
	if sess != nil {
		return checkCSRF(r, sess)
	}
	v, ok := s.anonCookie(r)
	tok := r.PostForm.Get("csrf_token")
	if !ok || tok == "" || !constantTimeEqual(tok, s.anonToken(v)) {
		return errCSRF
	}
	return nil
}

func (s *Server) newSession(w http.ResponseWriter, ctx context.Context, sub string) (*session, error) {
	id := randomToken()
	ttl := s.opts.SessionTTL
	now := s.opts.Now()
	rec := sessionRecord{Sub: sub, CSRF: randomToken(), Exp: now.Add(ttl).Unix(), AuthTime: now.Unix()}
	key := hashSecret(id)
	if err := s.db.PutSession(ctx, key, rec); err != nil {
		return nil, err
	}
	s.setCookie(w, s.cookie, id, ttl)
	return &session{key: key, sessionRecord: rec}, nil
}

// signIn replaces any current session by a new one for sub. If the sign-in was made for a
// pending authorization request (reqID non-empty), the request records the new session, which is
// what satisfies prompt=login and max_age: an older session never does.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, sub, reqID string) error {
	if old, err := s.loadSession(r); err != nil {
		return err
	} else if old != nil {
		_ = s.db.DeleteSession(r.Context(), old.key)
	}
	sess, err := s.newSession(w, r.Context(), sub)
	if err != nil || reqID == "" {
		return err
	}
	err = s.db.UpdateAuthRequest(r.Context(), reqID, func(ar *authRequest) error {
		ar.LoginSession = sess.key
		return nil
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, errUndecodable) {
		return nil // gone or unreadable: the consent page reports it
	}
	return err
}

// needsLogin reports whether the pending request ar requires a new sign-in although sess is
// signed in: prompt=login, or max_age exceeded, unless sess was created by a sign-in for ar.
func (s *Server) needsLogin(ar *authRequest, sess *session) bool {
	if ar.LoginSession != "" && constantTimeEqual(ar.LoginSession, sess.key) {
		return false
	}
	if ar.ForceLogin {
		return true
	}
	if ar.MaxAge != nil {
		return sess.AuthTime == 0 || s.opts.Now().Unix()-sess.AuthTime > *ar.MaxAge
	}
	return false
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
