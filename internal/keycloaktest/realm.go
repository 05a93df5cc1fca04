package keycloaktest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"text/template"
)

// MCPRealm is the template of the realm "mcp" (testdata/mcp-realm.json.tmpl), filled by
// RealmParams.Realm. It holds:
//   - identity providers "github" (Keycloak's GitHub provider, GitHub's default form-encoded token
//     response) and "github-json" (the same with githubJsonFormat, so Keycloak asks for JSON), both
//     with baseUrl and apiUrl at the GitHub fake, "Store tokens" on, read-token granted on creation,
//     trusted e-mail, and passLoginHint (a login_hint reaches GitHub's authorize endpoint);
//   - the public client "mcp-client" (code flow, PKCE S256 required, redirect URIs
//     http://127.0.0.1/* and http://localhost/*) with audience mappers that put RealmParams.Audience
//     and "mcp-gateway" into every access token's aud (Keycloak adds "broker" and "account" too, so
//     aud is an array);
//   - the confidential client "mcp-gateway" (client secret, service account, no browser flows,
//     allowed to fetch stored tokens of both providers through the identity brokering API v2 of
//     Keycloak 26.7+: attributes external.token.enabled and external.token.idp);
//   - users "carol" (password, broker read-token, no GitHub link) and "dave" (password, no
//     read-token, no link).
//
//go:embed testdata/mcp-realm.json.tmpl
var MCPRealm string

// Names in MCPRealm.
const (
	RealmName       = "mcp"
	PublicClient    = "mcp-client"
	GatewayClient   = "mcp-gateway"
	GitHubAlias     = "github"      // token stored as GitHub sent it by default: form-encoded
	GitHubJSONAlias = "github-json" // token requested and stored as JSON
	Carol           = "carol"       // password user with read-token and no GitHub link
	Dave            = "dave"        // password user without read-token
)

// RealmParams fills MCPRealm.
type RealmParams struct {
	// GitHubURL is the GitHub fake's base URL (no trailing slash), used both as GitHub's base URL
	// (/login/oauth/...) and as its API URL (/user, /user/emails). Required.
	GitHubURL string
	// GitHubClientID and GitHubClientSecret are Keycloak's credentials at the GitHub fake.
	// Default "keycloak-github-client" / "keycloak-github-secret".
	GitHubClientID, GitHubClientSecret string
	// Audience is put into the aud claim of mcp-client's access tokens: the MCP resource URL,
	// e.g. https://127.0.0.1:8443/mcp. Required.
	Audience string
	// GatewaySecret is mcp-gateway's client secret. Default "mcp-gateway-secret".
	GatewaySecret string
	// UserPassword is the password of carol and dave. Default "password".
	UserPassword string
	// BrokeringV2 prepares the realm for a server with the identity-brokering-api:v2 feature
	// (Keycloak 26.7+), which has no "broker" client: nobody gets the read-token role (its import
	// fails with "Unable to find client role mappings for client: broker" otherwise).
	BrokeringV2 bool
}

// Defaults of RealmParams.
const (
	DefaultGitHubClientID     = "keycloak-github-client"
	DefaultGitHubClientSecret = "keycloak-github-secret"
	DefaultGatewaySecret      = "mcp-gateway-secret"
	DefaultUserPassword       = "password"
)

// Realm returns MCPRealm filled with p (defaults applied), ready for Options.Realms.
func (p RealmParams) Realm() ([]byte, error) {
	if p.GitHubURL == "" || p.Audience == "" {
		return nil, errors.New("keycloaktest: RealmParams needs GitHubURL and Audience")
	}
	if p.GitHubClientID == "" {
		p.GitHubClientID = DefaultGitHubClientID
	}
	if p.GitHubClientSecret == "" {
		p.GitHubClientSecret = DefaultGitHubClientSecret
	}
	if p.GatewaySecret == "" {
		p.GatewaySecret = DefaultGatewaySecret
	}
	if p.UserPassword == "" {
		p.UserPassword = DefaultUserPassword
	}
	return Template(MCPRealm, p)
}

// Template executes a realm template with data. In the template, {{json .Field}} writes a value
// as a JSON literal (a quoted, escaped string for a string). The result must be valid JSON.
func Template(tmpl string, data any) ([]byte, error) {
	t, err := template.New("realm").Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("keycloaktest: realm template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("keycloaktest: realm template: %w", err)
	}
	if !json.Valid(buf.Bytes()) {
		return nil, errors.New("keycloaktest: realm template did not produce valid JSON")
	}
	return buf.Bytes(), nil
}
