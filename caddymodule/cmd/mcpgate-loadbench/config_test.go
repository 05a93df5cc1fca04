package main

import (
	"encoding/json"
	"testing"
)

func TestCaddyConfig(t *testing.T) {
	p := caddyParams{Backend: "127.0.0.1:1", ProxyAddr: "127.0.0.1:2", GatewayAddr: "127.0.0.1:3", AdminAddr: "127.0.0.1:4",
		Issuer: "http://127.0.0.1:5", Resource: "http://127.0.0.1:3/mcp", VerifyCache: 10, UpstreamLRU: 20}
	b, err := caddyConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
					Routes []struct {
						Handle []map[string]any `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		server   string
		listen   string
		handlers []string
	}{
		{"proxy", p.ProxyAddr, []string{"reverse_proxy"}},
		{"gateway", p.GatewayAddr, []string{"mcp_auth", "reverse_proxy"}},
	}
	for _, tt := range tests {
		s, ok := cfg.Apps.HTTP.Servers[tt.server]
		if !ok || len(s.Listen) != 1 || s.Listen[0] != tt.listen || len(s.Routes) != 1 {
			t.Fatalf("server %s: %+v", tt.server, s)
		}
		var got []string
		for _, h := range s.Routes[0].Handle {
			got = append(got, h["handler"].(string))
		}
		if len(got) != len(tt.handlers) || got[0] != tt.handlers[0] {
			t.Fatalf("server %s handlers %v, want %v", tt.server, got, tt.handlers)
		}
		if tt.server == "gateway" {
			h := s.Routes[0].Handle[0]
			if h["verify_cache_size"].(float64) != 10 || h["upstream_cache_size"].(float64) != 20 || h["resource"] != p.Resource || h["upstream_header"] != upstreamHeader {
				t.Fatalf("mcp_auth config %v", h)
			}
		}
	}
	if _, err := caddyConfig(caddyParams{}); err == nil {
		t.Fatal("empty params accepted")
	}
	if len(cfg.Apps.HTTP.Servers) != 2 {
		t.Fatalf("servers %v: the phases' servers added without their flags", cfg.Apps.HTTP.Servers)
	}

	// With the addresses of -policy-only and -stdio-only, their servers.
	p.PolicyAddr, p.Policy1Addr, p.MCPBackend, p.MCPHTTPAddr, p.StdioAddr = "127.0.0.1:6", "127.0.0.1:10", "127.0.0.1:7", "127.0.0.1:8", "127.0.0.1:9"
	p.StdioCommand, p.StdioProcesses = "/tmp/mcpbackend", 12
	if b, err = caddyConfig(p); err != nil {
		t.Fatal(err)
	}
	cfg.Apps.HTTP.Servers = nil
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		server, listen, last string
		policy               bool
	}{
		{"gateway", p.GatewayAddr, "reverse_proxy", false},
		{"policy", p.PolicyAddr, "reverse_proxy", true},
		{"policy1", p.Policy1Addr, "reverse_proxy", true},
		{"mcphttp", p.MCPHTTPAddr, "reverse_proxy", false},
		{"stdio", p.StdioAddr, "mcp_stdio", false},
	} {
		s := cfg.Apps.HTTP.Servers[tt.server]
		if len(s.Listen) != 1 || s.Listen[0] != tt.listen || len(s.Routes) != 1 || len(s.Routes[0].Handle) != 2 {
			t.Fatalf("server %s: %+v", tt.server, s)
		}
		auth, last := s.Routes[0].Handle[0], s.Routes[0].Handle[1]
		if auth["handler"] != "mcp_auth" || last["handler"] != tt.last || (auth["tool_policy"] != nil) != tt.policy {
			t.Errorf("server %s: %v then %v", tt.server, auth["handler"], last["handler"])
		}
		switch tt.server {
		case "policy", "policy1":
			want := map[string]int{"policy": policyRules, "policy1": 1}[tt.server]
			if rules := auth["tool_policy"].(map[string]any)["rules"].([]any); len(rules) != want {
				t.Errorf("server %s: %d rules, want %d", tt.server, len(rules), want)
			}
		case "mcphttp":
			if ups := last["upstreams"].([]any); ups[0].(map[string]any)["dial"] != p.MCPBackend {
				t.Errorf("mcphttp proxies to %v", ups)
			}
		case "stdio":
			env := last["env"].(map[string]any)
			if last["command"] != p.StdioCommand || env["GITHUB_ACCESS_TOKEN"] != "{http.request.header."+upstreamHeader+"}" || last["max_processes"].(float64) != 12 {
				t.Errorf("mcp_stdio config %v", last)
			}
		}
	}
	p.Policy1Addr = ""
	if _, err := caddyConfig(p); err == nil {
		t.Error("one policy server without the other accepted")
	}
	p.Policy1Addr, p.StdioCommand = "127.0.0.1:10", ""
	if _, err := caddyConfig(p); err == nil {
		t.Error("stdio servers without a command accepted")
	}
}
