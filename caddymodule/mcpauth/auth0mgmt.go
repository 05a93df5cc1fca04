package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"golang.org/x/sync/singleflight"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

func init() {
	caddy.RegisterModule(Auth0Management{})
}

// Auth0 Management API defaults.
const (
	// auth0MgmtTokenSkew: a cached Management API token is replaced this long before it
	// expires, so no request goes out with a token about to die.
	auth0MgmtTokenSkew = time.Minute
	// auth0MaxBackoff caps how long a 429 stops calls to the Management API, whatever
	// X-RateLimit-Reset says.
	auth0MaxBackoff = time.Minute
	// auth0DefaultBackoff applies to a 429 without a usable X-RateLimit-Reset.
	auth0DefaultBackoff = 5 * time.Second
)

// Auth0Management is the upstream token source http.mcp_auth.token_sources.auth0_management,
// for tenants without Token Vault: Auth0 keeps a social connection's upstream token in the
// user's profile, readable with the Management API. The gateway gets a Management API token
// by client credentials (cached until shortly before it expires, one request at a time), then
// reads GET /api/v2/users/{sub} and takes the access_token of the identity whose provider is
// Connection (GitHub).
//
// The Management API's rate limit is respected: after a 429 no call is made until its
// X-RateLimit-Reset (at most a minute away), and every request meanwhile gets a 503 with
// Retry-After instead of a hot loop. A 401 from the Management API drops the cached
// Management token and retries once with a new one. The Management token is never logged.
//
// The client needs the Management API's read:users and read:user_idp_tokens permissions.
type Auth0Management struct {
	auth0Client

	// Audience is the Management API's identifier. Default: Domain + "/api/v2/".
	Audience string `json:"audience,omitempty"`

	state *auth0MgmtState
}

// auth0MgmtState is what Auth0Management learns at run time: the Management API token and
// the rate-limit back-off.
type auth0MgmtState struct {
	mu          sync.Mutex
	token       string
	expiry      time.Time
	backoffTill time.Time
	group       singleflight.Group
}

// CaddyModule returns the Caddy module information.
func (Auth0Management) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.mcp_auth.token_sources.auth0_management",
		New: func() caddy.Module { return new(Auth0Management) },
	}
}

// Provision resolves placeholders and sets defaults.
func (m *Auth0Management) Provision(ctx caddy.Context) error {
	if err := m.provision(ctx, m, "auth0_management"); err != nil {
		return err
	}
	m.state = new(auth0MgmtState)
	if m.Audience == "" && m.base != nil {
		m.Audience = m.endpoint("/api/v2/")
	}
	return nil
}

// Validate checks the configuration without revealing the secret.
func (m *Auth0Management) Validate() error { return m.validate("auth0_management") }

// Cleanup closes idle connections.
func (m *Auth0Management) Cleanup() error {
	m.cleanup()
	return nil
}

