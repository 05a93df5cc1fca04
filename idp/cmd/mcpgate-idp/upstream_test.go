package main

import (
	"bytes"
	"reflect"
	"testing"
)

func TestUpstreamFlags(t *testing.T) {
	env := map[string]string{"MCPGATE_OIDC_CLIENT_SECRET": "s3cret", "MCPGATE_OIDC_CLIENT_ID": "cid"}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	c, err := parseFlags([]string{
		"-oidc-issuer", "https://login.corp.example", "-oidc-name", "corp", "-oidc-display-name", "Corp SSO",
		"-oidc-email-domains", "corp.example, partner.example", "-oidc-required-groups", "mcp",
		"-oidc-token-claims", "email,groups", "-github-link-only",
	}, getenv, &out)
	if err != nil {
		t.Fatal(err)
	}
	ups := c.upstream.options(getenv)
	if len(ups) != 1 {
		t.Fatalf("upstreams: %+v", ups)
	}
	u := ups[0]
	if u.Name != "corp" || u.DisplayName != "Corp SSO" || u.ClientID != "cid" || u.ClientSecret != "s3cret" ||
		!reflect.DeepEqual(u.AllowedEmailDomains, []string{"corp.example", "partner.example"}) ||
		!reflect.DeepEqual(u.RequiredGroups, []string{"mcp"}) || !reflect.DeepEqual(u.TokenClaims, []string{"email", "groups"}) ||
		!reflect.DeepEqual(u.Scopes, []string{"openid", "email", "profile"}) || !c.upstream.githubLinkOnly {
		t.Fatalf("upstream: %+v", u)
	}
	c, _ = parseFlags(nil, func(string) string { return "" }, &out)
	if ups := c.upstream.options(getenv); ups != nil {
		t.Fatalf("no -oidc-issuer yet upstreams %+v", ups)
	}
}
