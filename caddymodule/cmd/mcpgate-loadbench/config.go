package main

import (
	"encoding/json"
	"fmt"

	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
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

	// PolicyAddr and Policy1Addr, both set or neither, add two servers
	// like the gateway with a tool_policy in mcp_auth (the -policy-only
	// phase): benchPolicy's 20 rules, and its last rule alone.
	PolicyAddr, Policy1Addr string
	// MCPBackend, MCPHTTPAddr and StdioAddr, all set or none, add the
	// servers of the -stdio-only phase: mcp_auth + reverse_proxy to the
	// mcpbackend at MCPBackend (HTTP), and mcp_auth + mcp_stdio running
	// StdioCommand (mcpbackend -transport stdio) with at most
	// StdioProcesses processes.
	MCPBackend, MCPHTTPAddr, StdioAddr string
	StdioCommand                       string
	StdioProcesses                     int
}

// caddyConfig returns Caddy's JSON config: two plain-HTTP loopback servers
// with the same reverse_proxy (same transport settings), one of them behind
// mcp_auth with a token_exchange upstream source. Logs at WARN, no access
// logs, admin API on loopback only (it serves /debug/pprof). The servers
// of -policy-only and -stdio-only are added only when their addresses are
// set, so the other modes run the same two servers as before.
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
	auth := mcpAuth(p, nil)
	server := func(addr string, handlers ...any) map[string]any {
		return map[string]any{
			"listen":          []string{addr},
			"automatic_https": map[string]any{"disable": true},
			"routes":          []any{map[string]any{"handle": handlers}},
		}
	}
	servers := map[string]any{
		"proxy":   server(p.ProxyAddr, proxy),
		"gateway": server(p.GatewayAddr, auth, proxy),
	}
	if p.PolicyAddr != "" || p.Policy1Addr != "" {
		if p.PolicyAddr == "" || p.Policy1Addr == "" {
			return nil, fmt.Errorf("caddy config: the policy phase needs both server addresses")
		}
		full := benchPolicy()
		one := toolpolicy.Config{Default: full.Default, Rules: full.Rules[len(full.Rules)-1:]}
		servers["policy"] = server(p.PolicyAddr, mcpAuth(p, full), proxy)
		servers["policy1"] = server(p.Policy1Addr, mcpAuth(p, one), proxy)
	}
	if p.MCPBackend != "" || p.MCPHTTPAddr != "" || p.StdioAddr != "" {
		if p.MCPBackend == "" || p.MCPHTTPAddr == "" || p.StdioAddr == "" || p.StdioCommand == "" || p.StdioProcesses < 1 {
			return nil, fmt.Errorf("caddy config: the stdio phase needs the mcpbackend address, both server addresses, the command and a process limit")
		}
		mcpProxy := map[string]any{
			"handler":   "reverse_proxy",
			"upstreams": []any{map[string]any{"dial": p.MCPBackend}},
			"transport": map[string]any{"protocol": "http", "keep_alive": map[string]any{"max_idle_conns_per_host": 1024}},
		}
		stdio := map[string]any{
			"handler": "mcp_stdio",
			"command": p.StdioCommand,
			"args":    []string{"-transport", "stdio", "-log-level", "warn"},
			// The documented wiring: mcp_auth's upstream header (named
			// X-GitHub-Token above) into the process's environment.
			"env":                    map[string]string{"GITHUB_ACCESS_TOKEN": "{http.request.header." + upstreamHeader + "}"},
			"max_processes":          p.StdioProcesses,
			"max_processes_per_user": 1,
		}
		servers["mcphttp"] = server(p.MCPHTTPAddr, auth, mcpProxy)
		servers["stdio"] = server(p.StdioAddr, auth, stdio)
	}
	cfg := map[string]any{
		"admin":   map[string]any{"listen": p.AdminAddr},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"apps":    map[string]any{"http": map[string]any{"servers": servers}},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// mcpAuth is the mcp_auth handler of every gated server, with policy as
// its tool_policy when not nil.
func mcpAuth(p caddyParams, policy any) map[string]any {
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
	if policy != nil {
		auth["tool_policy"] = policy
	}
	return auth
}
