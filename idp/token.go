package idp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// handleToken is the token endpoint: authorization_code, refresh_token and token exchange.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	var resp map[string]any
	var oerr *oauthError
	switch gt := r.PostForm.Get("grant_type"); gt {
	case grantAuthorizationCode:
		resp, oerr = s.grantAuthorizationCode(r, c)
	case grantRefreshToken:
		resp, oerr = s.grantRefresh(r, c)
	case grantTokenExchange:
		resp, oerr = s.grantTokenExchange(r, c)
	case grantJWTBearer:
		if len(s.idjagTrusts) == 0 {
			oerr = errUnsupportedGrantType("unsupported grant_type")
			break
		}
		resp, oerr = s.grantIDJAG(r, c)
	case "":
		oerr = errInvalidRequest("grant_type is required")
	default:
		oerr = errUnsupportedGrantType("unsupported grant_type")
	}
	if oerr != nil {
		if oerr.status >= 500 {
			s.log.Error("token endpoint fault", "client_id", c.ID, "error", oerr.Code)
		} else {
			s.log.Debug("token request refused", "client_id", c.ID, "error", oerr.Code, "description", oerr.Description)
		}
		writeOAuthError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseTokenForm reads a POSTed urlencoded body (max 64 KiB). Parameters repeated (RFC 6749 §3.2)
// are refused with invalid_request. Query parameters are ignored.
// clientRequest parses a token, revocation or introspection request and authenticates its
// client; on failure it has written the RFC 6749 §5.2 error and returns false.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request) (*client, bool) {
	if oerr := parseTokenForm(w, r); oerr != nil {
		writeOAuthError(w, oerr)
		return nil, false
	}
	c, oerr := s.authenticateClient(r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, false
	}
	return c, true
}

func parseTokenForm(w http.ResponseWriter, r *http.Request) *oauthError {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return errInvalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return errInvalidRequest("the request body cannot be parsed")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 && k != "resource" {
			return errInvalidRequest("parameter " + quoteShort(k) + " is repeated")
		}
	}
	return nil
}

func (s *Server) grantAuthorizationCode(r *http.Request, c *client) (map[string]any, *oauthError) {
	if c.exchange != nil {
		return nil, errUnauthorizedClient("this client may only use token exchange")
	}
	ctx := r.Context()
	f := r.PostForm
	code := f.Get("code")
	if code == "" {
		return nil, errInvalidRequest("code is required")
	}
	// The grant's family must not have been revoked before this redemption (client deleted,
	// grant revoked). Check it before consuming the code, not after: after, a concurrent replay
	// of the same code revokes the family in between and every redemption fails, where exactly
	// one must win. The winner's tokens still die with the replay's revocation,
	// since every later use of a token checks its family.
	familyExp := int64(0)
	pre, err := s.db.GetCode(ctx, hashSecret(code))
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errUndecodable) {
		s.log.Error("read authorization code", "error", err)
		return nil, errStorage(err) // a fault: the code is untouched, the client may retry
	}
	if err == nil && !pre.Used {
		fam, err := s.db.GetFamily(ctx, pre.FamilyID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.log.Error("read grant family", "error", err)
			return nil, errStorage(err)
		}
		if err != nil || fam.Revoked {
			return nil, errInvalidGrant("the authorization grant was revoked")
		}
		familyExp = fam.Exp
	}

	// Consume the code atomically: exactly one of concurrent redemptions sees it unused. The used
	// record is kept until the access tokens this redemption issues have expired: a replay after
	// the code's own expiry must still be "reused" and revoke the grant, not "invalid".
	now := s.opts.Now()
	rec, err := s.db.RedeemCode(ctx, hashSecret(code), now.Add(max(s.opts.AccessTokenTTL, s.opts.CodeTTL)+time.Second))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errInvalidGrant("the authorization code is invalid")
	case errors.Is(err, ErrAlreadyUsed):
		// A replayed code: revoke everything the first redemption issued (RFC 6749 §4.1.2).
		if err := s.db.RevokeFamily(ctx, rec.FamilyID); err != nil {
			s.log.Error("revoke family after code reuse", "error", err)
		}
		s.log.Info("authorization code reused; grant revoked", "client_id", rec.ClientID)
		return nil, errInvalidGrant("the authorization code was already used")
	case err != nil:
		s.log.Error("redeem code", "error", err)
		return nil, errStorage(err)
	}
	if now.Unix() >= rec.Exp {
		return nil, errInvalidGrant("the authorization code has expired")
	}
	if rec.ClientID != c.ID {
		return nil, errInvalidGrant("the authorization code was issued to another client")
	}
	ru := f.Get("redirect_uri")
	if (rec.RedirectGiven || ru != "") && ru != rec.RedirectURI {
		return nil, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	if oerr := checkPKCE(rec.Challenge, f.Get("code_verifier"), f.Has("code_verifier")); oerr != nil {
		return nil, oerr
	}
	if len(f["resource"]) > 1 {
		return nil, errInvalidTarget("only one resource is supported per request")
	}
	if rs := f.Get("resource"); rs != "" {
		if cr, err := canonicalResource(rs); err != nil || cr != rec.Resource {
			return nil, errInvalidTarget("resource does not match the authorization request")
		}
	}
	if rec.FamilyID != pre.FamilyID {
		// Not the record read above (it changed in between): refuse rather than guess.
		return nil, errInvalidGrant("the authorization code is invalid")
	}
	return s.issueTokens(ctx, c, rec.Sub, rec.Scope, rec.Scope, rec.Resource, rec.FamilyID, familyExp, "")
}

