package mcpidp

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/mcpgate/idp"
)

// IDPUpstream is an OpenID provider users sign in with (idp.UpstreamOIDC). The redirect URI to
// register at the provider is <issuer>/oidc/<name>/callback.
type IDPUpstream struct {
	// Name identifies the provider in URLs: 1 to 32 lower-case letters, digits or '-'. Required.
	Name string `json:"name,omitempty"`
	// DisplayName is shown on the login page. Default: name.
	DisplayName string `json:"display_name,omitempty"`
	// Issuer is the provider's issuer URL (discovery at <issuer>/.well-known/openid-configuration).
	// Required.
	Issuer string `json:"issuer,omitempty"`
	// ClientID registered at the provider. Placeholders are expanded. Required.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret, empty for a public client (PKCE is always used). Placeholders are expanded.
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes requested. Default ["openid", "email", "profile"].
	Scopes []string `json:"scopes,omitempty"`
	// AllowedEmailDomains: users whose verified email is in one of these domains may sign in.
	AllowedEmailDomains []string `json:"allowed_email_domains,omitempty"`
	// AllowedUsers: verified emails or upstream subjects that may sign in.
	AllowedUsers []string `json:"allowed_users,omitempty"`
	// RequiredGroups: the user must be in one of these groups.
	RequiredGroups []string `json:"required_groups,omitempty"`
	// GroupsClaim holds the groups. Default "groups".
	GroupsClaim string `json:"groups_claim,omitempty"`
	// RequiredClaims: claim name → value every user must carry.
	RequiredClaims map[string]string `json:"required_claims,omitempty"`
	// TokenClaims are copied into access tokens: any of "email", "name", "groups". Default none.
	TokenClaims []string `json:"token_claims,omitempty"`
}

// upstreamOptions maps the upstreams, expanding placeholders in the client credentials.
func (m *IDP) upstreamOptions(repl *caddy.Replacer) ([]idp.UpstreamOIDC, error) {
	out := make([]idp.UpstreamOIDC, 0, len(m.Upstreams))
	for _, u := range m.Upstreams {
		id := repl.ReplaceAll(u.ClientID, "")
		if id == "" {
			return nil, fmt.Errorf("mcp_idp: upstream %q has an empty client_id (is its environment variable set?)", u.Name)
		}
		secret := repl.ReplaceAll(u.ClientSecret, "")
		if u.ClientSecret != "" && secret == "" {
			// An unset variable must not silently turn a confidential client into a public one.
			return nil, fmt.Errorf("mcp_idp: upstream %q: client_secret expands to nothing (is its environment variable set?)", u.Name)
		}
		out = append(out, idp.UpstreamOIDC{
			Name: u.Name, DisplayName: u.DisplayName, Issuer: u.Issuer, ClientID: id, ClientSecret: secret,
			Scopes: u.Scopes, AllowedEmailDomains: u.AllowedEmailDomains, AllowedUsers: u.AllowedUsers,
			RequiredGroups: u.RequiredGroups, GroupsClaim: u.GroupsClaim, RequiredClaims: u.RequiredClaims,
			TokenClaims: u.TokenClaims,
		})
	}
	return out, nil
}
