package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
)

// expirySkew is how long before its expiry an access token is treated as expired.
const expirySkew = 30 * time.Second

// Client talks to one MCP server on behalf of one user. Its methods are safe for concurrent
// use; logins and refreshes are serialized. Close releases the MCP session.
type Client struct {
	cfg       Config
	mcpURL    *url.URL
	oauthHTTP *http.Client
	mcpHTTP   *http.Client
	store     *store

	loginMu sync.Mutex // serializes refreshes and logins

	mu      sync.Mutex // guards the fields below
	tok     *tokenRecord
	loaded  bool
	asMD    map[string]*AuthServerMetadata
	authErr error // a login failure, reported by every request of the current operation

	mcpMu sync.Mutex
	mcp   *mcpclient.Client
}

// New checks cfg, fills in its defaults and returns a Client. It makes no network request.
func New(cfg Config) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.MCPURL) // validated by setDefaults
	oauthHTTP, mcpHTTP, err := cfg.httpClients()
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg:       cfg,
		mcpURL:    u,
		oauthHTTP: oauthHTTP,
		mcpHTTP:   mcpHTTP,
		store:     &store{dir: cfg.CacheDir},
		asMD:      map[string]*AuthServerMetadata{},
	}, nil
}

// Close ends the MCP session, if one was opened. The cached tokens stay.
func (c *Client) Close() error {
	c.mcpMu.Lock()
	defer c.mcpMu.Unlock()
	if c.mcp == nil {
		return nil
	}
	err := c.mcp.Close()
	c.mcp = nil
	return err
}

// Login discovers the server's authorization server and logs in through the browser, even if
// a cached token exists, then caches the new tokens.
func (c *Client) Login(ctx context.Context) error {
	c.beginOperation()
	_, err := c.login(ctx, nil, nil, "", "")
	return err
}

// beginOperation clears the failure of a previous operation.
func (c *Client) beginOperation() {
	c.mu.Lock()
	c.authErr = nil
	c.mu.Unlock()
}

// login discovers (from ch, or from a fresh unauthenticated request) and runs the browser
// flow. Cached tokens it replaces are revoked first (see revokeReplaced). scopes overrides the default scope choice when non-nil. When stale is not empty, the
// login is skipped if another request replaced that access token meanwhile with one that
// has the scopes wanted, so concurrent failures cause a single browser login. reason, if
// any, is printed before a login actually starts.
func (c *Client) login(ctx context.Context, ch *Challenge, scopes []string, stale, reason string) (*tokenRecord, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if stale != "" {
		if rec, _ := c.cachedToken(); rec != nil && rec.AccessToken != stale && !c.expired(rec) && coversScopes(strings.Join(rec.Scopes, " "), scopes) {
			return rec, nil
		}
	}
	if reason != "" {
		fmt.Fprintln(c.cfg.Stderr, reason)
	}
	fmt.Fprintf(c.cfg.Stderr, "Discovering the authorization server of %s\n", c.cfg.MCPURL)
	d, err := c.Discover(ctx, ch)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.asMD[d.Issuer] = &d.AS
	c.mu.Unlock()
	if err := c.checkCIMDSupport(d); err != nil {
		return nil, err // before revoking anything: the cached tokens stay usable
	}
	old, _ := c.cachedToken()
	if old != nil {
		c.revokeReplaced(ctx, old)
	}
	if scopes == nil {
		scopes = c.cfg.Scopes
		if len(scopes) == 0 {
			scopes = d.Scopes()
		}
	}
	rec, err := c.authorize(ctx, d, scopes)
	if err != nil {
		return nil, err
	}
	if err := c.store.saveToken(rec); err != nil {
		return nil, err
	}
	if old != nil && c.store.tokenPath(old) != c.store.tokenPath(rec) {
		_ = c.store.deleteToken(old) // another issuer or resource now: the old file is stale
	}
	c.setToken(rec)
	scopeText := strings.Join(rec.Scopes, " ")
	if scopeText == "" {
		scopeText = "none"
	}
	fmt.Fprintf(c.cfg.Stderr, "Logged in at %s (scopes: %s)\n", d.Issuer, scopeText)
	return rec, nil
}

func (c *Client) setToken(rec *tokenRecord) {
	c.mu.Lock()
	c.tok, c.loaded = rec, true
	c.mu.Unlock()
}

// cachedToken returns the token record for this server, loading it from the cache once.
func (c *Client) cachedToken() (*tokenRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		rec, err := c.store.findToken(c.cfg.MCPURL)
		if err != nil {
			return nil, err
		}
		c.tok, c.loaded = rec, true
	}
	return c.tok, nil
}

func (c *Client) expired(rec *tokenRecord) bool {
	return !rec.Expiry.IsZero() && !c.cfg.Now().Add(expirySkew).Before(rec.Expiry)
}

// accessToken returns a usable access token: the cached one, or a refreshed one when it has
// expired. It returns "" when there is none (the server's 401 then starts a login).
func (c *Client) accessToken(ctx context.Context) (string, error) {
	rec, err := c.cachedToken()
	if err != nil || rec == nil {
		return "", err
	}
	if !c.expired(rec) {
		return rec.AccessToken, nil
	}
	if rec.RefreshToken == "" {
		return "", nil
	}
	fresh, err := c.refresh(ctx, rec.AccessToken)
	if err != nil {
		c.cfg.Logger.Debug("refresh failed", "err", err)
		return "", nil
	}
	return fresh.AccessToken, nil
}

