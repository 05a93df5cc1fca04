package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Loopback redirect URIs and registrations (RFC 8252 §7.3, §8.3).
//
// The client registers the concrete redirect URI it listens on,
// http://127.0.0.1:PORT/callback, instead of the port-less form. RFC 8252 obliges an
// authorization server to accept any port for a loopback redirect, and mcpgate's IdP does, but
// several deployed servers compare redirect URIs exactly. To stay compatible with both, the
// registration is cached per issuer together with its port, and the next login first tries to
// listen on that same port; only when it is taken (or -callback-port asks for another one) does
// the client register anew. A pre-registered client (-client-id) always sends the URI of the
// port it listens on: pin the registered port with -callback-port if the server matches exactly.

// callbackPath is the path of the loopback redirect URI.
const callbackPath = "/callback"

func redirectURIFor(port int) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, callbackPath)
}

// registrationRequest is the RFC 7591 §2 client metadata we send.
type registrationRequest struct {
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
	Scope                   string   `json:"scope,omitempty"`
}

// nativeClientMetadata is this client's RFC 7591 metadata as a native public client with one
// loopback redirect URI: what dynamic registration sends and what a client metadata document
// lists.
func nativeClientMetadata(name, redirectURI, scope string) registrationRequest {
	return registrationRequest{
		ClientName:              name,
		RedirectURIs:            []string{redirectURI},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "none",
		ApplicationType:         "native",
		Scope:                   scope,
	}
}

// registrationResponse is the RFC 7591 §3.2.1 answer (fields we use).
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	ClientSecretExpiresAt   int64    `json:"client_secret_expires_at"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	RedirectURIs            []string `json:"redirect_uris"`
	Scope                   string   `json:"scope"`
}

// register performs dynamic client registration for the given redirect URI and caches it.
func (c *Client) register(ctx context.Context, d *Discovery, redirectURI string, scopes []string) (*registration, error) {
	if d.AS.RegistrationEndpoint == "" {
		return nil, fmt.Errorf("the authorization server at %s has no registration endpoint; pass -client-id", d.Issuer)
	}
	fmt.Fprintf(c.cfg.Stderr, "Registering this client at %s\n", d.Issuer)
	reqBody := nativeClientMetadata(c.cfg.ClientName, redirectURI, strings.Join(scopes, " "))
	b, err := json.Marshal(reqBody)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.AS.RegistrationEndpoint, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.cfg.RegistrationToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.RegistrationToken)
	}
	resp, err := c.oauthHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the registration endpoint %s: %w", d.AS.RegistrationEndpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("cannot read the registration answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		oe := oauthErrorFrom(d.AS.RegistrationEndpoint, resp.StatusCode, body)
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			if c.cfg.RegistrationToken == "" {
				hint = "; it may need an initial access token (-registration-token) or a pre-registered client (-client-id)"
			} else {
				hint = "; check -registration-token"
			}
		}
		why := fmt.Sprintf("HTTP %d", oe.Status)
		if oe.Code != "" {
			why = oe.Code
		}
		if oe.Description != "" {
			why += ": " + oe.Description
		}
		return nil, fmt.Errorf("the authorization server at %s refused the registration: %s%s", d.Issuer, why, hint)
	}
	var rr registrationResponse
	if err := json.Unmarshal(body, &rr); err != nil || rr.ClientID == "" {
		return nil, fmt.Errorf("the registration endpoint %s sent no client_id", d.AS.RegistrationEndpoint)
	}
	if len(rr.RedirectURIs) > 0 && !slices.Contains(rr.RedirectURIs, redirectURI) {
		return nil, fmt.Errorf("the authorization server at %s registered other redirect URIs than %s", d.Issuer, redirectURI)
	}
	reg := &registration{
		Issuer:          d.Issuer,
		ClientID:        rr.ClientID,
		ClientSecret:    rr.ClientSecret,
		AuthMethod:      rr.TokenEndpointAuthMethod,
		RedirectURI:     redirectURI,
		Scope:           reqBody.Scope,
		RegisteredAt:    c.cfg.Now(),
		SecretExpiresAt: rr.ClientSecretExpiresAt,
	}
	if reg.AuthMethod == "" {
		reg.AuthMethod = "none"
	}
	if err := c.store.saveRegistration(reg); err != nil {
		return nil, err
	}
	c.cfg.Logger.Debug("registered", "issuer", d.Issuer, "client_id", reg.ClientID)
	return reg, nil
}

// credsFor returns the client authentication for a token of issuer obtained by clientID.
func (c *Client) credsFor(issuer string, md *AuthServerMetadata, clientID string) clientCreds {
	if c.cfg.ClientMetadataURL != "" && clientID == c.cfg.ClientMetadataURL {
		return clientCreds{ID: clientID, Method: "none"} // a metadata document client is public
	}
	if c.cfg.ClientID != "" && clientID == c.cfg.ClientID {
		if c.cfg.ClientSecret == "" {
			return clientCreds{ID: clientID, Method: "none"}
		}
		return clientCreds{ID: clientID, Secret: c.cfg.ClientSecret, Method: secretMethod(md)}
	}
	if reg, _ := c.store.loadRegistration(issuer); reg != nil && reg.ClientID == clientID {
		m := reg.AuthMethod
		if reg.ClientSecret == "" {
			m = "none"
		}
		return clientCreds{ID: clientID, Secret: reg.ClientSecret, Method: m}
	}
	return clientCreds{ID: clientID, Method: "none"}
}

// coversScopes reports whether a registration made for registered scopes allows want. An
// empty registered scope places no restriction.
func coversScopes(registered string, want []string) bool {
	if registered == "" {
		return true
	}
	have := strings.Fields(registered)
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
