package mcpidp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mcpgate/mcpgate/idp"
)

func init() {
	caddy.RegisterModule(IDP{})
}

// IDP is the bundled OAuth 2.1 authorization server (package idp) served by Caddy, so that it
// gets Caddy's automatic HTTPS. It is a terminal handler: give it its own site or a path
// matcher, and it answers every request that reaches it (404 for paths it does not know).
//
// The embedded store (a bbolt file) is opened once per data directory, and a PostgreSQL pool
// once per DSN, and shared across config reloads, so a reload neither reopens the store nor
// forgets signing keys or sessions.
type IDP struct {
	// Issuer is the exact issuer identifier, e.g. "https://auth.example.com". Required. Every
	// metadata URL is derived from it; request headers never are.
	Issuer string `json:"issuer,omitempty"`

	// DataDir holds the store (idp.db) and, in development, the generated encryption key
	// (idp.key, mode 0600). With storage postgres only an existing idp.key is read from it, and
	// nothing is created. Default: "mcpgate/idp" under Caddy's data directory.
	DataDir string `json:"data_dir,omitempty"`

	// EncryptionKey is the base64 32-byte AES-256-GCM key that encrypts GitHub tokens and signing
	// keys at rest. Placeholders such as {env.MCPGATE_IDP_KEY} are expanded. Default: the
	// MCPGATE_IDP_KEY environment variable, else <data_dir>/idp.key, which is generated on first
	// run only when dev_login is on, and never with storage postgres: replicas must share one key
	// (it also signs the login form's CSRF token), so a missing key is refused at load.
	EncryptionKey string `json:"encryption_key,omitempty"`

	// DevLogin enables the development login page: pick a username and optionally paste a GitHub
	// personal access token. Never enable it in production. Default false.
	DevLogin bool `json:"dev_login,omitempty"`

	// GitHub configures "Sign in with GitHub" with a GitHub OAuth app. Default: off.
	GitHub *IDPGitHub `json:"github,omitempty"`

	// Upstreams are OpenID providers users sign in with (the company's IdP). Default none.
	Upstreams []IDPUpstream `json:"upstreams,omitempty"`

	// IDJAGTrusts are the enterprise IdPs whose ID-JAGs the token endpoint accepts
	// (enterprise-managed authorization). Default none: the jwt-bearer grant is off.
	IDJAGTrusts []IDPIDJAGTrust `json:"id_jag_trusts,omitempty"`

	// ExchangeClients are the confidential clients (the gateway) that may exchange a user's
	// access token for the user's GitHub token (RFC 8693). Default none: exchange is disabled.
	ExchangeClients []IDPExchangeClient `json:"exchange_clients,omitempty"`

	// DefaultResource is the access token audience when a request names no resource.
	// Default: the issuer.
	DefaultResource string `json:"default_resource,omitempty"`

	// AllowedResources, if set, restricts the resource parameter to these values (plus
	// default_resource). Default: any absolute http(s) URI.
	AllowedResources []string `json:"allowed_resources,omitempty"`

	// Scopes are the scopes clients may request. Default ["mcp"].
	Scopes []string `json:"scopes,omitempty"`

	// SigningAlgorithm is RS256 (default) or ES256.
	SigningAlgorithm string `json:"signing_algorithm,omitempty"`

	// AccessTokenTTL is the access token lifetime. Default 1h.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`

	// RefreshTokenTTL is the absolute lifetime of a refresh token family. Default 720h (30 days).
	RefreshTokenTTL caddy.Duration `json:"refresh_token_ttl,omitempty"`

	// RegistrationToken, if set, is the initial access token (RFC 7591) that dynamic client
	// registration requires. Placeholders are expanded. Default: open registration.
	RegistrationToken string `json:"registration_token,omitempty"`

	// AuthorizeRateLimit is how many pending authorization requests (valid /authorize requests,
	// each stored until sign-in) one client address may start per AuthorizeRateWindow; beyond it
	// /authorize answers a 429 page with Retry-After. The address is Caddy's client IP, which
	// honours the server's trusted_proxies. Default 100 (0 means the default); negative disables
	// the limit.
	AuthorizeRateLimit int `json:"authorize_rate_limit,omitempty"`

	// AuthorizeRateWindow is the window of AuthorizeRateLimit. Default 1m; must not be negative.
	AuthorizeRateWindow caddy.Duration `json:"authorize_rate_window,omitempty"`

	// AllowPrivateCIMD lets Client ID Metadata Documents be fetched from private and loopback
	// addresses. Development only. Default false.
	AllowPrivateCIMD bool `json:"allow_private_cimd,omitempty"`

	// CIMDFailureCacheTTL is how long a failed Client ID Metadata Document fetch (unreachable,
	// not 200, invalid) is remembered: requests naming that client_id are refused without
	// fetching again until it expires. Default 1m; must not be negative.
	CIMDFailureCacheTTL caddy.Duration `json:"cimd_failure_cache_ttl,omitempty"`

	// Storage selects where the server keeps its state. Default: the embedded bbolt store
	// <data_dir>/idp.db, for one Caddy. With storage postgres several Caddy replicas share one
	// PostgreSQL database (see IDPStorage).
	Storage *IDPStorage `json:"storage,omitempty"`

	// KeyRotationInterval is how long a signing key signs before its successor takes over.
	// Default 720h (30 days); must not be negative.
	KeyRotationInterval caddy.Duration `json:"key_rotation_interval,omitempty"`

	// KeyPrePublish is how long a new signing key is published in the JWKS before it signs, so
	// that gateways (and, with storage postgres, every replica) know it first. Default 1h; it
	// must be longer than CleanupInterval.
	KeyPrePublish caddy.Duration `json:"key_pre_publish,omitempty"`

	// CleanupInterval is the period of expired-record cleanup and key rotation, and of reloading
	// the signing keys other replicas created. Default 5m; it must be shorter than KeyPrePublish.
	CleanupInterval caddy.Duration `json:"cleanup_interval,omitempty"`

	srv      *idp.Server
	storeKey string // of the shared store or pool in idpStores
}

