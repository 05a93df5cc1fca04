// Package client is mcpgate's MCP client library: it discovers how an MCP server is protected
// (RFC 9728, RFC 8414, OpenID Connect discovery), registers itself (RFC 7591) unless given a
// client ID or the URL of its Client ID Metadata Document, logs the user in through the system
// browser with the authorization code flow, PKCE S256 and a loopback redirect (RFC 8252,
// RFC 7636, RFC 8707 resource indicators, RFC 9207 issuer checks), caches and refreshes tokens,
// and talks MCP over streamable HTTP with mcp-go.
//
// The program in client/cmd/mcpgate-client is a thin command line around this package.
package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config configures a Client. Only MCPURL is required.
type Config struct {
	// MCPURL is the MCP endpoint, e.g. "https://mcp.example.com/mcp". Required; http or https.
	MCPURL string

	// ClientID selects a pre-registered OAuth client. Empty (default): use ClientMetadataURL if
	// set, else register dynamically (RFC 7591) and cache the registration per issuer.
	ClientID string
	// ClientMetadataURL is the https URL of this client's Client ID Metadata Document
	// (draft-ietf-oauth-client-id-metadata-document), used as its client_id: the authorization
	// server fetches the document, nothing is registered and no registration is cached. The
	// server's metadata must say client_id_metadata_document_supported: true, otherwise the
	// login fails (there is no fallback to dynamic registration). The URL follows the draft's
	// rules (see CheckClientMetadataURL): https, a path without . or .. segments, no fragment,
	// no username or password; a query is allowed but discouraged, and mcpgate's IdP refuses
	// one. Plain http is accepted only for a loopback host, for tests. NewClientMetadataDocument builds the document to host there.
	// Excludes ClientID. Default empty: not used.
	ClientMetadataURL string
	// ClientSecret is the pre-registered client's secret; empty for a public client (default).
	ClientSecret string
	// RegistrationToken is an initial access token sent as a bearer token with the dynamic
	// registration request (RFC 7591 §3), as Keycloak requires. Default: none.
	RegistrationToken string
	// ForceRegister ignores a cached registration and registers anew (-reregister), for when
	// the authorization server has forgotten the cached client. Default false.
	ForceRegister bool
	// ClientName is the client_name sent at registration. Default "mcpgate-client".
	ClientName string
	// Scopes overrides the requested scopes. Default: the scope of the server's 401 challenge,
	// else the protected resource metadata's scopes_supported, else no scope parameter at all.
	Scopes []string

	// AuthParams are extra authorization request parameters, e.g. {"audience": ...} for
	// servers that predate RFC 8707. They never replace the protocol's own parameters
	// (client_id, redirect_uri, state, PKCE, resource, scope, response_type). Default: none.
	AuthParams map[string]string

	// CallbackPort pins the loopback redirect port on 127.0.0.1. Default 0: the port of the
	// cached registration when free, else an ephemeral port.
	CallbackPort int
	// OpenURL opens the authorization URL. Default: the system browser (xdg-open, open or
	// rundll32). The URL is always printed to Stderr as well.
	OpenURL func(string) error
	// NoBrowser skips opening anything; the user opens the printed URL. Default false.
	NoBrowser bool
	// LoginTimeout bounds the wait for the browser login. Default 5m.
	LoginTimeout time.Duration

	// CACertFile names a PEM file of extra trusted roots, added to the system roots (for
	// Caddy's local CA). Default: none.
	CACertFile string
	// RootCAs replaces the system roots when set (CACertFile is still added). Default: system.
	RootCAs *x509.CertPool
	// HTTPClient is used for every request (OAuth and MCP); when set, CACertFile and RootCAs
	// are ignored. Default: a client with the TLS roots above and a 30s timeout for OAuth calls.
	HTTPClient *http.Client

	// CacheDir holds registrations and tokens (directory 0700, files 0600). Default:
	// os.UserConfigDir()/mcpgate.
	CacheDir string
	// Stdout receives the human-readable results of Demo. Default os.Stdout.
	Stdout io.Writer
	// Stderr receives progress lines and the authorization URL. Default os.Stderr.
	Stderr io.Writer
	// Logger receives debug detail (never tokens or secrets). Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultLoginTimeout is the default Config.LoginTimeout.
const DefaultLoginTimeout = 5 * time.Minute

// defaultClientName is sent as client_name when Config.ClientName is empty.
const defaultClientName = "mcpgate-client"

// oauthTimeout bounds each OAuth HTTP exchange made with the default HTTP client.
const oauthTimeout = 30 * time.Second

// maxBodyBytes bounds every JSON document read from a server.
const maxBodyBytes = 1 << 20

func (cfg *Config) setDefaults() error {
	if cfg.MCPURL == "" {
		return errors.New("no MCP server URL given")
	}
	u, err := url.Parse(cfg.MCPURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("the MCP server URL %q is not an absolute http(s) URL", cfg.MCPURL)
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Errorf("the MCP server URL %q must not carry a fragment or user info", cfg.MCPURL)
	}
	if cfg.ClientMetadataURL != "" {
		if cfg.ClientID != "" {
			return errors.New("a pre-registered client ID (-client-id) and a client metadata URL (-client-metadata-url) exclude each other")
		}
		if cfg.ClientSecret != "" {
			return errors.New("a client metadata document names a public client: it takes no client secret")
		}
		if cfg.ForceRegister || cfg.RegistrationToken != "" {
			return errors.New("with a client metadata URL (-client-metadata-url) the client never registers: -reregister and -registration-token do not apply")
		}
		if err := CheckClientMetadataURL(cfg.ClientMetadataURL); err != nil {
			return err
		}
	}
	if cfg.ClientSecret != "" && cfg.ClientID == "" {
		return errors.New("a client secret needs a client ID (-client-id)")
	}
	if cfg.CallbackPort < 0 || cfg.CallbackPort > 65535 {
		return fmt.Errorf("callback port %d is out of range", cfg.CallbackPort)
	}
	if cfg.ClientName == "" {
		cfg.ClientName = defaultClientName
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = DefaultLoginTimeout
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("no cache directory: %w (pass -cache-dir)", err)
		}
		cfg.CacheDir = filepath.Join(dir, "mcpgate")
	}
	var scopes []string
	for _, s := range cfg.Scopes {
		scopes = append(scopes, strings.Fields(s)...)
	}
	cfg.Scopes = scopes
	return nil
}

// httpClients returns the client for OAuth exchanges and the one underneath MCP traffic (no
// overall timeout: MCP responses may stream).
func (cfg *Config) httpClients() (oauth, mcp *http.Client, err error) {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient, cfg.HTTPClient, nil
	}
	roots := cfg.RootCAs
	if roots == nil {
		roots, err = x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
	} else {
		roots = roots.Clone()
	}
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read the CA certificate file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("the CA certificate file %s holds no PEM certificate", cfg.CACertFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: oauthTimeout}, &http.Client{Transport: tr}, nil
}
