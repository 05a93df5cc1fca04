package idp

import (
	"encoding/json"
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
