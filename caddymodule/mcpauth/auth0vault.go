package mcpauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

func init() {
	caddy.RegisterModule(Auth0TokenVault{})
}

// Auth0 Token Vault identifiers (the access-token variant of its federated connection token
// exchange).
const (
	grantTypeAuth0Federated  = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
	tokenTypeAuth0Federated  = "http://auth0.com/oauth/token-type/federated-connection-access-token"
	auth0ErrNoFederatedToken = "federated_connection_refresh_token_not_found"
	auth0ErrTokensetNotFound = "tokenset_not_found"
	auth0ErrAccessDenied     = "access_denied"
	auth0ErrInvalidGrant     = "invalid_grant"
	auth0ErrInvalidClient    = "invalid_client"
	auth0ErrUnauthorizedClnt = "unauthorized_client"
)

// Auth0TokenVault is the upstream token source http.mcp_auth.token_sources.auth0_token_vault:
// Auth0 Token Vault's access token exchange. The gateway sends the user's verified Auth0
// access token as subject_token to the tenant's /oauth/token with the
// federated-connection-access-token grant and its own client credentials (those of the
// "Custom API Client" that Auth0 pairs with the API whose tokens the gateway accepts), and
// receives the user's token for the connection (GitHub). The returned expires_in is honoured:
// the gateway's cache never serves the token past it.
//
// Auth0's answers map as follows: 401 federated_connection_refresh_token_not_found (or
// tokenset_not_found, access_denied) means the user has not connected GitHub through Token
// Vault (ErrNoUpstreamToken, a 403 telling the user to link the account); invalid_grant means
// Auth0 refused the user's access token (ErrSubjectTokenRejected, a 401 so the client signs in
// again); invalid_client, unauthorized_client, 429, 5xx and transport failures mean the source
// is unavailable (a 503; logged as a fault).
//
// Only access tokens from Issuer are sent to the tenant.
type Auth0TokenVault struct {
	auth0Client
}

// CaddyModule returns the Caddy module information.
func (Auth0TokenVault) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.mcp_auth.token_sources.auth0_token_vault",
		New: func() caddy.Module { return new(Auth0TokenVault) },
	}
}

// Provision resolves placeholders and sets defaults.
func (v *Auth0TokenVault) Provision(ctx caddy.Context) error {
	return v.provision(ctx, v, "auth0_token_vault")
}

// Validate checks the configuration without revealing the secret.
func (v *Auth0TokenVault) Validate() error { return v.validate("auth0_token_vault") }

// Cleanup closes idle connections.
func (v *Auth0TokenVault) Cleanup() error {
	v.cleanup()
	return nil
}

// auth0VaultResponse is the Token Vault success body.
type auth0VaultResponse struct {
	AccessToken     string `json:"access_token"`
	ExpiresIn       int64  `json:"expires_in"`
	IssuedTokenType string `json:"issued_token_type"`
}

// UpstreamToken implements TokenSource.
func (v *Auth0TokenVault) UpstreamToken(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (Token, error) {
	if claims == nil || claims.Issuer != v.Issuer {
		return Token{}, ErrNoUpstreamToken
	}
	form := url.Values{
		"grant_type":           {grantTypeAuth0Federated},
		"subject_token":        {subjectToken},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAuth0Federated},
		"connection":           {v.Connection},
		"client_id":            {v.ClientID},
		"client_secret":        {v.secret},
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(v.Timeout))
	defer cancel()
	req, err := newFormRequest(ctx, v.endpoint("/oauth/token"), form)
	if err != nil {
		return Token{}, err
	}
	resp, err := v.out.do(req, "Auth0 token endpoint")
	if err != nil {
		return Token{}, err
	}
	if resp.status == http.StatusOK {
		var tr auth0VaultResponse
		if err := json.Unmarshal(resp.body, &tr); err != nil || tr.AccessToken == "" {
			return Token{}, fmt.Errorf("%w: Auth0 token endpoint returned 200 without an access_token", ErrSourceUnavailable)
		}
		if tr.IssuedTokenType != "" && tr.IssuedTokenType != tokenTypeAuth0Federated {
			return Token{}, fmt.Errorf("%w: Auth0 token endpoint issued an unexpected token type", ErrSourceUnavailable)
		}
		tok := Token{Value: tr.AccessToken}
		if tr.ExpiresIn > 0 {
			tok.Expiry = v.out.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
		}
		return tok, nil
	}
	code := oauthErrorCode(resp.body)
	switch {
	case code == auth0ErrInvalidClient || code == auth0ErrUnauthorizedClnt:
		return Token{}, fmt.Errorf("%w: Auth0 refused the gateway's client (%d %s): check client_id, client_secret and that the client may use Token Vault", ErrSourceUnavailable, resp.status, code)
	case code == auth0ErrInvalidGrant:
		return Token{}, ErrSubjectTokenRejected
	case (resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden || resp.status == http.StatusBadRequest) &&
		(code == auth0ErrNoFederatedToken || code == auth0ErrTokensetNotFound || code == auth0ErrAccessDenied):
		return Token{}, ErrNoUpstreamToken
	default:
		return Token{}, fmt.Errorf("%w: Auth0 token endpoint answered %d %s", ErrSourceUnavailable, resp.status, code)
	}
}

// Interface guards
var (
	_ TokenSource           = (*Auth0TokenVault)(nil)
	_ issuerBinder          = (*Auth0TokenVault)(nil)
	_ caddy.CleanerUpper    = (*Auth0TokenVault)(nil)
	_ caddy.Provisioner     = (*Auth0TokenVault)(nil)
	_ caddy.Validator       = (*Auth0TokenVault)(nil)
	_ caddyfile.Unmarshaler = (*Auth0TokenVault)(nil)
)
