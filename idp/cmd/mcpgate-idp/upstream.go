package main

import (
	"flag"
	"strings"

	"github.com/mcpgate/mcpgate/idp"
)

// upstreamFlags configure one upstream OpenID provider (the company's IdP). Use mcp_idp in a
// Caddyfile for several.
type upstreamFlags struct {
	name, displayName, issuer, clientID, scopes string
	emailDomains, users, groups, groupsClaim    string
	tokenClaims                                 string
	githubLinkOnly                              bool
	idjagIssuer, idjagJWKS, idjagClients        string
}

func (u *upstreamFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&u.issuer, "oidc-issuer", getenv("MCPGATE_OIDC_ISSUER"), "issuer URL of an upstream OpenID provider users sign in with (env MCPGATE_OIDC_ISSUER); its redirect URI is <issuer>/oidc/<oidc-name>/callback; the client secret comes from env MCPGATE_OIDC_CLIENT_SECRET (none: public client with PKCE)")
	fs.StringVar(&u.clientID, "oidc-client-id", getenv("MCPGATE_OIDC_CLIENT_ID"), "client ID at the upstream OpenID provider (env MCPGATE_OIDC_CLIENT_ID)")
	fs.StringVar(&u.name, "oidc-name", "sso", "name of the upstream provider in URLs (/login/oidc/<name>)")
	fs.StringVar(&u.displayName, "oidc-display-name", "", "label on the login page (\"Sign in with <label>\"; default: -oidc-name)")
	fs.StringVar(&u.scopes, "oidc-scopes", "openid email profile", "space-separated scopes requested from the upstream provider")
	fs.StringVar(&u.emailDomains, "oidc-email-domains", "", "comma-separated email domains whose verified users may sign in (\"*\": any verified email); default: everyone the provider authenticates, unless another allow-list is set")
	fs.StringVar(&u.users, "oidc-allowed-users", "", "comma-separated verified emails or upstream subjects allowed to sign in")
	fs.StringVar(&u.groups, "oidc-required-groups", "", "comma-separated groups; a user must be in one of them")
	fs.StringVar(&u.groupsClaim, "oidc-groups-claim", "groups", "claim holding the user's groups")
	fs.StringVar(&u.tokenClaims, "oidc-token-claims", "", "comma-separated claims copied into access tokens: email, name, groups (default none)")
	fs.StringVar(&u.idjagIssuer, "idjag-issuer", "", "issuer of an enterprise IdP whose ID-JAGs (enterprise-managed authorization, jwt-bearer grant) are accepted; needs -idjag-jwks-url and -idjag-client-ids")
	fs.StringVar(&u.idjagJWKS, "idjag-jwks-url", "", "JWKS URL of the -idjag-issuer IdP")
	fs.StringVar(&u.idjagClients, "idjag-client-ids", "", "comma-separated client IDs (of this server) that may present the IdP's ID-JAGs")
	fs.BoolVar(&u.githubLinkOnly, "github-link-only", false, "use the GitHub app only to link GitHub accounts of users who signed in upstream, not to sign in")
}

func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// idjagTrusts returns the configured ID-JAG trust, or none without -idjag-issuer.
func (u *upstreamFlags) idjagTrusts() []idp.IDJAGTrust {
	if u.idjagIssuer == "" {
		return nil
	}
	return []idp.IDJAGTrust{{Issuer: u.idjagIssuer, JWKSURL: u.idjagJWKS, ClientIDs: commaList(u.idjagClients)}}
}

// options returns the configured upstream, or none without -oidc-issuer.
func (u *upstreamFlags) options(getenv func(string) string) []idp.UpstreamOIDC {
	if u.issuer == "" {
		return nil
	}
	return []idp.UpstreamOIDC{{
		Name: u.name, DisplayName: u.displayName, Issuer: u.issuer, ClientID: u.clientID,
		ClientSecret: getenv("MCPGATE_OIDC_CLIENT_SECRET"), Scopes: strings.Fields(u.scopes),
		AllowedEmailDomains: commaList(u.emailDomains), AllowedUsers: commaList(u.users),
		RequiredGroups: commaList(u.groups), GroupsClaim: u.groupsClaim, TokenClaims: commaList(u.tokenClaims),
	}}
}
