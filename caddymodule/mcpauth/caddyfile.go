package mcpauth

// Every Caddyfile parser of the package lives in this file, as Caddy's reverseproxy keeps
// them: the handler's, each token source's, and their shared argument helpers, so that the
// whole syntax reads in one place. That, not one concern growing, is why it passes 500 lines.

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("mcp_auth", parseCaddyfile)
	// Authentication runs where Caddy's own basic_auth runs: after request
	// rewriting and header manipulation, before any handler that serves or
	// proxies. Users need no `order` line.
	httpcaddyfile.RegisterDirectiveOrder("mcp_auth", httpcaddyfile.Before, "basic_auth")
}

// parseCaddyfile builds the handler from the mcp_auth directive:
//
//	mcp_auth [<matcher>] {
//		resource               <absolute url>
//		issuer                 <url> [{
//			jwks_uri           <url>
//			access_token_types <typ...>
//		}]
//		authorization_servers  <url...>
//		scopes_supported       <scope...>
//		required_scopes        <scope...>
//		resource_name          <name>
//		resource_documentation <url>
//		algorithms             <alg...>
//		leeway                 <duration>
//		max_token_size         <bytes>
//		jwks_refresh_interval  <duration>
//		jwks_refetch_cooldown  <duration>
//		jwks_fetch_timeout     <duration>
//		verify_cache_size      <n>
//		upstream_token         <source> [<args...>] [{ ... }]
//		upstream_header        <name>
//		keep_authorization
//		on_missing_upstream    deny|pass
//		link_url               <url>
//		link_account           <name>
//		upstream_cache_size    <n>
//		upstream_cache_ttl     <duration>
//		upstream_timeout       <duration>
//		retry_after            <duration>
//		metadata_path          <path>
//		tls_trust_pool         <module> [<args...>] [{ ... }]
//		tool_policy            { ... }   # see unmarshalToolPolicy
//	}
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler; see parseCaddyfile for
// the syntax.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "resource":
			if err := oneArg(d, &h.Resource); err != nil {
				return err
			}
		case "issuer":
			var is IssuerConfig
			if err := oneArgNoEnd(d, &is.Issuer); err != nil {
				return err
			}
			for d.NextBlock(1) {
				switch d.Val() {
				case "jwks_uri":
					if err := oneArg(d, &is.JWKSURI); err != nil {
						return err
					}
				case "access_token_types":
					if err := someArgs(d, &is.AccessTokenTypes); err != nil {
						return err
					}
				default:
					return d.Errf("unrecognized issuer option %q", d.Val())
				}
			}
			h.Issuers = append(h.Issuers, is)
		case "authorization_servers":
			if err := someArgs(d, &h.AuthorizationServers); err != nil {
				return err
			}
		case "scopes_supported":
			if err := someArgs(d, &h.ScopesSupported); err != nil {
				return err
			}
		case "required_scopes":
			if err := someArgs(d, &h.RequiredScopes); err != nil {
				return err
			}
		case "algorithms":
			if err := someArgs(d, &h.Algorithms); err != nil {
				return err
			}
		case "resource_name":
			if err := oneArg(d, &h.ResourceName); err != nil {
				return err
			}
		case "resource_documentation":
			if err := oneArg(d, &h.ResourceDocumentation); err != nil {
				return err
			}
		case "upstream_header":
			if err := oneArg(d, &h.UpstreamHeader); err != nil {
				return err
			}
		case "on_missing_upstream":
			if err := oneArg(d, &h.OnMissingUpstream); err != nil {
				return err
			}
			if h.OnMissingUpstream != OnMissingUpstreamDeny && h.OnMissingUpstream != OnMissingUpstreamPass {
				return d.Errf("on_missing_upstream must be %s or %s", OnMissingUpstreamDeny, OnMissingUpstreamPass)
			}
		case "link_url":
			if err := oneArg(d, &h.LinkURL); err != nil {
				return err
			}
		case "link_account":
			if err := oneArg(d, &h.LinkAccount); err != nil {
				return err
			}
		case "metadata_path":
			if err := oneArg(d, &h.MetadataPath); err != nil {
				return err
			}
		case "keep_authorization":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.KeepAuthorization = true
		case "leeway":
			if err := durationArg(d, &h.Leeway); err != nil {
				return err
			}
		case "jwks_refresh_interval":
			if err := durationArg(d, &h.JWKSRefreshInterval); err != nil {
				return err
			}
		case "jwks_refetch_cooldown":
			if err := durationArg(d, &h.JWKSRefetchCooldown); err != nil {
				return err
			}
		case "jwks_fetch_timeout":
			if err := durationArg(d, &h.JWKSFetchTimeout); err != nil {
				return err
			}
		case "upstream_cache_ttl":
			if err := durationArg(d, &h.UpstreamCacheTTL); err != nil {
				return err
			}
		case "upstream_timeout":
			if err := durationArg(d, &h.UpstreamTimeout); err != nil {
				return err
			}
		case "retry_after":
			if err := durationArg(d, &h.RetryAfter); err != nil {
				return err
			}
		case "max_token_size":
			if err := intArg(d, &h.MaxTokenSize); err != nil {
				return err
			}
		case "verify_cache_size":
			if err := intArg(d, &h.VerifyCacheSize); err != nil {
				return err
			}
		case "upstream_cache_size":
			if err := intArg(d, &h.UpstreamCacheSize); err != nil {
				return err
			}
		case "upstream_token":
			if h.UpstreamRaw != nil {
				return d.Err("upstream_token already specified")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "http.mcp_auth.token_sources."+name)
			if err != nil {
				return err
			}
			h.UpstreamRaw = caddyconfig.JSONModuleObject(unm, "source", name, nil)
		case "tls_trust_pool":
			if err := unmarshalTrustPool(d, &h.TrustPoolRaw); err != nil {
				return err
			}
		case "tool_policy":
			if err := h.unmarshalToolPolicy(d); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized mcp_auth option %q", opt)
		}
	}
	return nil
}