// checkPKCE verifies an RFC 7636 S256 code_verifier: 43-128 characters of [A-Za-z0-9-._~], and
// BASE64URL(SHA256(verifier)) equal to the challenge (constant time). A verifier sent for a code
// without a challenge is also refused.
func checkPKCE(challenge, verifier string, sent bool) *oauthError {
	if challenge == "" {
		if sent {
			return errInvalidGrant("code_verifier sent but no code_challenge was given")
		}
		return nil
	}
	if verifier == "" || !pkceRe.MatchString(verifier) {
		return errInvalidGrant("code_verifier is missing or malformed")
	}
	sum := sha256.Sum256([]byte(verifier))
	if !constantTimeEqual(base64.RawURLEncoding.EncodeToString(sum[:]), challenge) {
		return errInvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// issueTokens mints an access token and, for clients registered for it, a refresh token in the
// grant family. The refresh token expires with the family (absolute lifetime). rt is the refresh
// token to hand out (a rotation's successor, chosen when the old token was rotated) or "" for a
// new random one; its record is created only if absent, so handing the same successor out again
// within the grace window never resets its rotation state. scope is the access token's (possibly
// narrowed) scope; grantScope is the whole grant's, which the refresh token keeps (RFC 6749 §6).
func (s *Server) issueTokens(ctx context.Context, c *client, sub, scope, grantScope, resource, familyID string, familyExp int64, rt string) (map[string]any, *oauthError) {
	now := s.opts.Now()
	at, jti, exp, err := s.mintAccessTokenWith(sub, c.ID, scope, resource, now, s.upstreamTokenClaims(ctx, sub))
	if err != nil {
		s.log.Error("sign access token", "error", err)
		return nil, errServer("cannot sign token")
	}
	if err := s.db.PutAccess(ctx, jti, accessRecord{FamilyID: familyID, ClientID: c.ID, Sub: sub, Exp: exp.Unix()}); err != nil {
		s.log.Error("store access token", "error", err)
		return nil, errStorage(err)
	}
	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int64(s.opts.AccessTokenTTL.Seconds()),
		"scope":        scope,
	}
	if slices.Contains(c.Meta.GrantTypes, grantRefreshToken) && now.Unix() < familyExp {
		if rt == "" {
			rt = randomToken()
		}
		err := s.db.CreateRefresh(ctx, hashSecret(rt), refreshRecord{
			FamilyID: familyID, ClientID: c.ID, Sub: sub, Scope: grantScope, Resource: resource, Exp: familyExp,
		})
		if err != nil {
			s.log.Error("store refresh token", "error", err)
			return nil, errStorage(err)
		}
		resp["refresh_token"] = rt
	}
	return resp, nil
}

// grantRefresh rotates a refresh token. Rotation picks the successor refresh token atomically and
// keeps it in the rotated record, sealed with a key derived from the old token (see
// sealSuccessor). A rotated token presented again within RefreshGrace (a client refreshing
// concurrently) gets a fresh access token and that SAME successor, never a new independent refresh
// token, so the family keeps exactly one live refresh token and a stolen token cannot start a
// branch of its own: whoever uses the shared successor second, after the window, triggers reuse
// detection. Later reuse of a rotated token revokes the whole family.
func (s *Server) grantRefresh(r *http.Request, c *client) (map[string]any, *oauthError) {
	if c.exchange != nil || !slices.Contains(c.Meta.GrantTypes, grantRefreshToken) {
		return nil, errUnauthorizedClient("this client may not use refresh tokens")
	}
	ctx := r.Context()
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		return nil, errInvalidRequest("refresh_token is required")
	}
	// Everything that can refuse the request without the token being at fault runs before the
	// token is spent: a client whose refresh fails for a reason of ours (the upstream provider
	// down, a bad scope or resource parameter) keeps a token it can present again, instead of a
	// rotated one whose reuse after the grace window would revoke the whole family.
	scope, checked := "", false
	pre, err := s.db.GetRefresh(ctx, hashSecret(rt))
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errUndecodable) {
		// A fault before the token is spent: the client keeps it and retries.
		s.log.Error("read refresh token", "error", err)
		return nil, errStorage(err)
	}
	if err == nil && pre.ClientID == c.ID {
		var oerr *oauthError
		if scope, oerr = refreshScope(r, pre.Scope, pre.Resource); oerr != nil {
			return nil, oerr
		}
		checked = true
		if pre.RotatedAt == 0 {
			if oerr := s.refreshUpstream(ctx, c, pre); oerr != nil {
				return nil, oerr
			}
		}
	}
	now := s.opts.Now()
	successor := ""
	rec, outcome, err := s.db.RotateRefresh(ctx, hashSecret(rt), c.ID, now, s.opts.RefreshGrace, func(familyID string) ([]byte, error) {
		successor = randomToken()
		return sealSuccessor(rt, successor, familyID)
	})
	if err == nil && outcome == RefreshGrace && len(rec.Successor) > 0 {
		successor, err = openSuccessor(rt, rec.Successor, rec.FamilyID)
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrWrongClient):
		return nil, errInvalidGrant("the refresh token is invalid")
	case errors.Is(err, ErrExpired):
		return nil, errInvalidGrant("the refresh token has expired")
	case errors.Is(err, ErrAlreadyUsed):
		if err := s.db.RevokeFamily(ctx, rec.FamilyID); err != nil {
			s.log.Error("revoke family after refresh reuse", "error", err)
		}
		s.log.Info("rotated refresh token reused; family revoked", "client_id", c.ID)
		return nil, errInvalidGrant("the refresh token was already used")
	case err != nil:
		s.log.Error("rotate refresh token", "error", err)
		return nil, errStorage(err)
	}
	revoked, err := s.familyRevoked(ctx, rec.FamilyID)
	if err != nil {
		// The token is rotated but nothing was handed out: the client's retry with the same
		// token falls in the grace window and gets the successor.
		s.log.Error("read grant family", "error", err)
		return nil, errStorage(err)
	}
	if revoked {
		return nil, errInvalidGrant("the refresh token was revoked")
	}
	if !checked {
		// The record was not readable before the rotation (it is now): check the parameters.
		var oerr *oauthError
		if scope, oerr = refreshScope(r, rec.Scope, rec.Resource); oerr != nil {
			return nil, oerr
		}
	}
	if outcome == RefreshGrace && successor == "" {
		// A record rotated before successors were kept: hand out no refresh token at all rather
		// than a second live one.
		return s.issueTokens(ctx, c, rec.Sub, scope, rec.Scope, rec.Resource, rec.FamilyID, 0, "")
	}
	// A narrowed scope applies to this access token only; the refresh token keeps the original
	// grant (RFC 6749 §6), so later refreshes may ask for any part of it again.
	return s.issueTokens(ctx, c, rec.Sub, scope, rec.Scope, rec.Resource, rec.FamilyID, rec.Exp, successor)
}

