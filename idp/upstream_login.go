package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Sign-in through an upstream OpenID provider: the authorization code flow with PKCE (S256),
// state and nonce.
//
// What go-oidc does: discovery (and the issuer check on the discovery document), the key set
// (JWKS fetch and cache), and the ID token's signature, alg (never "none"), iss, aud and exp.
// What x/oauth2 does: the authorization URL and the code exchange with the PKCE verifier.
// What we add: state bound to this browser and single use, the nonce comparison, at_hash, the
// userinfo sub check, the allow-lists, the stable subject, and storing the upstream refresh token
// (sealed) so that a refresh of ours fails once the upstream stops refreshing.

func (s *Server) oidcStateCookieName() string {
	if s.secure {
		return "__Host-mcpgate_idp_oidcstate"
	}
	return "mcpgate_idp_oidcstate"
}

// handleUpstreamStart redirects to the upstream provider's authorization endpoint (GET
// /login/oidc/{name}?req=<pending authorization>). Discovery happens here: an upstream that is
// down gets a 502 page and nothing is stored.
func (s *Server) handleUpstreamStart(w http.ResponseWriter, r *http.Request) {
	u := s.upstreamByName(r.PathValue("name"))
	if u == nil {
		s.renderError(w, http.StatusNotFound, "Not found", "This sign-in provider is not configured.")
		return
	}
	ls := loginState{ReqID: r.URL.Query().Get("req"), Purpose: "login", Upstream: u.cfg.Name, Exp: s.opts.Now().Add(s.opts.LoginTTL).Unix()}
	forceLogin := false
	if ls.ReqID != "" {
		ar := s.pendingRequest(w, r, ls.ReqID)
		if ar == nil {
			return
		}
		forceLogin = ar.ForceLogin
	}
	if !s.allowLoginStart(w, r) {
		return
	}
	p, _, err := u.load()
	if err != nil {
		s.log.Error("upstream discovery failed", "upstream", u.cfg.Name, "error", err)
		s.renderError(w, http.StatusBadGateway, u.cfg.DisplayName+" is unavailable",
			"The sign-in provider could not be reached. Try again later.")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	ls.Nonce = nonce
	ls.Verifier = s.sealer.seal([]byte(verifier), "oidc-verifier\x00"+hashSecret(state))
	if err := s.db.PutLoginState(r.Context(), hashSecret(state), ls); err != nil {
		s.log.Error("store login state", "error", err)
		s.renderStorageError(w, err)
		return
	}
	s.setCookie(w, s.oidcStateCookieName(), state, s.opts.LoginTTL)
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if forceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.oauth2Config(p).AuthCodeURL(state, opts...), http.StatusFound)
}

