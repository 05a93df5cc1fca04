package idp

import (
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
	if rec, err := s.db.GetRefresh(ctx, hashSecret(tok)); err == nil {
		if rec.ClientID == c.ID {
			if err := s.db.RevokeFamily(ctx, rec.FamilyID); err != nil {
				s.log.Error("revoke family", "error", err)
				writeOAuthError(w, errStorage(err))
				return
			}
			s.log.Info("refresh token revoked", "client_id", c.ID)
		}
	} else if claims, err := s.verifyAccessToken(ctx, tok); err == nil && claims.ClientID == c.ID {
		if err := s.db.RevokeAccess(ctx, claims.ID); err != nil {
			s.log.Error("revoke access token", "error", err)
			writeOAuthError(w, errStorage(err))
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
