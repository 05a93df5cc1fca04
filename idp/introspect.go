package idp

import (
	"errors"
	"net/http"
)

// handleIntrospect is RFC 7662 for confidential clients. Exchange clients (the gateway) may
// introspect any token; a registered confidential client only its own; anything else is
// {"active": false}.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	if c.public() {
		writeOAuthError(w, errInvalidClient("introspection requires a confidential client"))
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeOAuthError(w, errInvalidRequest("token is required"))
		return
	}
	ctx := r.Context()
	inactive := map[string]any{"active": false}
	maySee := func(owner string) bool { return c.exchange != nil || owner == c.ID }
	now := s.opts.Now()
	rec, err := s.db.GetRefresh(ctx, hashSecret(tok))
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errUndecodable) {
		// Not knowing is not "inactive": a resource server told so would drop a good token.
		s.log.Error("introspection: store unavailable", "error", err)
		writeOAuthError(w, errStorage(err))
		return
	}
	if err == nil {
		revoked, err := s.familyRevoked(ctx, rec.FamilyID)
		if err != nil {
			s.log.Error("introspection: store unavailable", "error", err)
			writeOAuthError(w, errStorage(err))
			return
		}
		if revoked || rec.RotatedAt != 0 || now.Unix() >= rec.Exp || !maySee(rec.ClientID) {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"active": true, "token_type": "refresh_token", "client_id": rec.ClientID, "sub": rec.Sub,
			"scope": rec.Scope, "exp": rec.Exp, "iss": s.opts.Issuer, "aud": rec.Resource,
		})
		return
	}
	claims, err := s.verifyAccessToken(ctx, tok)
	if errors.Is(err, errStoreFault) {
		s.log.Error("introspection: store unavailable", "error", err)
		writeOAuthError(w, errTemporarilyUnavailable("the token store is unavailable; try again"))
		return
	}
	if err != nil || !maySee(claims.ClientID) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	out := map[string]any{
		"active": true, "token_type": "Bearer", "client_id": claims.ClientID, "sub": claims.Subject,
		"scope": claims.Scope, "iss": claims.Issuer, "aud": claims.Audience, "jti": claims.ID,
	}
	if claims.ExpiresAt != nil {
		out["exp"] = claims.ExpiresAt.Unix()
	}
	if claims.IssuedAt != nil {
		out["iat"] = claims.IssuedAt.Unix()
	}
	writeJSON(w, http.StatusOK, out)
}
