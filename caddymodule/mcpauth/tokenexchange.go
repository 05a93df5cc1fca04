package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
	"github.com/mcpgate/mcpgate/internal/loopback"
)

func init() {
	caddy.RegisterModule(TokenExchange{})
}

// RFC 8693 identifiers.
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// Token exchange defaults.
const (
	DefaultTokenExchangeTimeout = 5 * time.Second
	maxTokenResponseBytes       = 64 << 10
)

// TokenExchange is the upstream token source
// http.mcp_auth.token_sources.token_exchange: an RFC 8693 token exchange at an
// authorization server's token endpoint. It sends the user's verified access
// token as subject_token and receives the user's upstream (GitHub) token,
// authenticating with the gateway's own client credentials.
//
// The authorization server's error invalid_target means the user has no
// linked upstream account (ErrNoUpstreamToken); invalid_request means it
// refused the subject token (ErrSubjectTokenRejected); 5xx, timeouts,
// connection errors, invalid_client and unauthorized_client mean the source
// is unavailable (ErrSourceUnavailable, logged as a fault).
//
// Only access tokens from Issuer are sent: a token from any other trusted
// issuer gets ErrNoUpstreamToken without a network call, so one issuer's
// tokens never reach another issuer's token endpoint (which could replay
// them).
type TokenExchange struct {
	// Issuer is the issuer ("iss") whose access tokens are exchanged at
	// TokenEndpoint; it must be one of the mcp_auth handler's issuers.
	// Default: the handler's issuer if it has exactly one; with several,
	// it is required.
	Issuer string `json:"issuer,omitempty"`

	// TokenEndpoint is the authorization server's token endpoint URL.
	// Required.
	TokenEndpoint string `json:"token_endpoint,omitempty"`

	// ClientID is the gateway's client ID at the authorization server.
	// Default: "gateway".
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is the gateway's client secret. Caddy placeholders such
	// as {env.MCPGATE_GATEWAY_SECRET} are resolved once at provisioning.
	// Required.
	ClientSecret string `json:"client_secret,omitempty"`

	// Audience is the RFC 8693 audience parameter: the upstream API the
	// token is for. Default: "https://api.github.com".
	Audience string `json:"audience,omitempty"`

	// Resource, if set, is sent as the RFC 8693 resource parameter too.
	Resource string `json:"resource,omitempty"`

	// Scope, if set, is sent as the scope parameter (space-separated).
	Scope string `json:"scope,omitempty"`

	// AuthMethod is the client authentication: "client_secret_basic" or
	// "client_secret_post". Default: "client_secret_basic".
	AuthMethod string `json:"auth_method,omitempty"`

	// Timeout bounds one exchange. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// TrustPoolRaw is the CA pool (a tls.ca_pool.source module, e.g. pki_root for Caddy's
	// internal CA) trusted for the HTTPS call to the token endpoint. Default: the system roots.
	TrustPoolRaw json.RawMessage `json:"tls_trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`

	client *http.Client
	secret string
	now    func() time.Time
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (TokenExchange) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.mcp_auth.token_sources.token_exchange",
		New: func() caddy.Module { return new(TokenExchange) },
	}
}

// Provision resolves placeholders in the secret and sets defaults.
func (te *TokenExchange) Provision(ctx caddy.Context) error {
	te.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	te.secret = repl.ReplaceAll(te.ClientSecret, "")
	te.TokenEndpoint = repl.ReplaceAll(te.TokenEndpoint, "")
	if te.ClientID == "" {
		te.ClientID = "gateway"
	}
	te.ClientID = repl.ReplaceAll(te.ClientID, "")
	if te.Audience == "" {
		te.Audience = "https://api.github.com"
	}
	if te.AuthMethod == "" {
		te.AuthMethod = "client_secret_basic"
	}
	if te.Timeout == 0 {
		te.Timeout = caddy.Duration(DefaultTokenExchangeTimeout)
	}
	if te.now == nil {
		te.now = time.Now
	}
	if te.client == nil {
		roots, err := loadTrustPool(ctx, te, "TrustPoolRaw", te.TrustPoolRaw)
		if err != nil {
			return fmt.Errorf("mcp_auth: token_exchange: %w", err)
		}
		// No redirects: the secret and subject token go only to the configured endpoint.
		te.client = newOutboundClient(outboundTransport(roots), time.Duration(te.Timeout))
	}
	if u, err := url.Parse(te.TokenEndpoint); err == nil && u.Scheme == "http" && !loopback.Host(u.Hostname()) {
		te.logger.Warn("token_endpoint uses plain http; the client secret and tokens travel unencrypted", zap.String("token_endpoint", te.TokenEndpoint))
	}
	return nil
}