// refresh exchanges the refresh token (RFC 6749 §6, with the resource of RFC 8707) unless the
// access token was already replaced since stale was used.
func (c *Client) refresh(ctx context.Context, stale string) (*tokenRecord, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	rec, err := c.cachedToken()
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errors.New("not logged in")
	}
	if rec.AccessToken != stale && !c.expired(rec) {
		return rec, nil // another request refreshed meanwhile
	}
	if rec.RefreshToken == "" {
		return nil, errors.New("no refresh token")
	}
	md, err := c.asMetadata(ctx, rec.Issuer)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.cfg.Stderr, "Refreshing the access token at %s\n", rec.Issuer)
	form := url.Values{}
	form.Set("grant_type", "refresh_token")
	form.Set("refresh_token", rec.RefreshToken)
	form.Set("resource", rec.Resource)
	tr, err := c.tokenRequest(ctx, md.TokenEndpoint, form, c.credsFor(rec.Issuer, md, rec.ClientID))
	if err != nil {
		var oe *OAuthError
		if errors.As(err, &oe) && (oe.Code == "invalid_grant" || oe.Code == "invalid_client" || oe.Code == "unauthorized_client") {
			// The refresh token is dead: forget it so that no later run retries it.
			dead := *rec
			dead.RefreshToken = ""
			if err := c.store.saveToken(&dead); err == nil {
				c.setToken(&dead)
			}
		}
		return nil, fmt.Errorf("the token refresh failed: %w", err)
	}
	d := &Discovery{Issuer: rec.Issuer, PRM: ProtectedResourceMetadata{Resource: rec.Resource}}
	fresh := c.recordFrom(d, rec.ClientID, tr, nil, rec)
	fresh.MCPURL = rec.MCPURL
	if err := c.store.saveToken(fresh); err != nil {
		return nil, err
	}
	c.setToken(fresh)
	return fresh, nil
}

// asMetadata returns the (once per Client) discovered metadata of issuer.
func (c *Client) asMetadata(ctx context.Context, issuer string) (*AuthServerMetadata, error) {
	c.mu.Lock()
	md := c.asMD[issuer]
	c.mu.Unlock()
	if md != nil {
		return md, nil
	}
	md, _, err := c.discoverAS(ctx, issuer)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.asMD[issuer] = md
	c.mu.Unlock()
	return md, nil
}

// ensureToken makes sure a usable token exists before an MCP session starts, logging in if the
// server asks for authorization. A server that does not is used without a token.
func (c *Client) ensureToken(ctx context.Context) error {
	tok, err := c.accessToken(ctx)
	if err != nil || tok != "" {
		return err
	}
	ch, ok, err := c.probe(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	_, err = c.login(ctx, &ch, nil, "", "")
	return err
}

// Logout revokes the cached tokens at the authorization server (RFC 7009: the refresh token
// first, then the access token) and deletes them. A revocation failure is reported on Stderr;
// the tokens are deleted locally in any case. Logging out without a cached token is not an error.
func (c *Client) Logout(ctx context.Context) error {
	c.beginOperation()
	_ = c.Close()
	rec, err := c.cachedToken()
	if err != nil {
		return err
	}
	if rec == nil {
		fmt.Fprintf(c.cfg.Stderr, "Not logged in to %s\n", c.cfg.MCPURL)
		return nil
	}
	if err := c.revokeAll(ctx, rec); err != nil {
		fmt.Fprintf(c.cfg.Stderr, "Warning: %s; deleting the tokens locally only\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if err := c.store.deleteToken(rec); err != nil {
		return fmt.Errorf("cannot delete the cached tokens: %w", err)
	}
	c.mu.Lock()
	c.tok = nil
	c.mu.Unlock()
	fmt.Fprintf(c.cfg.Stderr, "Logged out of %s\n", c.cfg.MCPURL)
	return nil
}

// Status describes the cached login for the MCP server. It never contains a token.
type Status struct {
	// LoggedIn is true when a token is cached for the server.
	LoggedIn bool `json:"logged_in"`
	// MCPURL is the server asked about.
	MCPURL string `json:"mcp_url"`
	// Issuer is the authorization server that issued the tokens.
	Issuer string `json:"issuer,omitempty"`
	// Resource is the RFC 8707 resource the tokens are for.
	Resource string `json:"resource,omitempty"`
	// ClientID is the OAuth client the tokens were issued to.
	ClientID string `json:"client_id,omitempty"`
	// Scopes are the granted scopes.
	Scopes []string `json:"scopes,omitempty"`
	// Expiry is the access token's expiry; zero when the server gave none.
	Expiry time.Time `json:"expiry,omitzero"`
	// Expired is true when the access token has expired (or is about to).
	Expired bool `json:"expired"`
	// Refreshable is true when a refresh token is cached.
	Refreshable bool `json:"refreshable"`
	// ObtainedAt is when the tokens were obtained.
	ObtainedAt time.Time `json:"obtained_at,omitzero"`
}

// Status reports the cached login without any network request.
func (c *Client) Status() (Status, error) {
	rec, err := c.cachedToken()
	if err != nil {
		return Status{}, err
	}
	st := Status{MCPURL: c.cfg.MCPURL}
	if rec == nil {
		return st, nil
	}
	st.LoggedIn = true
	st.Issuer, st.Resource, st.ClientID = rec.Issuer, rec.Resource, rec.ClientID
	st.Scopes = slices.Clone(rec.Scopes)
	st.Expiry, st.Expired = rec.Expiry, c.expired(rec)
	st.Refreshable = rec.RefreshToken != ""
	st.ObtainedAt = rec.ObtainedAt
	return st, nil
}
