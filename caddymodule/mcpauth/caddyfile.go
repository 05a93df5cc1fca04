package mcpauth

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
//			jwks_uri <url>
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
func (m *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "resource":
			if err := oneArg(d, &m.Resource); err != nil {
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
				default:
					return d.Errf("unrecognized issuer option %q", d.Val())
				}
			}
			m.Issuers = append(m.Issuers, is)
		case "authorization_servers":
			if err := someArgs(d, &m.AuthorizationServers); err != nil {
				return err
			}
		case "scopes_supported":
			if err := someArgs(d, &m.ScopesSupported); err != nil {
				return err
			}
		case "required_scopes":
			if err := someArgs(d, &m.RequiredScopes); err != nil {
				return err
			}
		case "algorithms":
			if err := someArgs(d, &m.Algorithms); err != nil {
				return err
			}
		case "resource_name":
			if err := oneArg(d, &m.ResourceName); err != nil {
				return err
			}
		case "resource_documentation":
			if err := oneArg(d, &m.ResourceDocumentation); err != nil {
				return err
			}
		case "upstream_header":
			if err := oneArg(d, &m.UpstreamHeader); err != nil {
				return err
			}
		case "on_missing_upstream":
			if err := oneArg(d, &m.OnMissingUpstream); err != nil {
				return err
			}
			if m.OnMissingUpstream != OnMissingUpstreamDeny && m.OnMissingUpstream != OnMissingUpstreamPass {
				return d.Errf("on_missing_upstream must be %s or %s", OnMissingUpstreamDeny, OnMissingUpstreamPass)
			}
		case "link_url":
			if err := oneArg(d, &m.LinkURL); err != nil {
				return err
			}
		case "link_account":
			if err := oneArg(d, &m.LinkAccount); err != nil {
				return err
			}
		case "metadata_path":
			if err := oneArg(d, &m.MetadataPath); err != nil {
				return err
			}
		case "keep_authorization":
			if d.NextArg() {
				return d.ArgErr()
			}
			m.KeepAuthorization = true
		case "leeway":
			if err := durationArg(d, &m.Leeway); err != nil {
				return err
			}
		case "jwks_refresh_interval":
			if err := durationArg(d, &m.JWKSRefreshInterval); err != nil {
				return err
			}
		case "jwks_refetch_cooldown":
			if err := durationArg(d, &m.JWKSRefetchCooldown); err != nil {
				return err
			}
		case "jwks_fetch_timeout":
			if err := durationArg(d, &m.JWKSFetchTimeout); err != nil {
				return err
			}
		case "upstream_cache_ttl":
			if err := durationArg(d, &m.UpstreamCacheTTL); err != nil {
				return err
			}
		case "upstream_timeout":
			if err := durationArg(d, &m.UpstreamTimeout); err != nil {
				return err
			}
		case "retry_after":
			if err := durationArg(d, &m.RetryAfter); err != nil {
				return err
			}
		case "max_token_size":
			if err := intArg(d, &m.MaxTokenSize); err != nil {
				return err
			}
		case "verify_cache_size":
			if err := intArg(d, &m.VerifyCacheSize); err != nil {
				return err
			}
		case "upstream_cache_size":
			if err := intArg(d, &m.UpstreamCacheSize); err != nil {
				return err
			}
		case "upstream_token":
			if m.UpstreamRaw != nil {
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
			m.UpstreamRaw = caddyconfig.JSONModuleObject(unm, "source", name, nil)
		case "tls_trust_pool":
			if err := unmarshalTrustPool(d, &m.TrustPoolRaw); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized mcp_auth option %q", opt)
		}
	}
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
var _ caddyfile.Unmarshaler = (*Handler)(nil)