// auth0User is the part of GET /api/v2/users/{id} that matters here.
type auth0User struct {
	Identities []struct {
		Provider    string `json:"provider"`
		Connection  string `json:"connection"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	} `json:"identities"`
}

// errMgmtTokenRejected means the Management API refused the cached Management token.
var errMgmtTokenRejected = errors.New("management token rejected")

// UpstreamToken implements TokenSource.
func (m *Auth0Management) UpstreamToken(ctx context.Context, claims *jwtverify.Claims, _ string) (Token, error) {
	if claims == nil || claims.Issuer != m.Issuer || claims.Subject == "" {
		return Token{}, ErrNoUpstreamToken
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(m.Timeout))
	defer cancel()
	for attempt := 0; ; attempt++ {
		if err := m.checkBackoff(); err != nil {
			return Token{}, err
		}
		mt, err := m.managementToken(ctx)
		if err != nil {
			return Token{}, err
		}
		tok, err := m.readUser(ctx, mt, claims.Subject)
		if errors.Is(err, errMgmtTokenRejected) {
			m.dropManagementToken(mt)
			if attempt == 0 {
				continue
			}
			return Token{}, fmt.Errorf("%w: the Management API refused a fresh Management token (does the client have read:users and read:user_idp_tokens?)", ErrSourceUnavailable)
		}
		return tok, err
	}
}

// readUser reads the user's profile and picks the connection's upstream token.
func (m *Auth0Management) readUser(ctx context.Context, mgmtToken, sub string) (Token, error) {
	u := m.endpoint("/api/v2/users/" + url.PathEscape(sub))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?fields=identities&include_fields=true", nil)
	if err != nil {
		return Token{}, fmt.Errorf("%w: building the Management API request failed", ErrSourceUnavailable)
	}
	req.Header.Set("Authorization", "Bearer "+mgmtToken)
	req.Header.Set("Accept", "application/json")
	resp, err := m.out.do(req, "Auth0 Management API")
	if err != nil {
		return Token{}, err
	}
	switch resp.status {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return Token{}, errMgmtTokenRejected
	case http.StatusNotFound:
		// The user the token names no longer exists at the tenant.
		return Token{}, ErrSubjectTokenRejected
	case http.StatusTooManyRequests:
		return Token{}, m.startBackoff(resp.header)
	default:
		return Token{}, fmt.Errorf("%w: Auth0 Management API answered %d", ErrSourceUnavailable, resp.status)
	}
	var user auth0User
	if err := json.Unmarshal(resp.body, &user); err != nil {
		return Token{}, fmt.Errorf("%w: Auth0 Management API returned an unreadable user", ErrSourceUnavailable)
	}
	for _, id := range user.Identities {
		if id.Provider != m.Connection && id.Connection != m.Connection {
			continue
		}
		if id.AccessToken == "" {
			return Token{}, ErrNoUpstreamToken
		}
		tok := Token{Value: id.AccessToken}
		if id.ExpiresIn > 0 {
			tok.Expiry = m.out.now().Add(time.Duration(id.ExpiresIn) * time.Second)
		}
		return tok, nil
	}
	return Token{}, ErrNoUpstreamToken
}

// managementToken returns the cached Management API token, or gets one by client credentials;
// concurrent callers share one request.
func (m *Auth0Management) managementToken(ctx context.Context) (string, error) {
	st := m.state
	st.mu.Lock()
	if st.token != "" && m.out.now().Before(st.expiry) {
		t := st.token
		st.mu.Unlock()
		return t, nil
	}
	st.mu.Unlock()
	// The shared request outlives a caller that gives up; it is bounded by Timeout alone.
	ch := st.group.DoChan("", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(m.Timeout))
		defer cancel()
		return m.fetchManagementToken(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("%w: timed out waiting for a Management API token", ErrSourceUnavailable)
	}
}

func (m *Auth0Management) fetchManagementToken(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {m.ClientID},
		"client_secret": {m.secret},
		"audience":      {m.Audience},
	}
	req, err := newFormRequest(ctx, m.endpoint("/oauth/token"), form)
	if err != nil {
		return "", err
	}
	resp, err := m.out.do(req, "Auth0 token endpoint")
	if err != nil {
		return "", err
	}
	switch {
	case resp.status == http.StatusTooManyRequests:
		return "", m.startBackoff(resp.header)
	case resp.status != http.StatusOK:
		return "", fmt.Errorf("%w: Auth0 refused the Management API client credentials (%d %s)", ErrSourceUnavailable, resp.status, oauthErrorCode(resp.body))
	}
	var tr tokenResponse
	if err := json.Unmarshal(resp.body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("%w: Auth0 token endpoint returned 200 without an access_token", ErrSourceUnavailable)
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl <= 2*auth0MgmtTokenSkew {
		// A short or missing lifetime: use the token for this request only.
		ttl = 2 * auth0MgmtTokenSkew
	}
	m.state.mu.Lock()
	m.state.token, m.state.expiry = tr.AccessToken, m.out.now().Add(ttl-auth0MgmtTokenSkew)
	m.state.mu.Unlock()
	return tr.AccessToken, nil
}

// dropManagementToken forgets t if it is still the cached token.
func (m *Auth0Management) dropManagementToken(t string) {
	m.state.mu.Lock()
	if m.state.token == t {
		m.state.token, m.state.expiry = "", time.Time{}
	}
	m.state.mu.Unlock()
}

// startBackoff records a 429: no call is made until the reset it names, at most
// auth0MaxBackoff away.
func (m *Auth0Management) startBackoff(h http.Header) error {
	now := m.out.now()
	until := now.Add(auth0DefaultBackoff)
	if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		if reset := time.Unix(s, 0); reset.After(now) {
			until = reset
		}
	}
	if until.After(now.Add(auth0MaxBackoff)) {
		until = now.Add(auth0MaxBackoff)
	}
	m.state.mu.Lock()
	if until.After(m.state.backoffTill) {
		m.state.backoffTill = until
	}
	m.state.mu.Unlock()
	return fmt.Errorf("%w: Auth0 rate limit reached; no calls for %s", ErrSourceUnavailable, until.Sub(now).Round(time.Second))
}

// checkBackoff fails fast while a 429's back-off lasts.
func (m *Auth0Management) checkBackoff() error {
	m.state.mu.Lock()
	till := m.state.backoffTill
	m.state.mu.Unlock()
	if now := m.out.now(); now.Before(till) {
		return fmt.Errorf("%w: Auth0 rate limit reached; no calls for %s", ErrSourceUnavailable, till.Sub(now).Round(time.Second))
	}
	return nil
}

// Interface guards
var (
	_ TokenSource           = (*Auth0Management)(nil)
	_ issuerBinder          = (*Auth0Management)(nil)
	_ caddy.CleanerUpper    = (*Auth0Management)(nil)
	_ caddy.Provisioner     = (*Auth0Management)(nil)
	_ caddy.Validator       = (*Auth0Management)(nil)
	_ caddyfile.Unmarshaler = (*Auth0Management)(nil)
)
