package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/loopback"
)

// ProtectedResourceMetadata is the RFC 9728 document of a protected resource (fields we use).
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
}

// AuthServerMetadata is the RFC 8414 / OpenID Connect discovery document (fields we use).
type AuthServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported (RFC 9207) makes the client require iss.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// ClientIDMetadataDocumentSupported (draft-ietf-oauth-client-id-metadata-document) allows
	// an https URL of a client metadata document as client_id (Config.ClientMetadataURL).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
}

// Discovery is everything learned about how an MCP server is protected.
type Discovery struct {
	// MCPURL is the MCP endpoint the discovery started from.
	MCPURL string
	// PRMURL is where the protected resource metadata was found.
	PRMURL string
	// PRM is the protected resource metadata; PRM.Resource is the RFC 8707 resource value sent
	// to the authorization server.
	PRM ProtectedResourceMetadata
	// Issuer is the authorization server chosen (the first of PRM.AuthorizationServers).
	Issuer string
	// ASMetadataURL is where the authorization server metadata was found.
	ASMetadataURL string
	// AS is the authorization server metadata; AS.Issuer == Issuer.
	AS AuthServerMetadata
	// ChallengeScopes are the scopes named by the server's 401 challenge, if any.
	ChallengeScopes []string
}

// Scopes returns the scopes to request by default: the challenge's, else the resource
// metadata's scopes_supported (possibly none).
func (d *Discovery) Scopes() []string {
	if len(d.ChallengeScopes) > 0 {
		return slices.Clone(d.ChallengeScopes)
	}
	var out []string
	for _, s := range d.PRM.ScopesSupported {
		out = append(out, strings.Fields(s)...) // drops empty entries: never send an empty scope
	}
	return out
}

