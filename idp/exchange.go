package idp

import (
	"errors"
	"net/http"
	"slices"
	"strings"
)

// grantTokenExchange is RFC 8693 for the gateway: a configured confidential exchange client
// presents a user's access token issued here for a resource it serves and receives that user's
// GitHub token. Every other client gets unauthorized_client.
func (s *Server) grantTokenExchange(r *http.Request, c *client) (map[string]any, *oauthError) {
	if c.exchange == nil {
		return nil, errUnauthorizedClient("this client may not use token exchange")
	}
	f := r.PostForm
	subject := f.Get("subject_token")
	if subject == "" {
		return nil, errInvalidRequest("subject_token is required")
	}
	if f.Get("subject_token_type") != tokenTypeAccessToken {
		return nil, errInvalidRequest("subject_token_type must be " + tokenTypeAccessToken)
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != tokenTypeAccessToken {
		return nil, errInvalidRequest("requested_token_type must be " + tokenTypeAccessToken)
	}
	if f.Has("actor_token") {
		return nil, errInvalidRequest("actor_token is not supported")
	}
	aud := f.Get("audience")
	if aud == "" {
		aud = f.Get("resource")
	} else if res := f.Get("resource"); res != "" && strings.TrimRight(res, "/") != strings.TrimRight(aud, "/") {
		return nil, errInvalidTarget("audience and resource differ")
	}
	if aud != "" && !strings.EqualFold(strings.TrimRight(aud, "/"), s.opts.GitHub.APIURL) {
		return nil, errInvalidTarget("the only available audience is the GitHub API")
	}
	claims, err := s.verifyAccessToken(r.Context(), subject)
	if errors.Is(err, errStoreFault) {
		s.log.Error("token exchange: store unavailable", "error", err)
		return nil, errTemporarilyUnavailable("the token store is unavailable; try again")
	}
	if err != nil {
		return nil, errInvalidRequest("subject_token is invalid, expired or revoked")
	}
	// The subject token must have been issued for a resource this client serves (Audiences is
	// required, see ExchangeClient): otherwise a token a user gave to any other service could be
	// traded for the user's GitHub token. The error is invalid_request, not invalid_target: RFC
	// 8693 §2.2.2 keeps invalid_target for a requested target (the audience/resource parameters,
	// here the GitHub API, which is fine) and requires invalid_request when the subject_token is
	// "unacceptable based on policy".
	if !c.exchange.serves(claims.Audience) {
		return nil, errInvalidRequest("subject_token was issued for another audience")
	}
	if !slices.Contains([]string{"github:", "dev:", "oidc:"}, claims.Subject[:strings.IndexByte(claims.Subject, ':')+1]) {
		return nil, errInvalidRequest("subject_token has no user")
	}
	gt, err := s.githubTokenFor(r.Context(), claims.Subject)
	switch {
	case errors.Is(err, errNoGitHubToken):
		return nil, errInvalidTarget("the user has no usable linked GitHub token; link GitHub at " + s.endpoint("/account"))
	case errors.Is(err, errGitHubUnavailable):
		return nil, errTemporarilyUnavailable("GitHub is unavailable; try again")
	case errors.Is(err, errDecrypt):
		s.log.Error("stored GitHub token does not decrypt (wrong encryption key?)", "sub", claims.Subject)
		return nil, errServer("cannot read the user's GitHub token")
	case err != nil:
		// Storage faults are transient for the gateway: 503 with Retry-After.
		s.log.Error("load GitHub token", "sub", claims.Subject, "error", err)
		return nil, errTemporarilyUnavailable("the token store is unavailable; try again")
	}
	resp := map[string]any{
		"access_token":      gt.AccessToken,
		"issued_token_type": tokenTypeAccessToken,
		"token_type":        "Bearer",
	}
	if !gt.Expiry.IsZero() {
		if secs := int64(gt.Expiry.Sub(s.opts.Now()).Seconds()); secs > 0 {
			resp["expires_in"] = secs
		}
	}
	s.log.Debug("token exchanged", "client_id", c.ID, "sub", claims.Subject)
	return resp, nil
}

// serves reports whether one of the token audiences aud is one of the client's Audiences, both
// compared in canonical form.
func (c *ExchangeClient) serves(aud []string) bool {
	for _, a := range c.Audiences {
		ca, err := canonicalResource(a)
		if err != nil {
			continue
		}
		for _, ta := range aud {
			if ct, err := canonicalResource(ta); err == nil && ct == ca {
				return true
			}
		}
	}
	return false
}
