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
	c, err = parseFlags([]string{"-idjag-issuer", "https://corp.okta.com", "-idjag-jwks-url", "https://corp.okta.com/keys", "-idjag-client-ids", "a, b"}, getenv, &out)
	if err != nil {
		t.Fatal(err)
	}
	if tr := c.upstream.idjagTrusts(); len(tr) != 1 || tr[0].JWKSURL != "https://corp.okta.com/keys" || !reflect.DeepEqual(tr[0].ClientIDs, []string{"a", "b"}) {
		t.Fatalf("idjag trusts: %+v", tr)
	}
	c, _ = parseFlags(nil, func(string) string { return "" }, &out)
	if ups := c.upstream.options(getenv); ups != nil {
		t.Fatalf("no -oidc-issuer yet upstreams %+v", ups)
	}
	if tr := c.upstream.idjagTrusts(); tr != nil {
		t.Fatalf("no -idjag-issuer yet trusts %+v", tr)
	}
}