// IDPGitHub is a GitHub OAuth app.
type IDPGitHub struct {
	// ClientID of the GitHub OAuth app. Placeholders are expanded.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret of the GitHub OAuth app. Placeholders are expanded.
	ClientSecret string `json:"client_secret,omitempty"`
	// BaseURL is GitHub's web origin. Default "https://github.com".
	BaseURL string `json:"base_url,omitempty"`
	// APIURL is GitHub's REST API. Default "https://api.github.com".
	APIURL string `json:"api_url,omitempty"`
	// Scopes requested from GitHub. Default none.
	Scopes []string `json:"scopes,omitempty"`
	// LinkOnly uses GitHub only to link accounts of users who signed in through an upstream;
	// the login page offers no GitHub sign-in. Default false.
	LinkOnly bool `json:"link_only,omitempty"`
}

// IDPExchangeClient is a client allowed to use token exchange.
type IDPExchangeClient struct {
	// ID is the client_id, e.g. "gateway".
	ID string `json:"id,omitempty"`
	// Secret authenticates it. Placeholders such as {env.MCPGATE_GATEWAY_SECRET} are expanded.
	Secret string `json:"secret,omitempty"`
	// Audiences are the resources (MCP server URLs) this client serves: it may exchange only
	// access tokens whose aud names one of them, so a token a user got for another resource
	// never yields their GitHub token here. Required: a client without any is refused at load.
	Audiences []string `json:"audiences,omitempty"`
}

