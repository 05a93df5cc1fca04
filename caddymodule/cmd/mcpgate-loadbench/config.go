package main

import (
	"encoding/json"
	"fmt"
)

// caddyParams shapes the Caddy configuration under test.
type caddyParams struct {
	Backend     string // host:port of the backend
	ProxyAddr   string // (b) reverse_proxy alone
	GatewayAddr string // (c)/(d) mcp_auth + reverse_proxy
	AdminAddr   string // Caddy's admin API (for pprof), loopback
	Issuer      string
	Resource    string
	VerifyCache int // verify_cache_size
	UpstreamLRU int // upstream_cache_size
}

// caddyConfig returns Caddy's JSON config: two plain-HTTP loopback servers
// with the same reverse_proxy (same transport settings), one of them behind
// mcp_auth with a token_exchange upstream source. Logs at WARN, no access
// logs, admin API on loopback only (it serves /debug/pprof).
func caddyConfig(p caddyParams) ([]byte, error) {
	if p.Backend == "" || p.ProxyAddr == "" || p.GatewayAddr == "" || p.Issuer == "" || p.Resource == "" {
		return nil, fmt.Errorf("caddy config: missing address, issuer or resource")
	}
	proxy := map[string]any{
		"handler":   "reverse_proxy",
		"upstreams": []any{map[string]any{"dial": p.Backend}},
		// Enough idle connections for the highest concurrency, so neither
		// server churns connections to the backend.
		"transport": map[string]any{"protocol": "http", "keep_alive": map[string]any{"max_idle_conns_per_host": 1024}},
	}
	auth := map[string]any{
		"handler":           "mcp_auth",
		"resource":          p.Resource,
		"issuers":           []any{map[string]any{"issuer": p.Issuer, "jwks_uri": p.Issuer + "/jwks"}},
		"scopes_supported":  []string{"mcp:tools", "github:repo"},
		"required_scopes":   []string{"mcp:tools"},
		"verify_cache_size": p.VerifyCache,
		"upstream_token": map[string]any{
			"source": "token_exchange", "token_endpoint": p.Issuer + "/token",
			"client_id": "gateway", "client_secret": exchangeSecret, "audience": "https://api.github.com",
		},
		"upstream_cache_size": p.UpstreamLRU,
		// Named, not left to the default (Authorization since 46f6966),
		// so that the backend can tell the injected token from the
		// client's and the figures stay comparable with earlier runs.
		"upstream_header": upstreamHeader,
	}
	server := func(addr string, handlers ...any) map[string]any {
		return map[string]any{
			"listen":          []string{addr},
			"automatic_https": map[string]any{"disable": true},
			"routes":          []any{map[string]any{"handle": handlers}},
		}
	}
	cfg := map[string]any{
		"admin":   map[string]any{"listen": p.AdminAddr},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
			"proxy":   server(p.ProxyAddr, proxy),
			"gateway": server(p.GatewayAddr, auth, proxy),
		}}},
	}
	return json.MarshalIndent(cfg, "", "  ")
}
