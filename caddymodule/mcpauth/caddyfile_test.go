package mcpauth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, c := range []struct {
		name  string
		input string
		want  Handler
	}{
		{"issue example", `mcp_auth {
			resource https://mcp.example.com/mcp
			issuer https://auth.example.com
			issuer https://idp2.example.com {
				jwks_uri https://idp2.example.com/keys
			}
			scopes_supported mcp:tools github:repo
			required_scopes mcp:tools
			upstream_token token_exchange {
				token_endpoint https://auth.example.com/token
				client_id gateway
				client_secret {env.MCPGATE_GATEWAY_SECRET}
				audience https://api.github.com
			}
			upstream_header X-GitHub-Token
		}`, Handler{
			Resource: "https://mcp.example.com/mcp",
			Issuers: []IssuerConfig{{Issuer: "https://auth.example.com"},
				{Issuer: "https://idp2.example.com", JWKSURI: "https://idp2.example.com/keys"}},
			ScopesSupported: []string{"mcp:tools", "github:repo"},
			RequiredScopes:  []string{"mcp:tools"},
			UpstreamRaw:     json.RawMessage(`{"audience":"https://api.github.com","client_id":"gateway","client_secret":"{env.MCPGATE_GATEWAY_SECRET}","source":"token_exchange","token_endpoint":"https://auth.example.com/token"}`),
			UpstreamHeader:  "X-GitHub-Token",
		}},
		{"every option", `mcp_auth {
			resource https://mcp.example.com/mcp
			issuer https://a.example
			authorization_servers https://a.example https://b.example
			resource_name "My MCP"
			resource_documentation https://docs.example
			algorithms RS256 ES256 PS256
			leeway 10s
			max_token_size 4096
			jwks_refresh_interval 1h
			jwks_refetch_cooldown 1m
			jwks_fetch_timeout 2s
			verify_cache_size -1
			upstream_token static {env.GITHUB_ACCESS_TOKEN}
			upstream_header Authorization
			on_missing_upstream pass
			link_url https://a.example/link
			link_account GitHub
			upstream_cache_size 5
			upstream_cache_ttl 1m
			upstream_timeout 3s
			retry_after 7s
			metadata_path /.well-known/oauth-protected-resource/custom
		}`, Handler{
			Resource:              "https://mcp.example.com/mcp",
			Issuers:               []IssuerConfig{{Issuer: "https://a.example"}},
			AuthorizationServers:  []string{"https://a.example", "https://b.example"},
			ResourceName:          "My MCP",
			ResourceDocumentation: "https://docs.example",
			Algorithms:            []string{"RS256", "ES256", "PS256"},
			Leeway:                caddy.Duration(10 * time.Second),
			MaxTokenSize:          4096,
			JWKSRefreshInterval:   caddy.Duration(time.Hour),
			JWKSRefetchCooldown:   caddy.Duration(time.Minute),
			JWKSFetchTimeout:      caddy.Duration(2 * time.Second),
			VerifyCacheSize:       -1,
			UpstreamRaw:           json.RawMessage(`{"source":"static","token":"{env.GITHUB_ACCESS_TOKEN}"}`),
			UpstreamHeader:        "Authorization",
			OnMissingUpstream:     "pass",
			LinkURL:               "https://a.example/link",
			LinkAccount:           "GitHub",
			UpstreamCacheSize:     5,
			UpstreamCacheTTL:      caddy.Duration(time.Minute),
			UpstreamTimeout:       caddy.Duration(3 * time.Second),
			RetryAfter:            caddy.Duration(7 * time.Second),
			MetadataPath:          "/.well-known/oauth-protected-resource/custom",
		}},
		{"keep_authorization and static block", `mcp_auth {
			issuer https://a.example
			keep_authorization
			upstream_token static {
				token abc
			}
		}`, Handler{
			Issuers:           []IssuerConfig{{Issuer: "https://a.example"}},
			KeepAuthorization: true,
			UpstreamRaw:       json.RawMessage(`{"source":"static","token":"abc"}`),
		}},
		{"token_exchange every option", `mcp_auth {
			issuer https://a.example
			upstream_token token_exchange {
				issuer https://a.example
				token_endpoint https://a.example/token
				client_id gw
				client_secret s
				audience https://api.github.com
				resource https://api.github.com/
				scope repo read:user
				auth_method client_secret_post
				timeout 2s
			}
		}`, Handler{
			Issuers:     []IssuerConfig{{Issuer: "https://a.example"}},
			UpstreamRaw: json.RawMessage(`{"audience":"https://api.github.com","auth_method":"client_secret_post","client_id":"gw","client_secret":"s","issuer":"https://a.example","resource":"https://api.github.com/","scope":"repo read:user","source":"token_exchange","timeout":2000000000,"token_endpoint":"https://a.example/token"}`),
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got Handler
			if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if string(got.UpstreamRaw) != string(c.want.UpstreamRaw) {
				t.Errorf("upstream_token:\n got %s\nwant %s", got.UpstreamRaw, c.want.UpstreamRaw)
			}
			got.UpstreamRaw, c.want.UpstreamRaw = nil, nil
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, c := range []struct{ name, input, want string }{
		{"argument on directive", `mcp_auth https://x { }`, "wrong argument count"},
		{"unknown option", "mcp_auth {\n frobnicate 1\n}", "unrecognized mcp_auth option"},
		{"resource without value", "mcp_auth {\n resource\n}", "wrong argument count"},
		{"resource with two values", "mcp_auth {\n resource a b\n}", "wrong argument count"},
		{"issuer unknown sub-option", "mcp_auth {\n issuer https://a {\n keys x\n }\n}", "unrecognized issuer option"},
		{"bad duration", "mcp_auth {\n leeway soon\n}", "bad duration"},
		{"bad number", "mcp_auth {\n max_token_size big\n}", "bad number"},
		{"bad on_missing_upstream", "mcp_auth {\n on_missing_upstream maybe\n}", "on_missing_upstream"},
		{"keep_authorization with arg", "mcp_auth {\n keep_authorization yes\n}", "wrong argument count"},
		{"unknown source", "mcp_auth {\n upstream_token nosuch\n}", "nosuch"},
		{"two sources", "mcp_auth {\n upstream_token static a\n upstream_token static b\n}", "already specified"},
		{"static without token", "mcp_auth {\n upstream_token static\n}", "needs a token"},
		{"token_exchange unknown option", "mcp_auth {\n upstream_token token_exchange {\n secret x\n }\n}", "unrecognized token_exchange option"},
		{"token_exchange bad timeout", "mcp_auth {\n upstream_token token_exchange {\n timeout never\n }\n}", "bad timeout"},
		{"empty scopes", "mcp_auth {\n required_scopes\n}", "wrong argument count"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want containing %q", err, c.want)
			}
		})
	}
}