// validate requires an id and at least one audience.
func (c IDPExchangeClient) validate() error {
	if c.ID == "" {
		return errors.New("mcp_idp: an exchange client needs an id")
	}
	if len(c.Audiences) == 0 {
		return fmt.Errorf("mcp_idp: exchange client %q names no audiences: list the resources (MCP server URLs) whose tokens it may exchange, e.g. exchange_client %s {env.MCPGATE_GATEWAY_SECRET} https://mcp.example.com/mcp", c.ID, c.ID)
	}
	return nil
}

// CaddyModule returns the Caddy module information.
func (IDP) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_idp",
		New: func() caddy.Module { return new(IDP) },
	}
}

// Provision opens (or shares) the store, or the PostgreSQL pool, and builds the server.
func (m *IDP) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	if m.DataDir == "" {
		m.DataDir = filepath.Join(caddy.AppDataDir(), "mcpgate", "idp")
	}
	dataDir := repl.ReplaceAll(m.DataDir, "")
	if err := m.Storage.validate(); err != nil {
		return err
	}
	opts, err := m.idpOptions(repl)
	if err != nil {
		return err
	}
	if m.postgres() {
		err = m.provisionPostgres(ctx, repl, dataDir, &opts)
	} else {
		err = m.provisionBolt(repl, dataDir, &opts)
	}
	if err != nil {
		return err
	}
	opts.Logger = ctx.Slogger()
	m.srv, err = idp.New(opts)
	if err != nil {
		return fmt.Errorf("mcp_idp: %w", err)
	}
	return nil
}

// idpOptions maps the configuration onto idp.Options, expanding placeholders with repl. It leaves
// Store or Storage, EncryptionKey and Logger to Provision.
func (m *IDP) idpOptions(repl *caddy.Replacer) (idp.Options, error) {
	regToken := repl.ReplaceAll(m.RegistrationToken, "")
	if m.RegistrationToken != "" && regToken == "" {
		// An unset variable must not silently turn a closed registration into an open one.
		return idp.Options{}, fmt.Errorf("mcp_idp: registration_token expands to nothing (is its environment variable set?)")
	}
	opts := idp.Options{
		Issuer:                   m.Issuer,
		SigningAlgorithm:         m.SigningAlgorithm,
		DevLogin:                 m.DevLogin,
		DefaultResource:          m.DefaultResource,
		AllowedResources:         m.AllowedResources,
		Scopes:                   m.Scopes,
		AccessTokenTTL:           time.Duration(m.AccessTokenTTL),
		RefreshTokenTTL:          time.Duration(m.RefreshTokenTTL),
		RegistrationInitialToken: regToken,
		AuthorizeRateLimit:       m.AuthorizeRateLimit,
		AuthorizeRateWindow:      time.Duration(m.AuthorizeRateWindow),
		AllowPrivateCIMD:         m.AllowPrivateCIMD,
		CIMDFailureCacheTTL:      time.Duration(m.CIMDFailureCacheTTL),
		KeyRotationInterval:      time.Duration(m.KeyRotationInterval),
		KeyPrePublish:            time.Duration(m.KeyPrePublish),
		CleanupInterval:          time.Duration(m.CleanupInterval),
	}
	if m.GitHub != nil {
		opts.GitHub = idp.GitHubConfig{
			ClientID:     repl.ReplaceAll(m.GitHub.ClientID, ""),
			ClientSecret: repl.ReplaceAll(m.GitHub.ClientSecret, ""),
			BaseURL:      m.GitHub.BaseURL,
			APIURL:       m.GitHub.APIURL,
			Scopes:       m.GitHub.Scopes,
			LinkOnly:     m.GitHub.LinkOnly,
		}
	}
	ups, err := m.upstreamOptions(repl)
	if err != nil {
		return idp.Options{}, err
	}
	opts.Upstreams = ups
	if opts.IDJAGTrusts, err = m.idjagOptions(); err != nil {
		return idp.Options{}, err
	}
	for _, c := range m.ExchangeClients {
		if err := c.validate(); err != nil {
			return idp.Options{}, err
		}
		secret := repl.ReplaceAll(c.Secret, "")
		if secret == "" {
			return idp.Options{}, fmt.Errorf("mcp_idp: exchange client %q has an empty secret (is its environment variable set?)", c.ID)
		}
		opts.ExchangeClients = append(opts.ExchangeClients, idp.ExchangeClient{ID: c.ID, Secret: secret, Audiences: c.Audiences})
	}
	return opts, nil
}

