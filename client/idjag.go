package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The client side of enterprise-managed authorization (the MCP ext-auth extension
// io.modelcontextprotocol/enterprise-managed-authorization): a user already signed in at the
// company's IdP (the caller holds their ID token) gets an access token for an MCP server without
// a browser, in two requests:
//
//  1. RequestIDJAG: RFC 8693 token exchange at the IdP's token endpoint, the ID token as
//     subject_token, for an ID-JAG whose audience is the MCP server's authorization server and
//     whose resource is the MCP server.
//  2. RedeemIDJAG: the RFC 7523 jwt-bearer grant at the authorization server's token endpoint,
//     the ID-JAG as the assertion.
//
// Neither function logs or returns (in an error) a token, assertion or secret.

// Token type and grant identifiers of the extension.
const (
	TokenTypeIDJAG   = "urn:ietf:params:oauth:token-type:id-jag"
	TokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	GrantJWTBearer   = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// GrantProfileIDJAG is announced in authorization_grant_profiles_supported.
	GrantProfileIDJAG = "urn:ietf:params:oauth:grant-profile:id-jag"
	grantTypeExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// IDJAGRequest asks the enterprise IdP for an ID-JAG.
type IDJAGRequest struct {
	// TokenURL is the IdP's token endpoint. Required.
	TokenURL string
	// ClientID and ClientSecret authenticate this client at the IdP (client_secret_basic; the
	// extension requires client authentication for the exchange). ClientID is required.
	ClientID, ClientSecret string
	// IDToken is the user's ID token from the IdP (the subject token). Required.
	IDToken string
	// Audience is the issuer of the MCP server's authorization server. Required.
	Audience string
	// Resource is the MCP server's resource identifier (RFC 9728). Optional in the extension;
	// mcpgate's authorization server requires it in the ID-JAG.
	Resource string
	// Scopes requested. Optional.
	Scopes []string
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
}

// IDJAG is the IdP's answer: the assertion and what the IdP says it grants.
type IDJAG struct {
	// Assertion is the ID-JAG (a JWT). Treat it as a credential.
	Assertion string
	// Scope granted, when the IdP says.
	Scope string
	// ExpiresIn in seconds, when the IdP says.
	ExpiresIn int64
}

// RequestIDJAG runs the token exchange of step 1.
func RequestIDJAG(ctx context.Context, r IDJAGRequest) (*IDJAG, error) {
	if r.TokenURL == "" || r.ClientID == "" || r.IDToken == "" || r.Audience == "" {
		return nil, errors.New("an ID-JAG request needs the IdP token URL, a client ID, an ID token and the audience")
	}
	form := url.Values{
		"grant_type":           {grantTypeExchange},
		"requested_token_type": {TokenTypeIDJAG},
		"subject_token":        {r.IDToken},
		"subject_token_type":   {TokenTypeIDToken},
		"audience":             {r.Audience},
	}
	if r.Resource != "" {
		form.Set("resource", r.Resource)
	}
	if len(r.Scopes) > 0 {
		form.Set("scope", strings.Join(r.Scopes, " "))
	}
	body, err := postTokenForm(ctx, r.HTTPClient, r.TokenURL, form, r.ClientID, r.ClientSecret)
	if err != nil {
		return nil, err
	}
	var v struct {
		AccessToken     string  `json:"access_token"`
		IssuedTokenType string  `json:"issued_token_type"`
		Scope           string  `json:"scope"`
		ExpiresIn       flexInt `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.AccessToken == "" {
		return nil, fmt.Errorf("the IdP %s sent no ID-JAG", r.TokenURL)
	}
	if v.IssuedTokenType != TokenTypeIDJAG {
		return nil, fmt.Errorf("the IdP %s issued a %q, not an ID-JAG", r.TokenURL, sanitize(v.IssuedTokenType))
	}
	return &IDJAG{Assertion: v.AccessToken, Scope: v.Scope, ExpiresIn: int64(v.ExpiresIn)}, nil
}

// IDJAGGrant presents an ID-JAG at the MCP server's authorization server.
type IDJAGGrant struct {
	// TokenURL is the authorization server's token endpoint. Required.
	TokenURL string
	// ClientID (required) and ClientSecret (empty for a public client) of this client at the
	// authorization server: the ID-JAG's client_id must be this client.
	ClientID, ClientSecret string
	// Assertion is the ID-JAG. Required.
	Assertion string
	// Scopes requested (optional): the server issues their intersection with the ID-JAG's.
	Scopes []string
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
}

// IDJAGToken is the authorization server's access token.
type IDJAGToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

// RedeemIDJAG runs the jwt-bearer grant of step 2.
func RedeemIDJAG(ctx context.Context, g IDJAGGrant) (*IDJAGToken, error) {
	if g.TokenURL == "" || g.ClientID == "" || g.Assertion == "" {
		return nil, errors.New("an ID-JAG grant needs the token URL, a client ID and the assertion")
	}
	form := url.Values{"grant_type": {GrantJWTBearer}, "assertion": {g.Assertion}}
	if len(g.Scopes) > 0 {
		form.Set("scope", strings.Join(g.Scopes, " "))
	}
	body, err := postTokenForm(ctx, g.HTTPClient, g.TokenURL, form, g.ClientID, g.ClientSecret)
	if err != nil {
		return nil, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return nil, fmt.Errorf("the token endpoint %s sent no access_token", g.TokenURL)
	}
	if !strings.EqualFold(tr.TokenType, "Bearer") {
		return nil, fmt.Errorf("the token endpoint %s issued a %q token; only Bearer is supported", g.TokenURL, sanitize(tr.TokenType))
	}
	return &IDJAGToken{AccessToken: tr.AccessToken, TokenType: "Bearer", ExpiresIn: int64(tr.ExpiresIn), Scope: tr.Scope}, nil
}

// IDJAGTokenEndpoint reads the authorization server's metadata (RFC 8414, then OpenID
// discovery) and returns its token endpoint, refusing a server that does not announce the ID-JAG
// grant profile.
func IDJAGTokenEndpoint(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	urls, err := asMetadataURLs(issuer)
	if err != nil {
		return "", err
	}
	for _, u := range urls {
		var md struct {
			Issuer        string   `json:"issuer"`
			TokenEndpoint string   `json:"token_endpoint"`
			Profiles      []string `json:"authorization_grant_profiles_supported"`
		}
		body, status, err := getBody(ctx, hc, u)
		if err != nil {
			return "", err
		}
		if status != http.StatusOK || json.Unmarshal(body, &md) != nil {
			continue
		}
		if md.Issuer != issuer {
			return "", fmt.Errorf("the metadata at %s names issuer %q, not %q", u, sanitize(md.Issuer), issuer)
		}
		if !slices.Contains(md.Profiles, GrantProfileIDJAG) {
			return "", fmt.Errorf("the authorization server %s does not announce ID-JAG support (authorization_grant_profiles_supported)", issuer)
		}
		if md.TokenEndpoint == "" {
			return "", fmt.Errorf("the authorization server %s has no token endpoint", issuer)
		}
		return md.TokenEndpoint, nil
	}
	return "", fmt.Errorf("no authorization server metadata found for %s", issuer)
}

func getBody(ctx context.Context, hc *http.Client, u string) ([]byte, int, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot reach %s: %w", u, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	return b, resp.StatusCode, err
}

// postTokenForm posts form with client_secret_basic (or client_id alone for a public client)
// and returns the body of a 200 answer; any other status is an *OAuthError.
func postTokenForm(ctx context.Context, hc *http.Client, endpoint string, form url.Values, id, secret string) ([]byte, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, err
	}
	clientCreds{ID: id, Secret: secret, Method: "client_secret_basic"}.apply(req, form)
	enc := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(enc))
	req.ContentLength = int64(len(enc))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", endpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("cannot read the answer of %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, oauthErrorFrom(endpoint, resp.StatusCode, body)
	}
	return body, nil
}
