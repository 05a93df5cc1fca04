package idp

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// GitHubConfig configures "Sign in with GitHub" with a GitHub OAuth app (or GitHub App user
// authorization). When ClientID is empty the real GitHub login is off.
type GitHubConfig struct {
	// ClientID of the GitHub OAuth app. Empty disables GitHub login.
	ClientID string
	// ClientSecret of the GitHub OAuth app. Required with ClientID.
	ClientSecret string
	// BaseURL is GitHub's web origin, where /login/oauth/authorize and /login/oauth/access_token
	// live. Default "https://github.com" (set it for GitHub Enterprise or tests).
	BaseURL string
	// APIURL is GitHub's REST API base. Default "https://api.github.com". It is also the only
	// audience token exchange accepts.
	APIURL string
	// Scopes requested from GitHub (OAuth apps). Default none: GitHub then grants public read
	// access; GitHub Apps ignore scopes.
	Scopes []string
	// HTTPClient calls GitHub. Default: Options.HTTPClient.
	HTTPClient *http.Client
	// LinkOnly uses GitHub only to link a GitHub account to a user who signed in another way
	// (an upstream OpenID provider): the login page offers no "Sign in with GitHub" and
	// /login/github without link=1 is refused. Default false.
	LinkOnly bool
}

// ExchangeClient is a confidential client (the gateway) allowed to use token exchange (RFC 8693)
// to obtain a user's GitHub token. Exchange clients exist only in configuration; dynamically
// registered clients can never exchange.
type ExchangeClient struct {
	// ID is the client_id, e.g. "gateway".
	ID string
	// Secret authenticates the client (client_secret_basic or client_secret_post). Required.
	Secret string
	// Audiences are the resources (MCP URLs) this client serves: it may exchange only subject
	// tokens whose aud contains one of them (compared canonically, as the resource parameter is).
	// Required, at least one: any client may ask this server for a token for any resource, so an
	// exchange client accepting every audience would turn a token a user gave to another service
	// into that user's GitHub token. New refuses an exchange client without Audiences.
	Audiences []string
}

