package mcpidp

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("mcp_idp", parseIDPCaddyfile)
	// A terminal handler that serves responses itself, ordered where Caddy's own acme_server and
	// file_server sit, after mcp_auth and reverse_proxy, so users need no `order` line.
	httpcaddyfile.RegisterDirectiveOrder("mcp_idp", httpcaddyfile.Before, "file_server")
}

// parseIDPCaddyfile builds the handler from the mcp_idp directive:
//
//	mcp_idp [<matcher>] {
//		issuer             <url>
//		data_dir           <path>
//		encryption_key     <base64>
//		dev_login
//		github {
//			client_id     <id>
//			client_secret <secret>
//			base_url      <url>
//			api_url       <url>
//			scopes        <scope...>
//			link_only
//		}
//		oidc <name> {
//			display_name          <text>
//			issuer                <url>
//			client_id             <id>
//			client_secret         <secret>
//			scopes                <scope...>
//			allowed_email_domains <domain...>
//			allowed_users         <email-or-sub...>
//			required_groups       <group...>
//			groups_claim          <claim>
//			required_claim        <claim> <value>
//			token_claims          email|name|groups...
//		}
//		id_jag_trust <issuer> {
//			jwks_url     <url>
//			client_ids   <client_id...>
//			algorithms   RS256|ES256|...
//			max_lifetime <duration>
//		}
//		exchange_client    <id> <secret> <audience...>
//		default_resource   <url>
//		allowed_resources  <url...>
//		scopes             <scope...>
//		signing_algorithm  RS256|ES256
//		access_token_ttl   <duration>
//		refresh_token_ttl  <duration>
//		registration_token <token>
//		authorize_rate_limit  <n>|-1
//		authorize_rate_window <duration>
//		allow_private_cimd
//		cimd_failure_cache_ttl <duration>
//		storage postgres {
//			dsn <dsn>
//		}
//		key_rotation_interval <duration>
//		key_pre_publish       <duration>
//		cleanup_interval      <duration>
//	}
//
// Durations must not be negative. authorize_rate_limit is a positive count, or negative to
// disable the limit; 0 is refused because it would silently mean the default (100).
func parseIDPCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(IDP)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler; see parseIDPCaddyfile for the syntax.
func (m *IDP) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "issuer":
			if !d.AllArgs(&m.Issuer) {
				return d.ArgErr()
			}
		case "data_dir":
			if !d.AllArgs(&m.DataDir) {
				return d.ArgErr()
			}
		case "encryption_key":
			if !d.AllArgs(&m.EncryptionKey) {
				return d.ArgErr()
			}
		case "dev_login":
			if d.NextArg() {
				return d.ArgErr()
			}
			m.DevLogin = true
		case "allow_private_cimd":
			if d.NextArg() {
				return d.ArgErr()
			}
			m.AllowPrivateCIMD = true
		case "github":
			if d.NextArg() {
				return d.ArgErr()
			}
			gh := new(IDPGitHub)
			for d.NextBlock(1) {
				var dst *string
				switch d.Val() {
				case "client_id":
					dst = &gh.ClientID
				case "client_secret":
					dst = &gh.ClientSecret
				case "base_url":
					dst = &gh.BaseURL
				case "api_url":
					dst = &gh.APIURL
				case "scopes":
					gh.Scopes = d.RemainingArgs()
					continue
				case "link_only":
					if d.NextArg() {
						return d.ArgErr()
					}
					gh.LinkOnly = true
					continue
				default:
					return d.Errf("unrecognized github option %q", d.Val())
				}
				if !d.AllArgs(dst) {
					return d.ArgErr()
				}
			}
			m.GitHub = gh
		case "oidc":
			u, err := parseUpstream(d)
			if err != nil {
				return err
			}
			m.Upstreams = append(m.Upstreams, u)
		case "id_jag_trust":
			t, err := parseIDJAGTrust(d)
			if err != nil {
				return err
			}
			m.IDJAGTrusts = append(m.IDJAGTrusts, t)
		case "exchange_client":
			args := d.RemainingArgs()
			if len(args) < 3 {
				return d.Err("exchange_client needs an id, a secret and the resources (MCP server URLs) whose tokens it may exchange")
			}
			m.ExchangeClients = append(m.ExchangeClients, IDPExchangeClient{ID: args[0], Secret: args[1], Audiences: args[2:]})
		case "default_resource":
			if !d.AllArgs(&m.DefaultResource) {
				return d.ArgErr()
			}
		case "allowed_resources":
			m.AllowedResources = d.RemainingArgs()
			if len(m.AllowedResources) == 0 {
				return d.ArgErr()
			}
		case "scopes":
			m.Scopes = d.RemainingArgs()
			if len(m.Scopes) == 0 {
				return d.ArgErr()
			}
		case "signing_algorithm":
			if !d.AllArgs(&m.SigningAlgorithm) {
				return d.ArgErr()
			}
		case "access_token_ttl":
			if err := idpDurationArg(d, &m.AccessTokenTTL); err != nil {
				return err
			}
		case "refresh_token_ttl":
			if err := idpDurationArg(d, &m.RefreshTokenTTL); err != nil {
				return err
			}
		case "authorize_rate_window":
			if err := idpDurationArg(d, &m.AuthorizeRateWindow); err != nil {
				return err
			}
		case "cimd_failure_cache_ttl":
			if err := idpDurationArg(d, &m.CIMDFailureCacheTTL); err != nil {
				return err
			}
		case "authorize_rate_limit":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(s)
			if err != nil {
				return d.Errf("authorize_rate_limit: %q is not an integer", s)
			}
			if n == 0 {
				return d.Err("authorize_rate_limit 0 would mean the default (100): omit it for the default, or use -1 to disable the limit")
			}
			m.AuthorizeRateLimit = n
		case "registration_token":
			if !d.AllArgs(&m.RegistrationToken) {
				return d.ArgErr()
			}
		case "storage":
			st, err := parseStorage(d)
			if err != nil {
				return err
			}
			m.Storage = st
		case "key_rotation_interval":
			if err := idpDurationArg(d, &m.KeyRotationInterval); err != nil {
				return err
			}
		case "key_pre_publish":
			if err := idpDurationArg(d, &m.KeyPrePublish); err != nil {
				return err
			}
		case "cleanup_interval":
			if err := idpDurationArg(d, &m.CleanupInterval); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized mcp_idp option %q", opt)
		}
	}
	return nil
}