// unmarshalToolPolicy reads the tool_policy block:
//
//	tool_policy {
//		default            allow|deny
//		scope_claim        <dotted.path>
//		max_body_bytes     <n>
//		max_response_bytes <n>
//		allow|deny <method> [<name>] [scopes_all <scope>...] [scopes_any <scope>...] [claim <path> <test> <value>...]...
//	}
//
// Rule lines are toolpolicy.ParseRule's syntax; the policy is compiled here
// too, so that a mistake is reported with its line.
func (h *Handler) unmarshalToolPolicy(d *caddyfile.Dispenser) error {
	if h.ToolPolicy != nil {
		return d.Err("tool_policy already specified")
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	cfg := new(toolpolicy.Config)
	for d.NextBlock(1) {
		switch d.Val() {
		case "default":
			if err := oneArg(d, &cfg.Default); err != nil {
				return err
			}
		case "scope_claim":
			if err := oneArg(d, &cfg.ScopeClaim); err != nil {
				return err
			}
		case "max_body_bytes", "max_response_bytes":
			name := d.Val()
			var n int
			if err := intArg(d, &n); err != nil {
				return err
			}
			if n <= 0 {
				return d.Errf("%s must be positive", name)
			}
			if name == "max_body_bytes" {
				cfg.MaxBodyBytes = int64(n)
			} else {
				cfg.MaxResponseBytes = int64(n)
			}
		case toolpolicy.Allow, toolpolicy.Deny:
			words := append([]string{d.Val()}, d.RemainingArgs()...)
			r, err := toolpolicy.ParseRule(words)
			if err != nil {
				return d.Errf("tool_policy: %v", err)
			}
			cfg.Rules = append(cfg.Rules, r)
		default:
			return d.Errf("unrecognized tool_policy option %q (default, scope_claim, max_body_bytes, max_response_bytes, allow, deny)", d.Val())
		}
	}
	if _, err := toolpolicy.Compile(*cfg); err != nil {
		return d.Errf("%v", err)
	}
	h.ToolPolicy = cfg
	return nil
}

// UnmarshalCaddyfile sets up the token source from Caddyfile tokens:
//
//	upstream_token token_exchange {
//		issuer         <url>
//		token_endpoint <url>
//		client_id      <id>
//		client_secret  <secret or {env.VAR}>
//		audience       <url>
//		resource       <url>
//		scope          <scope...>
//		auth_method    client_secret_basic|client_secret_post
//		timeout        <duration>
//		tls_trust_pool <module> [<args...>] [{ ... }]
//	}
func (te *TokenExchange) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		switch name {
		case "scope":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			te.Scope = strings.Join(args, " ")
			continue
		case "tls_trust_pool":
			if err := unmarshalTrustPool(d, &te.TrustPoolRaw); err != nil {
				return err
			}
			continue
		case "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("bad timeout %q: %v", d.Val(), err)
			}
			te.Timeout = caddy.Duration(dur)
			if d.NextArg() {
				return d.ArgErr()
			}
			continue
		}
		var dst *string
		switch name {
		case "issuer":
			dst = &te.Issuer
		case "token_endpoint":
			dst = &te.TokenEndpoint
		case "client_id":
			dst = &te.ClientID
		case "client_secret":
			dst = &te.ClientSecret
		case "audience":
			dst = &te.Audience
		case "resource":
			dst = &te.Resource
		case "auth_method":
			dst = &te.AuthMethod
		default:
			return d.Errf("unrecognized token_exchange option %q", name)
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		*dst = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// UnmarshalCaddyfile parses `upstream_token static <token>` or
//
//	upstream_token static {
//		token <token>
//	}
func (s *StaticToken) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	if d.NextArg() {
		s.Token = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		if d.Val() != "token" {
			return d.Errf("unrecognized static option %q", d.Val())
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		s.Token = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if s.Token == "" {
		return d.Err("static upstream token needs a token")
	}
	return nil
}

// unmarshalTrustPool parses `tls_trust_pool <module> [<args>] [{ ... }]` into *dst.
func unmarshalTrustPool(d *caddyfile.Dispenser, dst *json.RawMessage) error {
	if *dst != nil {
		return d.Err("tls_trust_pool already specified")
	}
	if !d.NextArg() {
		return d.ArgErr()
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "tls.ca_pool.source."+name)
	if err != nil {
		return err
	}
	if _, ok := unm.(caddytls.CA); !ok {
		return d.Errf("module tls.ca_pool.source.%s is not a CA pool source", name)
	}
	*dst = caddyconfig.JSONModuleObject(unm, "provider", name, nil)
	return nil
}

// oneArg reads exactly one argument and requires the line to end.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if err := oneArgNoEnd(d, dst); err != nil {
		return err
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// oneArgNoEnd reads exactly one argument; a block may follow.
func oneArgNoEnd(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	return nil
}

// someArgs appends one or more arguments.
func someArgs(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("bad duration %q for %s: %v", s, d.Val(), err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("bad number %q: %v", s, err)
	}
	*dst = n
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*TokenExchange)(nil)
	_ caddyfile.Unmarshaler = (*StaticToken)(nil)
)

// UnmarshalCaddyfile sets up the source from Caddyfile tokens:
//
//	upstream_token auth0_token_vault {
//		domain         <tenant host or URL>
//		client_id      <id>
//		client_secret  <secret or {env.VAR}>
//		connection     <name>   # default github
//		issuer         <url>    # default: mcp_auth's only issuer
//		timeout        <duration>
//		tls_trust_pool <module> [<args...>] [{ ... }]
//	}
func (v *Auth0TokenVault) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		ok, err := v.unmarshalOption(d)
		if err != nil {
			return err
		}
		if !ok {
			return d.Errf("unrecognized auth0_token_vault option %q", d.Val())
		}
	}
	return nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens:
