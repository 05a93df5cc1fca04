package idp

import (
	"encoding/json"
	"errors"
	"net/http"
)

// handleRevoke is RFC 7009. The client authenticates (public clients by client_id). A refresh
// token revokes its whole family; an access token is revoked by jti. Unknown tokens, garbage and
// other clients' tokens get 200 with no effect.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeOAuthError(w, errInvalidRequest("token is required"))
		return
	}
	ctx := r.Context()
	var rec refreshRecord
	if err := s.getJSON(ctx, bucketRefresh, hashSecret(tok), &rec); err == nil {
		if rec.ClientID == c.ID {
			if err := s.revokeFamily(ctx, rec.FamilyID); err != nil {
				s.log.Error("revoke family", "error", err)
				writeOAuthError(w, errServer("storage error"))
				return
			}
			s.log.Info("refresh token revoked", "client_id", c.ID)
		}
	} else if claims, err := s.verifyAccessToken(ctx, tok); err == nil && claims.ClientID == c.ID {
		err := s.store.Update(ctx, bucketAccess, claims.ID, func(old []byte) ([]byte, error) {
			if old == nil {
				return nil, nil
			}
			var a accessRecord
			if err := json.Unmarshal(old, &a); err != nil {
				return nil, err
			}
			a.Revoked = true
			return json.Marshal(a)
		})
		if err != nil {
			s.log.Error("revoke access token", "error", err)
			writeOAuthError(w, errServer("storage error"))
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

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
	var rec refreshRecord
	if err := s.getJSON(ctx, bucketRefresh, hashSecret(tok), &rec); err == nil {
		revoked, _ := s.familyRevoked(ctx, rec.FamilyID)
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

// handleUserinfo returns the signed-in user's claims for a valid access token issued here.
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
	var u userRecord
	if err := s.getJSON(r.Context(), bucketUsers, claims.Subject, &u); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("load user", "error", err)
		writeOAuthError(w, errServer("storage error"))
		return
	}
	out := map[string]any{"sub": claims.Subject}
	if u.Login != "" {
		out["preferred_username"] = u.Login
	}
	if u.Name != "" {
		out["name"] = u.Name
	}
	_, gerr := s.loadGitHubToken(r.Context(), claims.Subject)
	out["github_linked"] = gerr == nil
	writeJSON(w, http.StatusOK, out)
}