// parseUpstream parses an oidc <name> { ... } block.
func parseUpstream(d *caddyfile.Dispenser) (IDPUpstream, error) {
	var u IDPUpstream
	if !d.NextArg() {
		return u, d.Err("oidc needs a name, e.g. oidc corp { ... }")
	}
	u.Name = d.Val()
	if d.NextArg() {
		return u, d.ArgErr()
	}
	for d.NextBlock(1) {
		opt := d.Val()
		var dst *string
		var list *[]string
		switch opt {
		case "display_name":
			dst = &u.DisplayName
		case "issuer":
			dst = &u.Issuer
		case "client_id":
			dst = &u.ClientID
		case "client_secret":
			dst = &u.ClientSecret
		case "groups_claim":
			dst = &u.GroupsClaim
		case "scopes":
			list = &u.Scopes
		case "allowed_email_domains":
			list = &u.AllowedEmailDomains
		case "allowed_users":
			list = &u.AllowedUsers
		case "required_groups":
			list = &u.RequiredGroups
		case "token_claims":
			list = &u.TokenClaims
		case "required_claim":
			var k, v string
			if !d.AllArgs(&k, &v) {
				return u, d.ArgErr()
			}
			if u.RequiredClaims == nil {
				u.RequiredClaims = map[string]string{}
			}
			u.RequiredClaims[k] = v
			continue
		default:
			return u, d.Errf("unrecognized oidc option %q", opt)
		}
		if dst != nil {
			if !d.AllArgs(dst) {
				return u, d.ArgErr()
			}
			continue
		}
		*list = append(*list, d.RemainingArgs()...)
		if len(*list) == 0 {
			return u, d.ArgErr()
		}
	}
	return u, nil
}

// parseIDJAGTrust parses an id_jag_trust <issuer> { ... } block.
func parseIDJAGTrust(d *caddyfile.Dispenser) (IDPIDJAGTrust, error) {
	var t IDPIDJAGTrust
	if !d.AllArgs(&t.Issuer) {
		return t, d.Err("id_jag_trust needs the IdP's issuer, e.g. id_jag_trust https://corp.okta.com { ... }")
	}
	for d.NextBlock(1) {
		switch d.Val() {
		case "jwks_url":
			if !d.AllArgs(&t.JWKSURL) {
				return t, d.ArgErr()
			}
		case "client_ids":
			t.ClientIDs = append(t.ClientIDs, d.RemainingArgs()...)
			if len(t.ClientIDs) == 0 {
				return t, d.ArgErr()
			}
		case "algorithms":
			t.Algorithms = append(t.Algorithms, d.RemainingArgs()...)
			if len(t.Algorithms) == 0 {
				return t, d.ArgErr()
			}
		case "max_lifetime":
			if err := idpDurationArg(d, &t.MaxLifetime); err != nil {
				return t, err
			}
		default:
			return t, d.Errf("unrecognized id_jag_trust option %q", d.Val())
		}
	}
	return t, nil
}

// parseStorage parses a storage postgres { dsn <dsn> } block.
func parseStorage(d *caddyfile.Dispenser) (*IDPStorage, error) {
	var backend string
	if !d.AllArgs(&backend) {
		return nil, d.Err("storage needs a backend: storage postgres { dsn {env.MCPGATE_PG_DSN} }")
	}
	if backend != "postgres" {
		return nil, d.Errf("unknown storage backend %q: postgres is the one there is (without storage, the embedded bbolt store)", backend)
	}
	pg := new(IDPPostgres)
	for d.NextBlock(1) {
		switch d.Val() {
		case "dsn":
			// Not d.ArgErr(): it would quote the token, which may be the password of an
			// unquoted keyword=value DSN.
			if !d.AllArgs(&pg.DSN) {
				return nil, d.Err(`dsn takes one argument: quote a keyword=value DSN ("host=... dbname=..."), or better, dsn {env.MCPGATE_PG_DSN}`)
			}
		default:
			return nil, d.Errf("unrecognized storage postgres option %q", d.Val())
		}
	}
	if pg.DSN == "" {
		return nil, d.Err("storage postgres needs a dsn, e.g. dsn {env.MCPGATE_PG_DSN}")
	}
	return &IDPStorage{Postgres: pg}, nil
}

// idpDurationArg parses the single non-negative duration argument of the current subdirective.
func idpDurationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", opt, err)
	}
	if dur < 0 {
		return d.Errf("%s must not be negative, got %s", opt, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*IDP)(nil)
