package idp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// oauthError is an RFC 6749 §5.2 error. Description is shown to the client, so it never carries
// internal causes or secrets.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	status      int
	basicAuth   bool // add WWW-Authenticate: Basic (invalid_client via Authorization header)
	retryAfter  int  // seconds for Retry-After on a 429 or 503; 0: 5
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func newOAuthError(status int, code, desc string) *oauthError {
	return &oauthError{Code: code, Description: desc, status: status}
}

func errInvalidRequest(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "invalid_request", desc)
}
func errInvalidClient(desc string) *oauthError {
	return newOAuthError(http.StatusUnauthorized, "invalid_client", desc)
}
func errInvalidGrant(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "invalid_grant", desc)
}
func errUnauthorizedClient(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "unauthorized_client", desc)
}
func errUnsupportedGrantType(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "unsupported_grant_type", desc)
}
func errUnsupportedResponseType(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "unsupported_response_type", desc)
}
func errInvalidScope(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "invalid_scope", desc)
}
func errInvalidTarget(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "invalid_target", desc)
}
func errAccessDenied(desc string) *oauthError {
	return newOAuthError(http.StatusForbidden, "access_denied", desc)
}
func errServer(desc string) *oauthError {
	return newOAuthError(http.StatusInternalServerError, "server_error", desc)
}

// errStorage answers a request whose storage call failed: a fault (ErrStoreFault: the database
// unreachable, say) is 503 temporarily_unavailable with Retry-After, which clients retry; anything
// else is 500 server_error. Neither says more: the cause is in the log.
func errStorage(err error) *oauthError {
	if errors.Is(err, ErrStoreFault) {
		return errTemporarilyUnavailable("the authorization server's storage is unavailable; try again")
	}
	return errServer("storage error")
}

func errTemporarilyUnavailable(desc string) *oauthError {
	return newOAuthError(http.StatusServiceUnavailable, "temporarily_unavailable", desc)
}
func errInvalidRedirectURI(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "invalid_redirect_uri", desc)
}
func errInvalidClientMetadata(desc string) *oauthError {
	return newOAuthError(http.StatusBadRequest, "invalid_client_metadata", desc)
}
func errInvalidToken(desc string) *oauthError {
	return newOAuthError(http.StatusUnauthorized, "invalid_token", desc)
}
func errTooManyRequests(desc string) *oauthError {
	return newOAuthError(http.StatusTooManyRequests, "temporarily_unavailable", desc)
}

// writeJSON writes v with no-store caching (every JSON answer of this server may carry a secret).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.basicAuth {
		w.Header().Set("WWW-Authenticate", `Basic realm="mcpgate-idp"`)
	}
	if e.status == http.StatusServiceUnavailable || e.status == http.StatusTooManyRequests {
		ra := e.retryAfter
		if ra <= 0 {
			ra = 5
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	writeJSON(w, e.status, e)
}

// writeJSONNoCacheOverride writes v as JSON with 200, keeping the caller's headers (public
// documents that may be cached).
func writeJSONNoCacheOverride(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