// Options configures a Server. Zero values take the documented defaults.
type Options struct {
	// Issuer is the exact issuer identifier, e.g. "https://idp.example.com". Required. Every
	// metadata URL is derived from it; request headers (Host, X-Forwarded-*) never are.
	Issuer string
	// Store persists clients, users, tokens and keys. Default: a new MemoryStore (nothing survives
	// a restart). The Server does not close a Store it was given.
	Store Store
	// Storage, if set, is used instead of Store: a backend that implements the typed Storage
	// operations itself (each atomic one in its own terms) rather than on a key-value Store.
	// EncryptionKey is then required and Store is ignored. The Server does not close a Storage it
	// was given. OpenPostgresStorage returns one that several Servers (replicas) may share.
	Storage Storage
	// EncryptionKey (32 bytes) encrypts GitHub tokens and signing keys with AES-256-GCM. Required
	// when Store is set; with the default memory store a random key is generated.
	EncryptionKey []byte
	// SigningAlgorithm is "RS256" (default) or "ES256".
	SigningAlgorithm string
	// KeyRotationInterval is how long a signing key signs before a successor takes over.
	// Default 30 days (0 takes it); must not be negative.
	KeyRotationInterval time.Duration
	// KeyPrePublish is how long a new key is published in the JWKS before it signs. Default 1h.
	// It must be longer than CleanupInterval: every Server sharing a Storage reloads the keys once
	// per CleanupInterval, and each must publish a key before any of them signs with it.
	KeyPrePublish time.Duration

	// GitHub configures real GitHub login. See GitHubConfig.
	GitHub GitHubConfig
	// DevLogin enables the development login page (pick a username, optionally paste a GitHub
	// personal access token); sub is "dev:<username>". Never enable it in production. At least one
	// way in is required: DevLogin, GitHub.ClientID (without LinkOnly), Upstreams or IDJAGTrusts.
	DevLogin bool

	// Upstreams are OpenID providers users may sign in with (see UpstreamOIDC). Default none.
	Upstreams []UpstreamOIDC

	// IDJAGTrusts are the enterprise IdPs whose ID-JAGs (enterprise-managed authorization) the
	// token endpoint accepts with the jwt-bearer grant. Default none: the grant is off.
	IDJAGTrusts []IDJAGTrust

	// ExchangeClients may use token exchange. Default none: token exchange is disabled.
	ExchangeClients []ExchangeClient

	// DefaultResource is the access token audience when a request has no resource parameter.
	// Default: the issuer.
	DefaultResource string
	// AllowedResources, if non-empty, restricts the resource parameter to these values (plus
	// DefaultResource). Empty: any absolute http(s) URI without a fragment.
	AllowedResources []string
	// Scopes are the scopes clients may request (scopes_supported). Default ["mcp"]. A request
	// without scope gets the client's registered scope, else all of these.
	Scopes []string

	// AccessTokenTTL default 1h.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the absolute lifetime of a refresh token family. Default 30 days.
	RefreshTokenTTL time.Duration
	// RefreshGrace is how long a rotated refresh token may still be used (concurrent refreshes)
	// before reuse revokes the family. Default 10s. Negative means no grace.
	RefreshGrace time.Duration
	// CodeTTL is the authorization code lifetime. Default 60s.
	CodeTTL time.Duration
	// SessionTTL is the browser session lifetime. Default 12h.
	SessionTTL time.Duration
	// LoginTTL bounds a pending authorization request and a GitHub login state. Default 10m.
	LoginTTL time.Duration
	// CleanupInterval is the period of expired-record cleanup and key rotation (and of reloading
	// the keys other Servers on the same Storage created). Default 5m; less than KeyPrePublish.
	CleanupInterval time.Duration

	// RegistrationInitialToken, if set, is required as a Bearer token on POST /register
	// (RFC 7591 initial access token).
	RegistrationInitialToken string
	// RegistrationRateLimit is the number of registration attempts (failed ones included, such as
	// a wrong initial access token) one remote address may make per RegistrationRateWindow.
	// Default 20; negative disables. The address is r.RemoteAddr only:
	// whoever embeds the handler behind a proxy must set RemoteAddr from trusted proxies.
	RegistrationRateLimit int
	// RegistrationRateWindow default 1 minute.
	RegistrationRateWindow time.Duration
	// AuthorizeRateLimit is the number of pending authorization requests (valid /authorize
	// requests, each of which stores a record until sign-in) one remote address may start per
	// AuthorizeRateWindow; beyond it /authorize answers a 429 page. Default 100; negative
	// disables. The address is r.RemoteAddr only, as for RegistrationRateLimit.
	AuthorizeRateLimit int
	// AuthorizeRateWindow default 1 minute. The same limit, counted apart, bounds the sign-ins
	// one address starts at GitHub or an upstream OpenID provider (/login/github,
	// /login/oidc/{name}), each of which also stores a record (the login state) until it ends.
	AuthorizeRateWindow time.Duration
	// MaxClients caps the number of registered clients. Default 10000.
	MaxClients int
	// MaxRedirectURIs caps redirect_uris per client. Default 10.
	MaxRedirectURIs int

	// AllowPrivateCIMD lets Client ID Metadata Documents be fetched from private, loopback and
	// link-local addresses and from any port (otherwise only 443, the default https port).
	// Development and tests only. Default false.
	AllowPrivateCIMD bool
	// CIMDRootCAs, if set, replaces the system roots when fetching metadata documents (tests).
	CIMDRootCAs *x509.CertPool
	// CIMDTimeout bounds one metadata document fetch. Default 5s.
	CIMDTimeout time.Duration
	// CIMDMaxBytes caps a metadata document. Default 64 KiB.
	CIMDMaxBytes int64
	// CIMDCacheTTL is how long a fetched document is reused. Default 5m.
	CIMDCacheTTL time.Duration
	// CIMDFailureCacheTTL is how long a failed document fetch (unreachable, not 200, invalid) is
	// remembered: requests naming that client_id are refused without fetching again. Default 1m.
	CIMDFailureCacheTTL time.Duration
	// CIMDFetchLimit is the number of metadata document fetches (cache misses) the whole server
	// makes per CIMDFetchWindow, whoever asks and whatever the URL: a token bucket holding this
	// many fetches, refilled continuously. Default 100; negative disables. Requests that would
	// fetch beyond any CIMDFetch limit are refused without fetching (503 temporarily_unavailable
	// with Retry-After at the token, revocation and introspection endpoints, a 503 page at
	// /authorize), and nothing is cached, so the document is fetched on a later try.
	CIMDFetchLimit int
	// CIMDFetchLimitPerHost is the number of document fetches per CIMDFetchWindow from one host
	// (the client_id URL's host name). Default 10; negative disables.
	CIMDFetchLimitPerHost int
	// CIMDFetchLimitPerAddress is the number of document fetches per CIMDFetchWindow that requests
	// from one remote address (r.RemoteAddr only, as for RegistrationRateLimit) may cause.
	// Default 20; negative disables.
	CIMDFetchLimitPerAddress int
	// CIMDFetchWindow is the refill period of the CIMDFetch limits. Default 1 minute.
	CIMDFetchWindow time.Duration
	// CIMDMaxConcurrentFetches caps document fetches in flight at once; a request that would
	// start one more is refused (Retry-After 1) rather than queued. Default 10; negative disables.
	CIMDMaxConcurrentFetches int

	// Now is the clock. Default time.Now.
	Now func() time.Time
	// HTTPClient is used for outbound calls (GitHub). Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives operational logs; never secrets. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Issuer == "" {
		return errors.New("idp: Options.Issuer is required")
	}
	iu, err := url.Parse(o.Issuer)
	if err != nil || (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" {
		return fmt.Errorf("idp: Options.Issuer must be an absolute http(s) URL without query or fragment")
	}
	if strings.HasSuffix(o.Issuer, "/") {
		return errors.New("idp: Options.Issuer must not end with a slash")
	}
	if o.SigningAlgorithm == "" {
		o.SigningAlgorithm = "RS256"
	}
	if o.SigningAlgorithm != "RS256" && o.SigningAlgorithm != "ES256" {
		return fmt.Errorf("idp: unsupported SigningAlgorithm %q (RS256 or ES256)", o.SigningAlgorithm)
	}
	// A negative duration would mean "never" or "always" where it is read
	// (a limiter window that never fills, a failure cached for ever), never
	// what a caller meant: refuse it rather than guess.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"KeyRotationInterval", o.KeyRotationInterval}, {"KeyPrePublish", o.KeyPrePublish},
		{"AccessTokenTTL", o.AccessTokenTTL}, {"RefreshTokenTTL", o.RefreshTokenTTL},
		{"CodeTTL", o.CodeTTL}, {"SessionTTL", o.SessionTTL}, {"LoginTTL", o.LoginTTL},
		{"CleanupInterval", o.CleanupInterval}, {"RegistrationRateWindow", o.RegistrationRateWindow},
		{"AuthorizeRateWindow", o.AuthorizeRateWindow}, {"CIMDTimeout", o.CIMDTimeout},
		{"CIMDCacheTTL", o.CIMDCacheTTL}, {"CIMDFailureCacheTTL", o.CIMDFailureCacheTTL},
		{"CIMDFetchWindow", o.CIMDFetchWindow},
	} {
		if d.v < 0 {
			return fmt.Errorf("idp: Options.%s must not be negative (0 takes the default)", d.name)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.KeyRotationInterval, 30*24*time.Hour)
	def(&o.KeyPrePublish, time.Hour)
	def(&o.AccessTokenTTL, time.Hour)
	def(&o.RefreshTokenTTL, 30*24*time.Hour)
	def(&o.RefreshGrace, 10*time.Second)
	def(&o.CodeTTL, 60*time.Second)
	def(&o.SessionTTL, 12*time.Hour)
	def(&o.LoginTTL, 10*time.Minute)
	def(&o.CleanupInterval, 5*time.Minute)
	def(&o.RegistrationRateWindow, time.Minute)
	// A pre-published key must reach every replica's JWKS before it signs, and replicas reload
	// the keys once per CleanupInterval (keyManager.maintain).
	if o.KeyPrePublish <= o.CleanupInterval {
		return fmt.Errorf("idp: Options.KeyPrePublish (%s) must be longer than Options.CleanupInterval (%s): every replica reloads the signing keys once per CleanupInterval and must publish a new key before it signs", o.KeyPrePublish, o.CleanupInterval)
	}
	def(&o.CIMDTimeout, 5*time.Second)
	def(&o.CIMDCacheTTL, 5*time.Minute)
	def(&o.CIMDFailureCacheTTL, time.Minute)
	def(&o.CIMDFetchWindow, time.Minute)
	for _, l := range []struct {
		v   *int
		def int
	}{
		{&o.CIMDFetchLimit, 100}, {&o.CIMDFetchLimitPerHost, 10}, {&o.CIMDFetchLimitPerAddress, 20},
		{&o.CIMDMaxConcurrentFetches, 10},
	} {
		if *l.v == 0 {
			*l.v = l.def
		}
	}
	if o.RefreshGrace < 0 {
		o.RefreshGrace = 0
	}
	if o.AuthorizeRateLimit == 0 {
		o.AuthorizeRateLimit = 100
	}
	def(&o.AuthorizeRateWindow, time.Minute)
	if o.RegistrationRateLimit == 0 {
		o.RegistrationRateLimit = 20
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 10000
	}
	if o.MaxRedirectURIs <= 0 {
		o.MaxRedirectURIs = 10
	}
	if o.CIMDMaxBytes <= 0 {
		o.CIMDMaxBytes = 64 << 10
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"mcp"}
	}
	if o.DefaultResource == "" {
		o.DefaultResource = o.Issuer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	g := &o.GitHub
	if g.BaseURL == "" {
		g.BaseURL = "https://github.com"
	}
	if g.APIURL == "" {
		g.APIURL = "https://api.github.com"
	}
	g.BaseURL = strings.TrimRight(g.BaseURL, "/")
	g.APIURL = strings.TrimRight(g.APIURL, "/")
	if g.HTTPClient == nil {
		g.HTTPClient = o.HTTPClient
	}
	if g.ClientID != "" && g.ClientSecret == "" {
		return errors.New("idp: GitHub.ClientSecret is required with GitHub.ClientID")
	}
	if g.LinkOnly && g.ClientID == "" {
		return errors.New("idp: GitHub.LinkOnly needs GitHub.ClientID")
	}
	if (g.ClientID == "" || g.LinkOnly) && !o.DevLogin && len(o.Upstreams) == 0 && len(o.IDJAGTrusts) == 0 {
		return errors.New("idp: configure GitHub (ClientID/ClientSecret), an upstream OpenID provider, an ID-JAG trust, or enable DevLogin")
	}
	for i := range o.IDJAGTrusts {
		if err := o.IDJAGTrusts[i].setDefaults(o.HTTPClient); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i := range o.Upstreams {
		u := &o.Upstreams[i]
		if err := u.setDefaults(o.HTTPClient); err != nil {
			return err
		}
		if seen[u.Name] {
			return fmt.Errorf("idp: upstream name %q is used twice", u.Name)
		}
		seen[u.Name] = true
	}
	for _, c := range o.ExchangeClients {
		if c.ID == "" || c.Secret == "" {
			return errors.New("idp: every ExchangeClient needs ID and Secret")
		}
		if len(c.Audiences) == 0 {
			return fmt.Errorf("idp: ExchangeClient %q has no Audiences: list the resources (MCP URLs) whose access tokens it may exchange", c.ID)
		}
		for _, a := range c.Audiences {
			if _, err := canonicalResource(a); err != nil {
				return fmt.Errorf("idp: ExchangeClient %q: audience %q is not an absolute http(s) URI without a fragment", c.ID, a)
			}
		}
	}
	return nil
}
