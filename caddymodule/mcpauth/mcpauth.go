package mcpauth

// The handler's configuration, Provision, Validate and Cleanup. Most of the length is the
// configuration's field documentation, which is the reference for every option and default.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
	"github.com/mcpgate/mcpgate/internal/expirylru"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// legacyUpstreamHeader is the header the gateway injected by default before
// Authorization, which mcpbackend still reads: the client's copies are
// always removed, whatever upstream_header is.
const legacyUpstreamHeader = "X-GitHub-Token"

// Defaults of Handler's optional fields.
const (
	DefaultUpstreamHeader    = "Authorization"
	DefaultLeeway            = 30 * time.Second
	DefaultMaxTokenSize      = 8192
	DefaultUpstreamCacheSize = 10000
	DefaultUpstreamCacheTTL  = 5 * time.Minute
	DefaultUpstreamTimeout   = 10 * time.Second
	DefaultRetryAfter        = 5 * time.Second
	DefaultLinkAccount       = "GitHub"
	OnMissingUpstreamDeny    = "deny"
	OnMissingUpstreamPass    = "pass"
)

// Handler is the mcp_auth HTTP handler (module ID http.handlers.mcp_auth): an
// OAuth 2.1 protected resource in front of an MCP server.
//
// It serves protected resource metadata (RFC 9728) at
// /.well-known/oauth-protected-resource and at its path-suffixed form for the
// resource, answers CORS preflights, and requires every other request to carry
// a valid bearer JWT (RFC 6750, RFC 9068) in the Authorization header, issued
// by one of the configured issuers for this resource (RFC 8707 audience).
// Failures get a 401 or 403 with a WWW-Authenticate challenge that points MCP
// clients to the metadata.
//
// On success it sets the placeholders {http.auth.user.id} (the token's sub),
// {http.auth.user.scope}, {http.auth.user.client_id} and {http.auth.user.iss},
// applies the tool policy when one is configured (ToolPolicy), removes the
// client's Authorization header (no token passthrough) and any
// client copy of upstream_header, and sets upstream_header to the user's
// upstream token from the configured token source. On rejection it sets
// {http.auth.mcp_auth.error} to a short reason. If the server has
// handle_errors routes, a rejection is returned as an error (with the
// challenge headers already set) so they run; otherwise mcp_auth writes a
// short JSON error body itself.
type Handler struct {
	// Resource is this protected resource's identifier, the MCP endpoint's
	// URL, e.g. "https://mcp.example.com/mcp". Tokens must carry it in "aud"
	// (compared after canonicalising: scheme and host lowercased, one
	// trailing slash ignored). Required, and it must be an absolute http(s)
	// URL: a relative resource would take its origin from the request's Host
	// header, which the client controls, so a token minted for another
	// resource server could be replayed here just by sending that server's
	// name as Host (RFC 8707 audience confusion). No default.
	Resource string `json:"resource,omitempty"`

	// Issuers are the trusted token issuers. At least one is required. Each
	// issuer must match a token's "iss" exactly.
	Issuers []IssuerConfig `json:"issuers,omitempty"`

	// AuthorizationServers lists the authorization server issuer URLs
	// advertised in the metadata. Default: the issuers.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`

	// ScopesSupported is advertised in the metadata. Default: none.
	ScopesSupported []string `json:"scopes_supported,omitempty"`

	// RequiredScopes must all be granted to a token, else 403
	// insufficient_scope. They are also the challenge's scope parameter.
	// Default: none.
	RequiredScopes []string `json:"required_scopes,omitempty"`

	// ResourceName is the human-readable name in the metadata. Optional.
	ResourceName string `json:"resource_name,omitempty"`

	// ResourceDocumentation is a URL of documentation for developers,
	// advertised in the metadata. Optional.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`

	// Algorithms is the allowlist of JWS algorithms; the token's "alg"
	// header is never trusted beyond it. Default: ["RS256", "ES256"].
	Algorithms []string `json:"algorithms,omitempty"`

	// Leeway is the clock skew allowed for exp, nbf and iat. Default: 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// MaxTokenSize is the longest bearer token accepted, in bytes; longer
	// ones are rejected before parsing. Default: 8192.
	MaxTokenSize int `json:"max_token_size,omitempty"`

	// JWKSRefreshInterval is how often each issuer's JWKS is refreshed in
	// the background. Default: 15m.
	JWKSRefreshInterval caddy.Duration `json:"jwks_refresh_interval,omitempty"`

	// JWKSRefetchCooldown is the minimum time between JWKS fetches caused by
	// tokens with an unknown key ID. Default: 30s.
	JWKSRefetchCooldown caddy.Duration `json:"jwks_refetch_cooldown,omitempty"`

	// JWKSFetchTimeout bounds each JWKS or discovery fetch. Default: 5s.
	JWKSFetchTimeout caddy.Duration `json:"jwks_fetch_timeout,omitempty"`

	// VerifyCacheSize is the number of verified tokens cached (keyed by a
	// hash of the token, never past its expiry) so a repeated request skips
	// the signature check. Default: 10000; negative disables the cache.
	VerifyCacheSize int `json:"verify_cache_size,omitempty"`

	// UpstreamRaw is the upstream token source, a module in the namespace
	// http.mcp_auth.token_sources ("token_exchange", "auth0_token_vault",
	// "auth0_management" or "static"). Without
	// it, no upstream header is set (the client's Authorization header is
	// still removed).
	UpstreamRaw json.RawMessage `json:"upstream_token,omitempty" caddy:"namespace=http.mcp_auth.token_sources inline_key=source"`

	// UpstreamHeader is the request header that carries the upstream token
	// to the backend. If it is "Authorization", the value is
	// "Bearer <token>". Default: "Authorization", which GitHub's own MCP
	// server reads in HTTP mode and which Caddy's logs always redact.
	//
	// What the backend never gets from the client, on every accepted
	// request: the Authorization header (unless keep_authorization); every
	// header whose name equals upstream_header or X-GitHub-Token (the header
	// mcpbackend and the earlier default use) ignoring case and treating
	// "_" and "-" alike (X_GitHub_Token, x-github-token, ...); and all
	// request trailers (dropped entirely, with the Trailer header). Other
	// headers pass unchanged.
	//
	// Logging: Caddy's reverse_proxy debug log ("upstream roundtrip") prints
	// the proxied request's headers and redacts only Authorization,
	// Proxy-Authorization, Cookie and Set-Cookie (unless log_credentials).
	// With any other upstream_header the upstream token is therefore written
	// to the log at debug level: mcp_auth warns at Provision when its logger
	// has debug enabled and upstream_header is not Authorization.
	UpstreamHeader string `json:"upstream_header,omitempty"`

	// KeepAuthorization forwards the client's Authorization header (its
	// bearer token) to the backend. This is token passthrough, which the MCP
	// specification forbids for tokens not issued for the backend: leave it
	// off unless the backend verifies this same audience. Default: false.
	KeepAuthorization bool `json:"keep_authorization,omitempty"`

	// OnMissingUpstream says what to do when the user has no upstream token:
	// "deny" answers 403 with a JSON message naming the account to link and
	// link_url; "pass" forwards the request without the upstream header.
	// Default: "deny".
	OnMissingUpstream string `json:"on_missing_upstream,omitempty"`

	// LinkURL is where users link their upstream account, named in the 403
	// answer. Default: the first authorization server + "/account".
	LinkURL string `json:"link_url,omitempty"`

	// LinkAccount names the upstream account in the 403 answer.
	// Default: "GitHub".
	LinkAccount string `json:"link_account,omitempty"`

	// UpstreamCacheSize is the number of users whose upstream token is
	// cached. Default: 10000; negative disables the cache (concurrent
	// requests of one user still share one source call).
	UpstreamCacheSize int `json:"upstream_cache_size,omitempty"`

	// UpstreamCacheTTL is the longest an upstream token is cached; tokens
	// are never served past their own expiry. Default: 5m.
	UpstreamCacheTTL caddy.Duration `json:"upstream_cache_ttl,omitempty"`

	// UpstreamTimeout bounds one token source call, including waiting for a
	// shared call. Default: 10s.
	UpstreamTimeout caddy.Duration `json:"upstream_timeout,omitempty"`

	// RetryAfter is the Retry-After sent with 503 when the token source is
	// unavailable. Default: 5s.
	RetryAfter caddy.Duration `json:"retry_after,omitempty"`

	// MetadataPath overrides the path-suffixed metadata path. Default:
	// "/.well-known/oauth-protected-resource" + the resource's path. The
	// root path "/.well-known/oauth-protected-resource" is always served.
	MetadataPath string `json:"metadata_path,omitempty"`

	// TrustPoolRaw is the CA pool (a tls.ca_pool.source module, e.g. pki_root for Caddy's
	// internal CA) that the gateway trusts for its own HTTPS calls to the issuers: metadata
	// discovery and JWKS. Default: the system roots.
	TrustPoolRaw json.RawMessage `json:"tls_trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`

	// ToolPolicy is the per-tool authorization policy (docs/mcp_auth.md,
	// "Tool policy"): which MCP tools, prompts and resources a token may
	// use, decided on every POST after the token is verified and before
	// the upstream token is fetched, with list results filtered to match.
	// When set, every MCP POST also gets an audit entry (logger
	// http.handlers.mcp_auth.audit, INFO) and the placeholders
	// {http.auth.mcp.method} and {http.auth.mcp.tool}. Default: none (no
	// body is read, nothing is audited).
	ToolPolicy *toolpolicy.Config `json:"tool_policy,omitempty"`

	logger       *zap.Logger
	metrics      *metrics
	now          func() time.Time
	poolKeys     []string
	poolEntries  []*keySetEntry // parallel to poolKeys
	keyUser      *keySetUser    // this config's registration with the key sets
	keys         map[string]jwtverify.KeySource
	verifier     *jwtverify.Verifier
	verifierCfg  jwtverify.Config
	source       TokenSource
	upstream     *upstreamCache
	upstreamKey  string // canonical upstream header
	resource     string // canonical absolute resource; "" until Validate reports the missing one
	resourcePath string
	prmPaths     []string
	prmJSON      []byte            // precomputed metadata document
	rmURL        string            // precomputed resource_metadata URL
	challenges   map[string]string // precomputed WWW-Authenticate by error code
	scope        string            // RequiredScopes joined
	retryAfter   string
	policy       *toolpolicy.Policy                                        // compiled ToolPolicy; nil without one
	identities   *expirylru.Cache[*jwtverify.Claims, *toolpolicy.Identity] // by verified token; nil when unused
	audit        *zap.Logger                                               // http.handlers.mcp_auth.audit
	methodValues map[string]any                                            // each MCP method boxed once, for Replacer.Set
}

