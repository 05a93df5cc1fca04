package mcpauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Auth0 defaults.
const (
	// DefaultAuth0Connection is the Auth0 connection (and identity provider) whose token the
	// Auth0 sources fetch: Auth0's GitHub social connection.
	DefaultAuth0Connection = "github"
	// DefaultAuth0Timeout bounds one call to Auth0.
	DefaultAuth0Timeout = 5 * time.Second
)

// auth0Client is the configuration the two Auth0 token sources share: the tenant, the
// gateway's client credentials there, the connection, and the issuer whose tokens may be
// sent to the tenant.
type auth0Client struct {
	// Domain is the tenant's base URL, e.g. "https://example.us.auth0.com" (a bare host name
	// means https). The token endpoint is Domain + "/oauth/token" and the Management API is
	// Domain + "/api/v2/". Required.
	Domain string `json:"domain,omitempty"`

	// ClientID is the gateway's client at the tenant. Required.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is that client's secret; placeholders such as {env.AUTH0_CLIENT_SECRET}
	// are resolved once at provisioning. Required. Sent as client_secret_post, as Auth0's
	// token endpoint documents.
	ClientSecret string `json:"client_secret,omitempty"`

	// Connection is the Auth0 connection whose upstream token is fetched. Default "github".
	Connection string `json:"connection,omitempty"`

	// Issuer is the issuer whose access tokens are sent to the tenant; it must be one of the
	// mcp_auth handler's issuers (for Auth0, "https://TENANT/" with its trailing slash).
	// Default: the handler's issuer if it has exactly one.
	Issuer string `json:"issuer,omitempty"`

	// Timeout bounds one call to Auth0. Default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// TrustPoolRaw is the CA pool trusted for the calls to Auth0. Default: the system roots.
	TrustPoolRaw json.RawMessage `json:"tls_trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`

	base   *url.URL
	secret string
	out    outbound
	logger *zap.Logger
}

// provision resolves placeholders and defaults; owner is the module that embeds a.
func (a *auth0Client) provision(ctx caddy.Context, owner any, name string) error {
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	a.secret = repl.ReplaceAll(a.ClientSecret, "")
	a.ClientID = repl.ReplaceAll(a.ClientID, "")
	a.Domain = repl.ReplaceAll(a.Domain, "")
	if a.Connection == "" {
		a.Connection = DefaultAuth0Connection
	}
	if a.Timeout == 0 {
		a.Timeout = caddy.Duration(DefaultAuth0Timeout)
	}
	if a.out.now == nil {
		a.out.now = time.Now
	}
	d := a.Domain
	if d != "" && !strings.Contains(d, "://") {
		d = "https://" + d
	}
	if u, err := url.Parse(strings.TrimRight(d, "/")); err == nil {
		a.base = u
	}
	if a.out.client == nil {
		roots, err := loadTrustPool(ctx, owner, "TrustPoolRaw", a.TrustPoolRaw)
		if err != nil {
			return fmt.Errorf("mcp_auth: %s: %w", name, err)
		}
		a.out.client = newOutboundClient(outboundTransport(roots), time.Duration(a.Timeout))
	}
	return nil
}

// validate checks the shared configuration without revealing the secret.
func (a *auth0Client) validate(name string) error {
	if a.base == nil || checkURL(name+" domain", a.base.String()) != nil || a.base.RawQuery != "" || (a.base.Path != "" && a.base.Path != "/") {
		return fmt.Errorf("mcp_auth: %s domain %q must be the tenant's host or base URL, such as https://example.us.auth0.com", name, a.Domain)
	}
	if a.ClientID == "" {
		return fmt.Errorf("mcp_auth: %s client_id is required", name)
	}
	if a.secret == "" {
		return fmt.Errorf("mcp_auth: %s client_secret is empty (is its environment variable set?)", name)
	}
	if a.Timeout < 0 {
		return fmt.Errorf("mcp_auth: %s timeout must not be negative", name)
	}
	return nil
}

// endpoint is the tenant URL with path p, which must be escaped already.
func (a *auth0Client) endpoint(p string) string {
	u := *a.base
	u.Path = ""
	return u.String() + p
}

// bindIssuers implements issuerBinder, as for token_exchange.
func (a *auth0Client) bindIssuers(issuers []string) error {
	if a.Issuer == "" {
		if len(issuers) != 1 {
			return errors.New("the Auth0 token source's issuer is required when mcp_auth has several issuers")
		}
		a.Issuer = issuers[0]
		return nil
	}
	for _, is := range issuers {
		if is == a.Issuer {
			return nil
		}
	}
	return fmt.Errorf("the Auth0 token source's issuer %q is not one of mcp_auth's issuers", a.Issuer)
}

// cleanup closes the idle connections of a transport built for tls_trust_pool.
func (a *auth0Client) cleanup() {
	if a.out.client != nil {
		a.out.client.CloseIdleConnections()
	}
}