// Validate checks the configuration without revealing the secret.
func (te TokenExchange) Validate() error {
	if err := checkURL("token_exchange token_endpoint", te.TokenEndpoint); err != nil {
		return err
	}
	if te.secret == "" {
		return errors.New("mcp_auth: token_exchange client_secret is empty (is its environment variable set?)")
	}
	if te.AuthMethod != "client_secret_basic" && te.AuthMethod != "client_secret_post" {
		return fmt.Errorf("mcp_auth: token_exchange auth_method must be client_secret_basic or client_secret_post, not %q", te.AuthMethod)
	}
	if te.Timeout < 0 {
		return errors.New("mcp_auth: token_exchange timeout must not be negative")
	}
	return nil
}

// tokenResponse is the RFC 8693 §2.2.1 success body.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
}

// errorResponse is the RFC 6749 §5.2 error body.
type errorResponse struct {
	Error string `json:"error"`
}

// bindIssuers implements issuerBinder: it defaults Issuer to the handler's
// only issuer and checks that it is one of them.
func (te *TokenExchange) bindIssuers(issuers []string) error {
	if te.Issuer == "" {
		if len(issuers) != 1 {
			return errors.New("token_exchange issuer is required when mcp_auth has several issuers: " +
				"it names the issuer whose tokens may be sent to token_endpoint")
		}
		te.Issuer = issuers[0]
		return nil
	}
	for _, is := range issuers {
		if is == te.Issuer {
			return nil
		}
	}
	return fmt.Errorf("token_exchange issuer %q is not one of mcp_auth's issuers", te.Issuer)
}

// UpstreamToken implements TokenSource. A token whose issuer is not Issuer
// gets ErrNoUpstreamToken without any network call.
func (te *TokenExchange) UpstreamToken(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (Token, error) {
	if te.Issuer != "" && (claims == nil || claims.Issuer != te.Issuer) {
		return Token{}, ErrNoUpstreamToken
	}
	form := url.Values{
		"grant_type":           {grantTypeTokenExchange},
		"subject_token":        {subjectToken},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
		"audience":             {te.Audience},
	}
	if te.Resource != "" {
		form.Set("resource", te.Resource)
	}
	if te.Scope != "" {
		form.Set("scope", te.Scope)
	}
	if te.AuthMethod == "client_secret_post" {
		form.Set("client_id", te.ClientID)
		form.Set("client_secret", te.secret)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(te.Timeout))
	defer cancel()
	req, err := newFormRequest(ctx, te.TokenEndpoint, form)
	if err != nil {
		return Token{}, err
	}
	if te.AuthMethod == "client_secret_basic" {
		// RFC 6749 §2.3.1: form-urlencode, then Basic.
		req.SetBasicAuth(url.QueryEscape(te.ClientID), url.QueryEscape(te.secret))
	}
	// The errors name only the endpoint; no secret.
	resp, err := (&outbound{client: te.client, now: te.now}).do(req, "token endpoint")
	if err != nil {
		return Token{}, err
	}
	if resp.status == http.StatusOK {
		var tr tokenResponse
		if err := json.Unmarshal(resp.body, &tr); err != nil || tr.AccessToken == "" {
			return Token{}, fmt.Errorf("%w: token endpoint returned 200 without an access_token", ErrSourceUnavailable)
		}
		if tr.IssuedTokenType != "" && tr.IssuedTokenType != tokenTypeAccessToken {
			return Token{}, fmt.Errorf("%w: token endpoint issued an unexpected token type", ErrSourceUnavailable)
		}
		tok := Token{Value: tr.AccessToken}
		if tr.ExpiresIn > 0 {
			tok.Expiry = te.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
		}
		return tok, nil
	}
	code := oauthErrorCode(resp.body)
	switch {
	case resp.status == http.StatusBadRequest && code == "invalid_target":
		return Token{}, ErrNoUpstreamToken
	case resp.status == http.StatusBadRequest && code == "invalid_request":
		return Token{}, ErrSubjectTokenRejected
	default:
		return Token{}, fmt.Errorf("%w: token endpoint answered %d %s", ErrSourceUnavailable, resp.status, code)
	}
}

// safeCode keeps an OAuth error code printable in logs: only [a-z_], at most
// 64 characters (Auth0's federated_connection_refresh_token_not_found has 44).
func safeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && s[i] != '_' {
			return "(unrecognised error code)"
		}
	}
	return s
}

// transportReason classifies a client error without echoing request data.
func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "connection error"
	}
}

// Cleanup closes the idle connections of a transport built for tls_trust_pool.
func (te *TokenExchange) Cleanup() error {
	if te.client != nil && te.client.Transport != http.DefaultTransport {
		te.client.CloseIdleConnections()
	}
	return nil
}

// Interface guards
var (
	_ TokenSource        = (*TokenExchange)(nil)
	_ issuerBinder       = (*TokenExchange)(nil)
	_ caddy.CleanerUpper = (*TokenExchange)(nil)
	_ caddy.Provisioner  = (*TokenExchange)(nil)
	_ caddy.Validator    = (*TokenExchange)(nil)
)