// IssuerConfig is one trusted issuer.
type IssuerConfig struct {
	// Issuer is the issuer identifier, matched exactly against "iss".
	// Required.
	Issuer string `json:"issuer"`
	// JWKSURI is the issuer's JWKS URL. Default: discovered on first use
	// from the issuer's RFC 8414 metadata, then OpenID Connect discovery.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// AccessTokenTypes are the JOSE "typ" header values accepted on this
	// issuer's access tokens, compared case-insensitively with or without
	// "application/"; the word "absent" accepts a token without typ.
	// Default ["at+jwt"]: RFC 9068 §4 makes a resource server refuse any
	// other. Keycloak types its access tokens "JWT", and Auth0 does too
	// unless the API uses its RFC 9068 profile: for those, e.g.
	// ["JWT"]. Types that mark another kind of token (id+jwt, logout+jwt,
	// ...) are refused at load.
	AccessTokenTypes []string `json:"access_token_types,omitempty"`
}

// typAbsent is the AccessTokenTypes word for "no typ header".
const typAbsent = "absent"

// verifierTypes maps AccessTokenTypes to jwtverify's form, where "" stands
// for an absent typ.
func (is IssuerConfig) verifierTypes() []string {
	out := make([]string, len(is.AccessTokenTypes))
	for i, t := range is.AccessTokenTypes {
		if t != typAbsent {
			out[i] = t
		}
	}
	return out
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, loads the token source, and attaches the shared
// per-issuer key sets.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	var reg prometheus.Registerer
	if r := ctx.GetMetricsRegistry(); r != nil {
		reg = r
	}
	h.metrics = newMetrics(reg)

	if err := h.provisionResource(); err != nil {
		return err
	}
	if len(h.AuthorizationServers) == 0 {
		for _, is := range h.Issuers {
			h.AuthorizationServers = append(h.AuthorizationServers, is.Issuer)
		}
	}
	if h.LinkURL == "" && len(h.AuthorizationServers) > 0 {
		h.LinkURL = strings.TrimSuffix(h.AuthorizationServers[0], "/") + "/account"
	}
	if h.LinkAccount == "" {
		h.LinkAccount = DefaultLinkAccount
	}
	if h.UpstreamHeader == "" {
		h.UpstreamHeader = DefaultUpstreamHeader
	}
	h.upstreamKey = http.CanonicalHeaderKey(h.UpstreamHeader)
	h.warnDebugLeak()
	if h.OnMissingUpstream == "" {
		h.OnMissingUpstream = OnMissingUpstreamDeny
	}
	if h.Leeway == 0 {
		h.Leeway = caddy.Duration(DefaultLeeway)
	}
	if h.MaxTokenSize == 0 {
		h.MaxTokenSize = DefaultMaxTokenSize
	}
	if h.UpstreamCacheSize == 0 {
		h.UpstreamCacheSize = DefaultUpstreamCacheSize
	}
	if h.UpstreamCacheTTL == 0 {
		h.UpstreamCacheTTL = caddy.Duration(DefaultUpstreamCacheTTL)
	}
	if h.UpstreamTimeout == 0 {
		h.UpstreamTimeout = caddy.Duration(DefaultUpstreamTimeout)
	}
	if h.RetryAfter == 0 {
		h.RetryAfter = caddy.Duration(DefaultRetryAfter)
	}
	h.retryAfter = strconv.Itoa(int((time.Duration(h.RetryAfter) + time.Second - 1) / time.Second))
	h.scope = strings.Join(h.RequiredScopes, " ")
	if err := h.provisionPolicy(); err != nil {
		return err
	}

	roots, err := loadTrustPool(ctx, h, "TrustPoolRaw", h.TrustPoolRaw)
	if err != nil {
		return fmt.Errorf("mcp_auth: %w", err)
	}

	h.keys = make(map[string]jwtverify.KeySource, len(h.Issuers))
	h.keyUser = newKeySetUser(h.logger, h.metrics, h.now)
	for _, is := range h.Issuers {
		if is.Issuer == "" {
			return errors.New("mcp_auth: an issuer has an empty issuer URL")
		}
		if _, dup := h.keys[is.Issuer]; dup {
			return fmt.Errorf("mcp_auth: issuer %q configured twice", is.Issuer)
		}
		e, key, err := loadKeySet(keySetParams{
			Issuer:          is.Issuer,
			JWKSURI:         is.JWKSURI,
			RefreshInterval: time.Duration(h.JWKSRefreshInterval),
			RefetchCooldown: time.Duration(h.JWKSRefetchCooldown),
			FetchTimeout:    time.Duration(h.JWKSFetchTimeout),
			TrustPool:       trustPoolID(h.TrustPoolRaw),
			roots:           roots,
		}, h.keyUser)
		if err != nil {
			return fmt.Errorf("mcp_auth: %w", err)
		}
		h.poolKeys = append(h.poolKeys, key)
		h.poolEntries = append(h.poolEntries, e)
		h.keys[is.Issuer] = e.ks
	}

	h.verifierCfg = jwtverify.Config{
		Audience:      h.resource,
		Algorithms:    h.Algorithms,
		Leeway:        time.Duration(h.Leeway),
		MaxTokenBytes: h.MaxTokenSize,
		CacheSize:     h.VerifyCacheSize,
		Now:           h.now,
		Observer:      h.metrics,
	}
	for _, is := range h.Issuers {
		if len(is.AccessTokenTypes) > 0 {
			if h.verifierCfg.IssuerAccessTokenTypes == nil {
				h.verifierCfg.IssuerAccessTokenTypes = make(map[string][]string)
			}
			h.verifierCfg.IssuerAccessTokenTypes[is.Issuer] = is.verifierTypes()
		}
	}
	if h.resource != "" {
		v, err := jwtverify.NewVerifier(h.verifierCfg, h.keys)
		if err != nil {
			return fmt.Errorf("mcp_auth: %w", err)
		}
		h.verifier = v
		h.prmJSON = h.metadataJSON(h.resource)
		h.rmURL = originOf(h.resource) + h.prmPaths[0]
		h.challenges = make(map[string]string)
		for _, code := range []string{"", "invalid_token", "invalid_request", "insufficient_scope"} {
			h.challenges[code] = challengeParams{ResourceMetadata: h.rmURL, Scope: h.scope, Error: code}.String()
		}
	}
	// Without an absolute resource there is no verifier; Validate rejects
	// the configuration before any request is served.

	if h.UpstreamRaw != nil {
		mod, err := ctx.LoadModule(h, "UpstreamRaw")
		if err != nil {
			return fmt.Errorf("mcp_auth: loading upstream token source: %w", err)
		}
		src, ok := mod.(TokenSource)
		if !ok {
			return fmt.Errorf("mcp_auth: module %T is not a TokenSource", mod)
		}
		if b, ok := src.(issuerBinder); ok {
			issuers := make([]string, 0, len(h.Issuers))
			for _, is := range h.Issuers {
				issuers = append(issuers, is.Issuer)
			}
			if err := b.bindIssuers(issuers); err != nil {
				return fmt.Errorf("mcp_auth: %w", err)
			}
		}
		h.source = src
		h.upstream = newUpstreamCache(src, h.UpstreamCacheSize, time.Duration(h.UpstreamCacheTTL), time.Duration(h.UpstreamTimeout), h.now)
		if h.upstreamKey == "Authorization" {
			h.upstream.headerPrefix = "Bearer "
		}
		h.upstream.observe = h.metrics.upstreamCache
		h.upstream.latency = h.metrics.sourceLatency
		h.upstream.onPanic = func(valueType string, stack []byte) {
			// Never the panic value: it could hold a token.
			h.logger.Error("upstream token source panicked; answering 503",
				zap.String("panic_type", valueType), zap.ByteString("stack", stack))
		}
	}
	return nil
}

