package mcpidp

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestIDPUpstreamCaddyfile(t *testing.T) {
	in := `mcp_idp {
		issuer https://auth.example.com
		github {
			client_id {env.GH_ID}
			client_secret {env.GH_SECRET}
			link_only
		}
		oidc corp {
			display_name "Corp SSO"
			issuer https://login.corp.example
			client_id {env.CORP_ID}
			client_secret {env.CORP_SECRET}
			scopes openid email profile groups
			allowed_email_domains corp.example
			allowed_users bob@partner.example
			required_groups mcp-users
			groups_claim roles
			required_claim tid 1234
			token_claims email groups
		}
	}`
	var m IDP
	if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	want := IDPUpstream{
		Name: "corp", DisplayName: "Corp SSO", Issuer: "https://login.corp.example",
		ClientID: "{env.CORP_ID}", ClientSecret: "{env.CORP_SECRET}",
		Scopes: []string{"openid", "email", "profile", "groups"}, AllowedEmailDomains: []string{"corp.example"},
		AllowedUsers: []string{"bob@partner.example"}, RequiredGroups: []string{"mcp-users"}, GroupsClaim: "roles",
		RequiredClaims: map[string]string{"tid": "1234"}, TokenClaims: []string{"email", "groups"},
	}
	if len(m.Upstreams) != 1 || !reflect.DeepEqual(m.Upstreams[0], want) {
		t.Fatalf("got %+v", m.Upstreams)
	}
	if m.GitHub == nil || !m.GitHub.LinkOnly {
		t.Fatal("link_only not parsed")
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("an upstream alone should be a valid sign-in: %v", err)
	}

	t.Setenv("CORP_ID", "cid")
	t.Setenv("CORP_SECRET", "csecret")
	t.Setenv("GH_ID", "ghid")
	t.Setenv("GH_SECRET", "ghsecret")
	opts, err := m.idpOptions(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if u := opts.Upstreams[0]; u.ClientID != "cid" || u.ClientSecret != "csecret" || u.GroupsClaim != "roles" || !opts.GitHub.LinkOnly {
		t.Fatalf("options: %+v", opts.Upstreams[0])
	}
	os.Unsetenv("CORP_SECRET")
	if _, err := m.idpOptions(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), "client_secret expands to nothing") {
		t.Fatalf("unset secret: %v", err)
	}

	for _, bad := range []string{
		`mcp_idp { oidc { issuer https://x } }`,
		`mcp_idp { oidc corp { colour blue } }`,
		`mcp_idp { oidc corp { required_claim tid } }`,
		"mcp_idp {\n oidc corp {\n scopes\n }\n }",
	} {
		var m IDP
		if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
	// link_only GitHub alone is no way to sign in.
	m2 := IDP{Issuer: "https://a", GitHub: &IDPGitHub{ClientID: "x", LinkOnly: true}}
	if err := m2.Validate(); err == nil {
		t.Error("link_only GitHub without an upstream accepted")
	}
}

func TestIDPIDJAGTrustCaddyfile(t *testing.T) {
	in := `mcp_idp {
		issuer https://auth.example.com
		id_jag_trust https://corp.okta.com {
			jwks_url https://corp.okta.com/oauth2/v1/keys
			client_ids https://client.example/cimd.json abc123
			algorithms RS256
			max_lifetime 10m
		}
	}`
	var m IDP
	if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	want := IDPIDJAGTrust{Issuer: "https://corp.okta.com", JWKSURL: "https://corp.okta.com/oauth2/v1/keys",
		ClientIDs: []string{"https://client.example/cimd.json", "abc123"}, Algorithms: []string{"RS256"}, MaxLifetime: caddy.Duration(10 * 60e9)}
	if len(m.IDJAGTrusts) != 1 || !reflect.DeepEqual(m.IDJAGTrusts[0], want) {
		t.Fatalf("got %+v", m.IDJAGTrusts)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	opts, err := m.idpOptions(caddy.NewReplacer())
	if err != nil || len(opts.IDJAGTrusts) != 1 || opts.IDJAGTrusts[0].JWKSURL != want.JWKSURL {
		t.Fatalf("options: %+v %v", opts.IDJAGTrusts, err)
	}
	m.IDJAGTrusts[0].ClientIDs = nil
	if err := m.Validate(); err == nil {
		t.Fatal("a trust without client_ids accepted")
	}
	var bad IDP
	if err := bad.UnmarshalCaddyfile(caddyfile.NewTestDispenser("mcp_idp {\n id_jag_trust https://x {\n colour blue\n }\n }")); err == nil {
		t.Fatal("unknown option accepted")
	}
}