// Validate checks the configuration without changing it.
func (m IDP) Validate() error {
	if m.Issuer == "" {
		return errors.New("mcp_idp: issuer is required")
	}
	for _, t := range m.IDJAGTrusts {
		if err := t.validate(); err != nil {
			return err
		}
	}
	if !m.DevLogin && (m.GitHub == nil || m.GitHub.ClientID == "" || m.GitHub.LinkOnly) && len(m.Upstreams) == 0 && len(m.IDJAGTrusts) == 0 {
		return errors.New("mcp_idp: configure github { client_id ... }, an oidc <name> { ... } upstream, or enable dev_login")
	}
	for _, u := range m.Upstreams {
		if u.Name == "" || u.Issuer == "" || u.ClientID == "" {
			return fmt.Errorf("mcp_idp: upstream %q needs a name, an issuer and a client_id", u.Name)
		}
	}
	for _, c := range m.ExchangeClients {
		if err := c.validate(); err != nil {
			return err
		}
	}
	if err := m.Storage.validate(); err != nil {
		return err
	}
	// A negative duration is never meaningful here: a negative window would never limit, and a
	// negative failure cache TTL would remember a failed fetch practically forever.
	for _, f := range []struct {
		name string
		d    caddy.Duration
	}{
		{"access_token_ttl", m.AccessTokenTTL}, {"refresh_token_ttl", m.RefreshTokenTTL},
		{"authorize_rate_window", m.AuthorizeRateWindow}, {"cimd_failure_cache_ttl", m.CIMDFailureCacheTTL},
		{"key_rotation_interval", m.KeyRotationInterval}, {"key_pre_publish", m.KeyPrePublish},
		{"cleanup_interval", m.CleanupInterval},
	} {
		if f.d < 0 {
			return fmt.Errorf("mcp_idp: %s must not be negative", f.name)
		}
	}
	// The same rule as idp.Options, in the Caddyfile's words and with idp's defaults.
	prePublish, cleanup := time.Duration(m.KeyPrePublish), time.Duration(m.CleanupInterval)
	if prePublish == 0 {
		prePublish = time.Hour
	}
	if cleanup == 0 {
		cleanup = 5 * time.Minute
	}
	if prePublish <= cleanup {
		return fmt.Errorf("mcp_idp: key_pre_publish (%s) must be longer than cleanup_interval (%s): every replica reloads the signing keys once per cleanup_interval and must publish a new key before it signs", prePublish, cleanup)
	}
	return nil
}

// ServeHTTP hands the request to the authorization server. The server rate-limits registration
// by r.RemoteAddr, so that is set to the client address Caddy determined, which honours
// trusted_proxies and never a spoofable header on its own.
func (m *IDP) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		r2 := r.Clone(r.Context())
		r2.RemoteAddr = net.JoinHostPort(ip, "0")
		r = r2
	}
	m.srv.ServeHTTP(w, r)
	return nil
}

// Cleanup stops the server's background work and releases the shared store or pool.
func (m *IDP) Cleanup() error {
	var err error
	if m.srv != nil {
		err = m.srv.Close()
	}
	if m.storeKey != "" {
		if _, derr := idpStores.Delete(m.storeKey); derr != nil && err == nil {
			err = derr
		}
	}
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*IDP)(nil)
	_ caddy.Validator             = (*IDP)(nil)
	_ caddy.CleanerUpper          = (*IDP)(nil)
	_ caddyhttp.MiddlewareHandler = (*IDP)(nil)
)