// warnDebugLeak warns once, at Provision, if the upstream token would be
// written to Caddy's debug logs: reverse_proxy's "upstream roundtrip" debug
// entry prints request headers and redacts only Authorization,
// Proxy-Authorization, Cookie and Set-Cookie.
func (h *Handler) warnDebugLeak() {
	if h.UpstreamRaw == nil || sameHeaderName(h.upstreamKey, "Authorization") || !h.logger.Core().Enabled(zapcore.DebugLevel) {
		return
	}
	h.logger.Warn("debug logging is on and upstream_header is not Authorization: reverse_proxy's debug log "+
		"(\"upstream roundtrip\") prints request headers and redacts only Authorization and Cookie, so users' "+
		"upstream tokens will be written to the log; use upstream_header Authorization or turn debug logging off",
		zap.String("upstream_header", h.upstreamKey))
}

// provisionResource parses Resource into the canonical resource, its path,
// and the metadata paths. A missing or path-only resource leaves h.resource
// empty for Validate to report.
func (h *Handler) provisionResource() error {
	switch {
	case h.Resource == "", strings.HasPrefix(h.Resource, "/"):
		h.resourcePath = ""
	default:
		canon, err := jwtverify.CanonicalResource(h.Resource)
		if err != nil {
			return fmt.Errorf("mcp_auth: resource %q: %w", h.Resource, err)
		}
		u, err := url.Parse(canon)
		if err != nil {
			return fmt.Errorf("mcp_auth: resource %q: %w", h.Resource, err)
		}
		h.resource = canon
		h.resourcePath = u.Path
	}
	if h.MetadataPath != "" && !strings.HasPrefix(h.MetadataPath, "/") {
		return fmt.Errorf("mcp_auth: metadata_path %q must start with /", h.MetadataPath)
	}
	h.prmPaths = metadataPaths(h.resourcePath, h.MetadataPath)
	return nil
}