// handleUpstreamCallback completes the code flow (GET /oidc/{name}/callback). Every failure is a
// page; nothing is stored (no user, no session) unless the ID token verifies and the user passes
// the allow-lists.
func (s *Server) handleUpstreamCallback(w http.ResponseWriter, r *http.Request) {
	u := s.upstreamByName(r.PathValue("name"))
	if u == nil {
		s.renderError(w, http.StatusNotFound, "Not found", "This sign-in provider is not configured.")
		return
	}
	q := r.URL.Query()
	state, ls, ok := s.callbackState(w, r, s.oidcStateCookieName())
	if !ok {
		return
	}
	// The state must have been issued for this provider: a code from provider A delivered to
	// provider B's callback (mix-up) is refused.
	if ls == nil || ls.Upstream != u.cfg.Name || ls.Nonce == "" {
		s.renderError(w, http.StatusBadRequest, "Invalid sign-in", "This sign-in was already used or has expired. Start again.")
		return
	}
	if q.Get("error") != "" {
		s.renderError(w, http.StatusBadRequest, "Sign-in cancelled", u.cfg.DisplayName+" did not sign you in. Start again.")
		return
	}
	// RFC 9207: when the provider names itself in the response, it must be the one we asked.
	if iss := q.Get("iss"); iss != "" && iss != u.cfg.Issuer {
		s.renderError(w, http.StatusBadRequest, "Invalid sign-in", "The response came from another provider.")
		return
	}
	code := q.Get("code")
	if code == "" {
		s.renderError(w, http.StatusBadRequest, "Invalid sign-in", u.cfg.DisplayName+" sent no authorization code.")
		return
	}
	verifier, err := s.sealer.open(ls.Verifier, "oidc-verifier\x00"+hashSecret(state))
	if err != nil {
		s.renderError(w, http.StatusBadRequest, "Invalid sign-in", "This sign-in cannot be completed. Start again.")
		return
	}
	id, tok, status, msg := s.upstreamVerify(r.Context(), u, code, string(verifier), ls.Nonce)
	if msg != "" {
		s.renderError(w, status, u.cfg.DisplayName+" sign-in failed", msg)
		return
	}
	if !u.allowed(id) {
		s.log.Info("upstream sign-in refused by policy", "upstream", u.cfg.Name)
		s.renderError(w, http.StatusForbidden, "Not allowed",
			"Your "+u.cfg.DisplayName+" account is not allowed to use this service. Ask your administrator for access.")
		return
	}
	sub := oidcSubject(u.cfg.Issuer, id.Subject)
	login := id.Username
	if login == "" {
		login = id.Email
	}
	rec := userRecord{Sub: sub, Login: login, Name: id.Name, Upstream: u.cfg.Name, Groups: id.Groups}
	if id.EmailVerified {
		rec.Email = id.Email
	}
	if err := s.upsertUser(r, rec); err != nil {
		s.log.Error("store user", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if err := s.saveUpstreamToken(r.Context(), sub, tok.RefreshToken); err != nil {
		s.log.Error("store upstream token", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if err := s.signIn(w, r, sub, ls.ReqID); err != nil {
		s.log.Error("create session", "error", err)
		s.renderStorageError(w, err)
		return
	}
	s.log.Info("upstream sign-in", "upstream", u.cfg.Name, "sub", sub)
	http.Redirect(w, r, s.continueURL(ls.ReqID), http.StatusSeeOther)
}

// upstreamVerify exchanges the code and verifies the ID token. On failure msg is the text for
// the user's page and status its HTTP status; the cause is logged without any token.
func (s *Server) upstreamVerify(ctx context.Context, u *upstream, code, verifier, nonce string) (id upstreamIdentity, tok *oauth2.Token, status int, msg string) {
	p, v, err := u.load()
	if err != nil {
		s.log.Error("upstream discovery failed", "upstream", u.cfg.Name, "error", err)
		return id, nil, http.StatusBadGateway, "The sign-in provider could not be reached. Try again later."
	}
	cctx := u.clientCtx(ctx)
	tok, err = u.oauth2Config(p).Exchange(cctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			s.log.Info("upstream code exchange refused", "upstream", u.cfg.Name, "status", re.Response.StatusCode, "error", re.ErrorCode)
			return id, nil, http.StatusBadGateway, "The sign-in provider did not accept the sign-in. Start again."
		}
		s.log.Error("upstream token endpoint failed", "upstream", u.cfg.Name, "error", redactURLError(err))
		return id, nil, http.StatusBadGateway, "The sign-in provider could not be reached. Try again later."
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.log.Info("upstream sent no ID token", "upstream", u.cfg.Name)
		return id, nil, http.StatusBadGateway, "The sign-in provider sent no identity. Start again."
	}
	idt, err := v.Verify(cctx, raw)
	if err != nil {
		s.log.Info("upstream ID token rejected", "upstream", u.cfg.Name, "error", err)
		return id, nil, http.StatusBadGateway, "The identity from the sign-in provider could not be verified. Start again."
	}
	// go-oidc leaves the nonce to us: it binds the ID token to the request this browser started.
	if !constantTimeEqual(idt.Nonce, nonce) {
		s.log.Info("upstream ID token nonce mismatch", "upstream", u.cfg.Name)
		return id, nil, http.StatusBadGateway, "The identity from the sign-in provider could not be verified. Start again."
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			s.log.Info("upstream at_hash mismatch", "upstream", u.cfg.Name)
			return id, nil, http.StatusBadGateway, "The identity from the sign-in provider could not be verified. Start again."
		}
	}
	if idt.Subject == "" {
		return id, nil, http.StatusBadGateway, "The identity from the sign-in provider has no subject."
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return id, nil, http.StatusBadGateway, "The identity from the sign-in provider could not be read."
	}
	// Some providers put email/name/groups only in userinfo. Its answer counts only if its sub is
	// the ID token's (OpenID Connect Core 5.3.2; go-oidc does not compare them).
	if _, has := claims["email"]; !has && p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(cctx, oauth2.StaticTokenSource(tok))
		if err == nil && ui.Subject == idt.Subject {
			extra := map[string]any{}
			if ui.Claims(&extra) == nil {
				for k, val := range extra {
					if _, ok := claims[k]; !ok {
						claims[k] = val
					}
				}
			}
		} else if err != nil {
			s.log.Info("upstream userinfo failed", "upstream", u.cfg.Name, "error", redactURLError(err))
		}
	}
	return u.identityFrom(idt.Subject, claims), tok, 0, ""
}

// redactURLError drops the URL (which may carry a code or token) from a *url.Error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Op + ": " + ue.Err.Error())
	}
	return err
}

// upstreamToken is what we keep of the upstream's tokens, sealed (AAD = sub): only the refresh
// token, used to ask the upstream whether the account still may be refreshed.
type upstreamToken struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) saveUpstreamToken(ctx context.Context, sub, refresh string) error {
	if refresh == "" {
		return s.db.DeleteSealed(ctx, SealedUpstream, sub)
	}
	b, err := json.Marshal(upstreamToken{RefreshToken: refresh})
	if err != nil {
		return err
	}
	return s.db.PutSealed(ctx, SealedUpstream, sub, s.sealer.seal(b, sub))
}

var errUpstreamRevoked = errors.New("idp: upstream refused to refresh the user's session")

// upstreamRefreshTimeout bounds the upstream refresh made during one of our refreshes.
const upstreamRefreshTimeout = 10 * time.Second

