package idp

import (
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
	rec, err := s.db.GetRefresh(ctx, hashSecret(tok))
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errUndecodable) {
		// Not knowing whether it is a refresh token is not "nothing to revoke" (RFC 7009 §2.2.1:
		// 503 lets the client retry).
		s.log.Error("revoke: read refresh token", "error", err)
		writeOAuthError(w, errStorage(err))
		return
	}
	if err == nil {
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