// Validate checks the provisioned configuration; it changes nothing.
func (h Handler) Validate() error {
	if h.resource == "" {
		return fmt.Errorf("mcp_auth: resource %q must be an absolute URL such as https://mcp.example.com/mcp: "+
			"a relative or omitted resource would take the token audience from the request's Host header, "+
			"which the client controls (a token for another resource server would be accepted)", h.Resource)
	}
	if len(h.Issuers) == 0 {
		return errors.New("mcp_auth: at least one issuer is required")
	}
	for _, is := range h.Issuers {
		if err := checkURL("issuer", is.Issuer); err != nil {
			return err
		}
		if is.JWKSURI != "" {
			if err := checkURL("jwks_uri", is.JWKSURI); err != nil {
				return err
			}
		}
	}
	for _, as := range h.AuthorizationServers {
		if err := checkURL("authorization_servers", as); err != nil {
			return err
		}
	}
	if h.ResourceDocumentation != "" {
		if err := checkURL("resource_documentation", h.ResourceDocumentation); err != nil {
			return err
		}
	}
	if h.LinkURL != "" {
		if err := checkURL("link_url", h.LinkURL); err != nil {
			return err
		}
	}
	if h.OnMissingUpstream != OnMissingUpstreamDeny && h.OnMissingUpstream != OnMissingUpstreamPass {
		return fmt.Errorf("mcp_auth: on_missing_upstream must be %q or %q, not %q", OnMissingUpstreamDeny, OnMissingUpstreamPass, h.OnMissingUpstream)
	}
	if !httpguts.ValidHeaderFieldName(h.UpstreamHeader) {
		return fmt.Errorf("mcp_auth: upstream_header %q is not a valid header name", h.UpstreamHeader)
	}
	if h.upstreamKey == "Authorization" && h.KeepAuthorization {
		return errors.New("mcp_auth: keep_authorization passes the client's Authorization header to the backend, so the upstream token cannot travel in it (the default upstream_header): set upstream_header to another header, e.g. X-GitHub-Token")
	}
	for name, d := range map[string]caddy.Duration{
		"leeway": h.Leeway, "jwks_refresh_interval": h.JWKSRefreshInterval,
		"jwks_refetch_cooldown": h.JWKSRefetchCooldown, "jwks_fetch_timeout": h.JWKSFetchTimeout,
		"upstream_cache_ttl": h.UpstreamCacheTTL, "upstream_timeout": h.UpstreamTimeout, "retry_after": h.RetryAfter,
	} {
		if d < 0 {
			return fmt.Errorf("mcp_auth: %s must not be negative", name)
		}
	}
	if h.MaxTokenSize < 0 {
		return errors.New("mcp_auth: max_token_size must not be negative")
	}
	return nil
}

// checkURL requires an absolute http(s) URL without fragment.
func checkURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("mcp_auth: %s %q must be an absolute http(s) URL without fragment", field, s)
	}
	return nil
}

// Cleanup releases the shared key sets; the last user stops their refresh.
// Safe after a partial Provision.
func (h *Handler) Cleanup() error {
	var errs []error
	for i, k := range h.poolKeys {
		if err := releaseKeySet(k, h.poolEntries[i], h.keyUser); err != nil {
			errs = append(errs, err)
		}
	}
	h.poolKeys, h.poolEntries = nil, nil
	return errors.Join(errs...)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