// checkUpstream refreshes the upstream token of an upstream user, if we hold one: an upstream
// that refuses (invalid_grant: account disabled, session revoked) makes errUpstreamRevoked; one
// that cannot be reached makes errUpstreamDown. Users without a stored upstream refresh token
// (the provider issued none) pass: their grants live until our own refresh token family ends.
// Concurrent checks for one user share one upstream call (the upstream may rotate its token).
func (s *Server) checkUpstream(ctx context.Context, sub string) error {
	u, _, err := s.upstreamFor(ctx, sub)
	if err != nil || u == nil {
		return err
	}
	_, err = s.ghFlight.DoContext(ctx, "upstream\x00"+sub, func() (any, error) {
		sealed, err := s.db.GetSealed(s.ctx, SealedUpstream, sub)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := s.sealer.open(sealed, sub)
		if err != nil {
			return nil, err
		}
		var ut upstreamToken
		if err := json.Unmarshal(b, &ut); err != nil || ut.RefreshToken == "" {
			return nil, err
		}
		p, _, err := u.load()
		if err != nil {
			return nil, err
		}
		fctx, cancel := context.WithTimeout(u.clientCtx(s.ctx), upstreamRefreshTimeout)
		defer cancel()
		nt, err := u.oauth2Config(p).TokenSource(fctx, &oauth2.Token{RefreshToken: ut.RefreshToken}).Token()
		if err != nil {
			// Only invalid_grant says the user's grant at the provider is gone (RFC 6749 §5.2:
			// the refresh token is invalid, expired or revoked). Anything else, a 429, a 5xx or
			// invalid_client after a secret rotation, is the provider's or the operator's
			// trouble, and must not sign every user out.
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
				// A provider that rotates refresh tokens refuses the old one once another
				// replica on the same storage has used it: if the stored token changed since
				// we read it, that replica's refresh answered for the user, and it succeeded.
				var fault error
				if storedSoon(fctx, func() bool {
					now, err := s.db.GetSealed(fctx, SealedUpstream, sub)
					if err != nil && !errors.Is(err, ErrNotFound) {
						fault = err
					}
					return err == nil && !bytes.Equal(now, sealed)
				}) {
					return nil, nil
				}
				if fault != nil {
					// Could not tell whether another replica refreshed: not a revocation.
					return nil, fault
				}
				// Delete only what was refused: a token a new sign-in stored meanwhile stays.
				_ = s.db.ReplaceSealed(s.ctx, SealedUpstream, sub, sealed, nil)
				return nil, errUpstreamRevoked
			}
			if errors.As(err, &re) && (re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client") {
				s.log.Error("the sign-in provider refused this server's client credentials on refresh; check the upstream client id and secret", "error_code", re.ErrorCode)
			}
			return nil, errUpstreamDown
		}
		if nt.RefreshToken != "" && nt.RefreshToken != ut.RefreshToken {
			// Replace only what we read: a newer token stored meanwhile (another replica's
			// refresh, a new sign-in) is newer than ours and stays.
			next, err := json.Marshal(upstreamToken{RefreshToken: nt.RefreshToken})
			if err != nil {
				return nil, err
			}
			err = s.db.ReplaceSealed(s.ctx, SealedUpstream, sub, sealed, s.sealer.seal(next, sub))
			if errors.Is(err, ErrChanged) {
				return nil, nil
			}
			return nil, err
		}
		return nil, nil
	})
	return err
}

// upstreamTokenClaims returns the claims to add to an access token for sub (TokenClaims of its
// upstream), or nil.
func (s *Server) upstreamTokenClaims(ctx context.Context, sub string) *identityClaims {
	u, rec, _ := s.upstreamFor(ctx, sub) // best effort: a token without these claims is still valid
	if u == nil || len(u.cfg.TokenClaims) == 0 {
		return nil
	}
	ic := &identityClaims{}
	for _, c := range u.cfg.TokenClaims {
		switch c {
		case "email":
			ic.Email = rec.Email
		case "name":
			ic.Name = rec.Name
		case "groups":
			ic.Groups = rec.Groups
		}
	}
	return ic
}

// loginOptions are the ways to sign in, for the login page.
type loginOption struct {
	Name string
	URL  string
}

func (s *Server) upstreamLoginOptions(reqID string) []loginOption {
	out := make([]loginOption, 0, len(s.upstreams))
	for _, u := range s.upstreams {
		l := s.endpoint("/login/oidc/" + u.cfg.Name)
		if reqID != "" {
			l += "?req=" + url.QueryEscape(reqID)
		}
		out = append(out, loginOption{Name: u.cfg.DisplayName, URL: l})
	}
	return out
}

// onlyUpstream returns the login URL when exactly one upstream is configured and neither GitHub
// nor development login is: the login page then goes straight there.
func (s *Server) onlyUpstream(reqID string) string {
	if len(s.upstreams) != 1 || s.opts.DevLogin || (s.githubConfigured() && !s.opts.GitHub.LinkOnly) {
		return ""
	}
	return s.upstreamLoginOptions(reqID)[0].URL
}