// refreshScope checks a refresh request's scope and resource parameters against the grant and
// returns the scope of the access token to issue: the grant's, or the narrower one asked for.
func refreshScope(r *http.Request, granted, resource string) (string, *oauthError) {
	scope := granted
	if req := r.PostForm.Get("scope"); req != "" {
		have := strings.Fields(granted)
		var out []string
		for _, sc := range strings.Fields(req) {
			if !slices.Contains(have, sc) {
				return "", errInvalidScope("scope exceeds the original grant")
			}
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
		scope = strings.Join(out, " ")
	}
	if rs := r.PostForm.Get("resource"); rs != "" || len(r.PostForm["resource"]) > 1 {
		if cr, err := canonicalResource(rs); err != nil || cr != resource || len(r.PostForm["resource"]) > 1 {
			return "", errInvalidTarget("resource does not match the original grant")
		}
	}
	return scope, nil
}

// refreshUpstream lets a user who signed in upstream keep refreshing only while the upstream
// does: a disabled account (the upstream refuses its refresh token) ends the grant; an upstream
// that cannot be reached is a temporary refusal that spends nothing.
func (s *Server) refreshUpstream(ctx context.Context, c *client, rec refreshRecord) *oauthError {
	switch err := s.checkUpstream(ctx, rec.Sub); {
	case errors.Is(err, errUpstreamRevoked):
		if err := s.db.RevokeFamily(ctx, rec.FamilyID); err != nil {
			s.log.Error("revoke family after upstream refusal", "error", err)
		}
		s.log.Info("upstream refused refresh; grant revoked", "client_id", c.ID, "sub", rec.Sub)
		return errInvalidGrant("the sign-in provider no longer accepts this user; sign in again")
	case err != nil:
		s.log.Error("upstream refresh check failed", "sub", rec.Sub, "error", err)
		return errTemporarilyUnavailable("the sign-in provider is unavailable; try again")
	}
	return nil
}

// sealSuccessor encrypts a rotation's successor refresh token with AES-256-GCM under a key derived
// from the rotated (old) token itself, with the family id as associated data. The store holds only
// SHA-256(old token) with a different prefix, so the sealed successor is readable only by someone
// presenting the old token, which is exactly who is entitled to it during the grace window.
func sealSuccessor(oldToken, successor, familyID string) ([]byte, error) {
	sl, err := newSealer(successorKey(oldToken))
	if err != nil {
		return nil, err
	}
	return sl.seal([]byte(successor), familyID), nil
}

func openSuccessor(oldToken string, sealed []byte, familyID string) (string, error) {
	sl, err := newSealer(successorKey(oldToken))
	if err != nil {
		return "", err
	}
	b, err := sl.open(sealed, familyID)
	return string(b), err
}

func successorKey(oldToken string) []byte {
	k := sha256.Sum256([]byte("mcpgate-idp refresh successor\x00" + oldToken))
	return k[:]
}