//
//	upstream_token auth0_management {
//		domain         <tenant host or URL>
//		client_id      <id>
//		client_secret  <secret or {env.VAR}>
//		audience       <Management API identifier>  # default https://<domain>/api/v2/
//		connection     <name>                       # default github
//		issuer         <url>                        # default: mcp_auth's only issuer
//		timeout        <duration>
//		tls_trust_pool <module> [<args...>] [{ ... }]
//	}
func (m *Auth0Management) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if d.Val() == "audience" {
			if !d.NextArg() {
				return d.ArgErr()
			}
			m.Audience = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			continue
		}
		ok, err := m.unmarshalOption(d)
		if err != nil {
			return err
		}
		if !ok {
			return d.Errf("unrecognized auth0_management option %q", d.Val())
		}
	}
	return nil
}

// unmarshalOption parses one of the shared options at the dispenser's position; it reports
// whether the option was one of them.
func (a *auth0Client) unmarshalOption(d *caddyfile.Dispenser) (bool, error) {
	var dst *string
	switch d.Val() {
	case "tls_trust_pool":
		return true, unmarshalTrustPool(d, &a.TrustPoolRaw)
	case "timeout":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		dur, err := caddy.ParseDuration(d.Val())
		if err != nil {
			return true, d.Errf("bad timeout %q: %v", d.Val(), err)
		}
		a.Timeout = caddy.Duration(dur)
		if d.NextArg() {
			return true, d.ArgErr()
		}
		return true, nil
	case "domain":
		dst = &a.Domain
	case "client_id":
		dst = &a.ClientID
	case "client_secret":
		dst = &a.ClientSecret
	case "connection":
		dst = &a.Connection
	case "issuer":
		dst = &a.Issuer
	default:
		return false, nil
	}
	if !d.NextArg() {
		return true, d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return true, d.ArgErr()
	}
	return true, nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens:
//
//	upstream_token keycloak {
//		realm          <realm url>      # default: the issuer
//		alias          <idp alias>      # default github
//		method         get|post         # default get
//		client_id      <id>             # post only
//		client_secret  <secret or {env.VAR}>
//		issuer         <url>            # default: mcp_auth's only issuer
//		timeout        <duration>
//		tls_trust_pool <module> [<args...>] [{ ... }]
//	}
func (k *Keycloak) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var dst *string
		switch d.Val() {
		case "tls_trust_pool":
			if err := unmarshalTrustPool(d, &k.TrustPoolRaw); err != nil {
				return err
			}
			continue
		case "timeout":
			if err := durationArg(d, &k.Timeout); err != nil {
				return err
			}
			continue
		case "realm":
			dst = &k.Realm
		case "alias":
			dst = &k.Alias
		case "method":
			dst = &k.Method
		case "client_id":
			dst = &k.ClientID
		case "client_secret":
			dst = &k.ClientSecret
		case "issuer":
			dst = &k.Issuer
		default:
			return d.Errf("unrecognized keycloak option %q", d.Val())
		}
		if err := oneArg(d, dst); err != nil {
			return err
		}
	}
	return nil
}
