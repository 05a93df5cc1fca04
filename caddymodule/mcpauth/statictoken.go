package mcpauth

import (
	"context"
	"errors"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

func init() {
	caddy.RegisterModule(StaticToken{})
}

// StaticToken is the upstream token source http.mcp_auth.token_sources.static:
// one token from the configuration, the same for every user, e.g.
// {env.GITHUB_ACCESS_TOKEN}. It is the original demo's fallback and is off
// unless configured. Every authenticated user acts with this one token, so
// use it only for single-user deployments.
type StaticToken struct {
	// Token is the upstream token. Caddy placeholders such as
	// {env.GITHUB_ACCESS_TOKEN} are resolved once at provisioning.
	// Required (must not resolve to empty).
	Token string `json:"token,omitempty"`

	value string
}

// CaddyModule returns the Caddy module information.
func (StaticToken) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.mcp_auth.token_sources.static",
		New: func() caddy.Module { return new(StaticToken) },
	}
}

// Provision resolves placeholders in Token.
func (s *StaticToken) Provision(caddy.Context) error {
	s.value = caddy.NewReplacer().ReplaceAll(s.Token, "")
	return nil
}

// Validate requires a non-empty token, without revealing it.
func (s StaticToken) Validate() error {
	if s.value == "" {
		return errors.New("mcp_auth: static upstream token is empty (is its environment variable set?)")
	}
	return nil
}

// UpstreamToken implements TokenSource.
func (s *StaticToken) UpstreamToken(context.Context, *jwtverify.Claims, string) (Token, error) {
	return Token{Value: s.value}, nil
}

// Interface guards
var (
	_ TokenSource       = (*StaticToken)(nil)
	_ caddy.Provisioner = (*StaticToken)(nil)
	_ caddy.Validator   = (*StaticToken)(nil)
)
