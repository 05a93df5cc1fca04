package keycloaktest

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/oauth2"
)

// DefaultRedirectURI is CodeFlow's default redirect URI. Nothing needs to listen there: the
// Browser stops at the redirect.
const DefaultRedirectURI = "http://127.0.0.1/callback"

// CodeFlow describes one sign-in: the authorization code flow with PKCE (S256) at a public client
// of the server's first realm, through Keycloak's login pages, then the code's redemption.
type CodeFlow struct {
	// ClientID is the public client; default PublicClient.
	ClientID string
	// RedirectURI must match one of the client's; default DefaultRedirectURI.
	RedirectURI string
	// Scopes requested; default "openid".
	Scopes []string
	// Provider is the alias of the identity provider whose button is followed on the login page
	// (e.g. GitHubAlias); "" signs in with Password on Keycloak's own form.
	Provider string
	// Login is the GitHub login (with Provider) or the Keycloak username (without).
	Login string
	// Password of a Keycloak user; only without Provider.
	Password string
	// LoginHint sends Login as login_hint. With the realm's passLoginHint the GitHub fake then
	// approves at once; without it, the Browser picks Login on the fake's chooser page.
	LoginHint bool
	// Params are further authorization request parameters (e.g. "resource").
	Params url.Values
}

// SignIn runs f with a fresh Browser and returns the token response. It checks the callback's
// state and its RFC 9207 iss. An error=... callback is returned as an error carrying error and
// error_description.
func (s *Server) SignIn(ctx context.Context, f CodeFlow) (*oauth2.Token, error) {
	if f.ClientID == "" {
		f.ClientID = PublicClient
	}
	if f.RedirectURI == "" {
		f.RedirectURI = DefaultRedirectURI
	}
	if len(f.Scopes) == 0 {
		f.Scopes = []string{"openid"}
	}
	conf := &oauth2.Config{
		ClientID: f.ClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.Issuer() + "/protocol/openid-connect/auth",
			TokenURL:  s.Issuer() + "/protocol/openid-connect/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: f.RedirectURI,
		Scopes:      f.Scopes,
	}
	verifier, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if f.LoginHint {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", f.Login))
	}
	for k, vs := range f.Params {
		for _, v := range vs {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	authURL := conf.AuthCodeURL(state, opts...)
	b := NewBrowser()
	var cb *url.URL
	var err error
	if f.Provider != "" {
		cb, err = b.SignInWithGitHub(ctx, authURL, f.RedirectURI, f.Provider, f.Login)
	} else {
		cb, err = b.SignInWithPassword(ctx, authURL, f.RedirectURI, f.Login, f.Password)
	}
	if err != nil {
		return nil, err
	}
	q := cb.Query()
	if q.Get("state") != state {
		return nil, errors.New("keycloaktest: callback state does not match")
	}
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("keycloaktest: authorization error %s: %s", e, q.Get("error_description"))
	}
	if iss := q.Get("iss"); iss != s.Issuer() {
		return nil, fmt.Errorf("keycloaktest: callback iss %q, want %q", iss, s.Issuer())
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("keycloaktest: code redemption: %w", err)
	}
	return tok, nil
}