// probe sends an unauthenticated MCP request and returns the Bearer challenge of a 401, if any.
func (c *Client) probe(ctx context.Context) (Challenge, bool, error) {
	body := []byte(`{"jsonrpc":"2.0","id":0,"method":"ping"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.MCPURL, bytes.NewReader(body))
	if err != nil {
		return Challenge{}, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.oauthHTTP.Do(req)
	if err != nil {
		return Challenge{}, false, fmt.Errorf("cannot reach the MCP server at %s: %w", c.cfg.MCPURL, unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return Challenge{}, false, nil
	}
	ch, ok := BearerChallenge(resp.Header.Values("WWW-Authenticate"))
	return ch, ok, nil
}

// Discover finds the protected resource metadata and the authorization server metadata of the
// MCP server, starting from the given 401 challenge (or, when ch is nil, from a fresh
// unauthenticated request).
func (c *Client) Discover(ctx context.Context, ch *Challenge) (*Discovery, error) {
	if ch == nil {
		got, ok, err := c.probe(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			ch = &got
		}
	}
	d := &Discovery{MCPURL: c.cfg.MCPURL}
	var candidates []string
	if ch != nil {
		d.ChallengeScopes = strings.Fields(ch.Param("scope"))
		if rm := ch.Param("resource_metadata"); rm != "" {
			if err := c.checkEndpointURL(rm, "resource_metadata"); err != nil {
				return nil, err
			}
			candidates = append(candidates, rm)
		}
	}
	// The well-known URLs follow, also when the header named a URL that fails: the resource
	// check below guards whatever is found.
	for _, u := range prmURLs(c.mcpURL) {
		if !slices.Contains(candidates, u) {
			candidates = append(candidates, u)
		}
	}
	var tried []string
	for _, u := range candidates {
		var prm ProtectedResourceMetadata
		ok, err := c.getJSON(ctx, u, &prm)
		if err != nil {
			return nil, err
		}
		tried = append(tried, u)
		if !ok {
			continue
		}
		if prm.Resource == "" {
			return nil, fmt.Errorf("the protected resource metadata at %s has no resource", u)
		}
		if !resourceMatches(prm.Resource, c.cfg.MCPURL) {
			return nil, fmt.Errorf("the protected resource metadata at %s is for %s, not for %s", u, prm.Resource, c.cfg.MCPURL)
		}
		if len(prm.AuthorizationServers) == 0 || prm.AuthorizationServers[0] == "" {
			return nil, fmt.Errorf("the protected resource metadata at %s names no authorization server", u)
		}
		d.PRMURL, d.PRM = u, prm
		break
	}
	if d.PRMURL == "" {
		return nil, fmt.Errorf("no protected resource metadata for %s (tried %s)", c.cfg.MCPURL, strings.Join(tried, ", "))
	}
	d.Issuer = d.PRM.AuthorizationServers[0]
	md, mdURL, err := c.discoverAS(ctx, d.Issuer)
	if err != nil {
		return nil, err
	}
	d.AS, d.ASMetadataURL = *md, mdURL
	c.cfg.Logger.Debug("discovered", "prm", d.PRMURL, "issuer", d.Issuer, "as_metadata", mdURL)
	return d, nil
}

// discoverAS fetches the authorization server metadata of issuer in the MCP specification's
// path-aware order and checks it.
func (c *Client) discoverAS(ctx context.Context, issuer string) (*AuthServerMetadata, string, error) {
	if err := c.checkEndpointURL(issuer, "issuer"); err != nil {
		return nil, "", err
	}
	urls, err := asMetadataURLs(issuer)
	if err != nil {
		return nil, "", err
	}
	for _, u := range urls {
		var md AuthServerMetadata
		ok, err := c.getJSON(ctx, u, &md)
		if err != nil {
			return nil, "", err
		}
		if !ok {
			continue
		}
		if md.Issuer != issuer {
			return nil, "", fmt.Errorf("the server's metadata names issuer %s, expected %s", md.Issuer, issuer)
		}
		if md.AuthorizationEndpoint == "" || md.TokenEndpoint == "" {
			return nil, "", fmt.Errorf("the authorization server metadata at %s lacks an authorization or token endpoint", u)
		}
		if !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
			return nil, "", fmt.Errorf("the authorization server at %s does not advertise PKCE S256 (code_challenge_methods_supported)", issuer)
		}
		for name, e := range map[string]string{"authorization_endpoint": md.AuthorizationEndpoint, "token_endpoint": md.TokenEndpoint, "registration_endpoint": md.RegistrationEndpoint, "revocation_endpoint": md.RevocationEndpoint} {
			if e == "" {
				continue
			}
			if err := c.checkEndpointURL(e, name); err != nil {
				return nil, "", err
			}
		}
		return &md, u, nil
	}
	return nil, "", fmt.Errorf("no authorization server metadata for %s (tried %s)", issuer, strings.Join(urls, ", "))
}

// prmURLs returns the path-suffixed then the root protected resource metadata URLs (RFC 9728 §3.1).
func prmURLs(u *url.URL) []string {
	base := url.URL{Scheme: u.Scheme, Host: u.Host}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	root := base
	root.Path = "/.well-known/oauth-protected-resource"
	if p == "" {
		return []string{root.String()}
	}
	return []string{base.String() + "/.well-known/oauth-protected-resource" + p, root.String()}
}

// asMetadataURLs returns the metadata URLs for issuer in the MCP specification's order.
func asMetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q is not a URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("issuer %s must not have a query or fragment", issuer)
	}
	base := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{
			base + "/.well-known/oauth-authorization-server",
			base + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		base + "/.well-known/oauth-authorization-server" + p,
		base + "/.well-known/openid-configuration" + p,
		base + p + "/.well-known/openid-configuration",
	}, nil
}

// getJSON fetches u and decodes a JSON object into v. ok is false (and err nil) when the
// document is absent or not JSON: a 4xx/5xx, or an HTML page served by an SPA at that path.
func (c *Client) getJSON(ctx context.Context, u string, v any) (ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("bad metadata URL %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := c.oauthHTTP.Do(req)
	if err != nil {
		return false, fmt.Errorf("cannot fetch %s: %w", u, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return false, fmt.Errorf("cannot read %s: %w", u, err)
	}
	c.cfg.Logger.Debug("metadata fetch", "url", u, "status", resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		return false, nil
	}
	if len(body) > maxBodyBytes {
		return false, fmt.Errorf("the document at %s is larger than %d bytes", u, maxBodyBytes)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return false, nil
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return false, fmt.Errorf("the document at %s is not valid metadata: %w", u, err)
	}
	return true, nil
}

// checkEndpointURL requires an absolute URL without fragment; https unless the MCP server itself
// is plain http (a development setup) or the host is a loopback address.
func (c *Client) checkEndpointURL(raw, what string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("the %s %q is not an absolute http(s) URL", what, raw)
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Errorf("the %s %q must not have a fragment or user info", what, raw)
	}
	if u.Scheme == "http" && c.mcpURL.Scheme != "http" && !loopback.Host(u.Hostname()) {
		return fmt.Errorf("the %s %s is not https", what, raw)
	}
	return nil
}

// canonicalResource lowercases scheme and host, drops a default port and one trailing slash.
func canonicalResource(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%q has a fragment", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u.Host = host
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// resourceMatches reports whether the protected resource metadata's resource covers the MCP
// URL: same scheme, host and port, and a path equal to the MCP URL's or a path-segment prefix
// of it (a PRM served at the root may name the origin). Trailing slashes and case of scheme
// and host do not matter.
func resourceMatches(resource, mcpURL string) bool {
	r, err1 := canonicalResource(resource)
	m, err2 := canonicalResource(mcpURL)
	if err1 != nil || err2 != nil {
		return false
	}
	if r.Scheme != m.Scheme || r.Host != m.Host || r.RawQuery != "" && r.RawQuery != m.RawQuery {
		return false
	}
	return r.Path == m.Path || r.Path == "" || strings.HasPrefix(m.Path, r.Path+"/")
}

// unwrapURLError drops net/http's "Post \"url\":" prefix, which the callers' messages repeat.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
