package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// fakeKeycloak answers the broker token endpoint of realm "mcp" with the bodies a real Keycloak
// gives (pinned against Keycloak 26.5.6 and 26.7.3 in internal/keycloaktest): answer maps the
// user's access token to a status and body.
type fakeKeycloak struct {
	answers  map[string][2]string // subject token -> {status, body}
	requests atomic.Int64
	last     *http.Request
	lastForm string
}

func (f *fakeKeycloak) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.last = r
	_ = r.ParseForm()
	f.lastForm = r.PostForm.Encode()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/realms/mcp/broker/github/token" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"Unable to find matching target resource method"}`)
		return
	}
	subject := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if r.Method == http.MethodPost {
		if id, secret, ok := r.BasicAuth(); !ok || id != "mcp-gateway" || secret != "gw-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`)
			return
		}
		subject = r.PostForm.Get("token")
	}
	a, ok := f.answers[subject]
	if !ok {
		a = [2]string{"400", `{"errorMessage":"Invalid token."}`}
	}
	var st int
	fmt.Sscan(a[0], &st)
	w.WriteHeader(st)
	fmt.Fprint(w, a[1])
}

func provisionKeycloak(t *testing.T, k *Keycloak, issuer string) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := k.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := k.bindIssuers([]string{issuer}); err != nil {
		t.Fatal(err)
	}
}

func TestKeycloakSource(t *testing.T) {
	const notLinked = `{"errorMessage":"User [5b1c7a0e-1c1d-4e0e-9a53-0f5d0e1f2a3b] is not associated with identity provider [github]."}`
	getAnswers := map[string][2]string{
		"alice.at": {"200", `access_token=gho_alice&scope=repo&token_type=bearer`},
		"erin.at":  {"200", `{"access_token":"gho_erin","token_type":"bearer","scope":"repo"}`},
		"carol.at": {"400", notLinked},
		"dave.at":  {"403", `{"errorMessage":"Client [mcp-client] not authorized to retrieve tokens from identity provider [github]."}`},
		"v2.at":    {"400", `{"errorMessage":"Identity Brokering API feature not enabled"}`},
		"empty.at": {"200", `scope=repo`},
		"down.at":  {"502", `bad gateway`},
	}
	postAnswers := map[string][2]string{
		"alice.at": {"200", `{"access_token":"gho_alice","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","expires_in":0}`},
		"carol.at": {"400", `{"error":"invalid_request","error_description":"User not associated to identity provider"}`},
		"bad.at":   {"400", `{"error":"invalid_token","error_description":"Invalid token"}`},
		"other.at": {"403", `{"error":"invalid_client","error_description":"Client not allowed to retrieve token for the provider"}`},
	}
	for _, tc := range []struct {
		method, subject, want string
		err                   error
		hint                  string
	}{
		{"get", "alice.at", "gho_alice", nil, ""},
		{"get", "erin.at", "gho_erin", nil, ""},
		{"get", "carol.at", "", ErrNoUpstreamToken, ""},
		{"get", "garbage", "", ErrSubjectTokenRejected, ""},
		{"get", "dave.at", "", ErrSourceUnavailable, "read-token role"},
		{"get", "v2.at", "", ErrSourceUnavailable, "set method post"},
		{"get", "empty.at", "", ErrSourceUnavailable, "without an access_token"},
		{"get", "down.at", "", ErrSourceUnavailable, "502"},
		{"post", "alice.at", "gho_alice", nil, ""},
		{"post", "carol.at", "", ErrNoUpstreamToken, ""},
		{"post", "bad.at", "", ErrSubjectTokenRejected, ""},
		{"post", "other.at", "", ErrSourceUnavailable, "external.token"},
	} {
		t.Run(tc.method+" "+tc.subject, func(t *testing.T) {
			f := &fakeKeycloak{answers: getAnswers}
			if tc.method == "post" {
				f.answers = postAnswers
			}
			srv := httptest.NewServer(f)
			defer srv.Close()
			issuer := srv.URL + "/realms/mcp"
			k := &Keycloak{Method: tc.method}
			if tc.method == "post" {
				t.Setenv("MCPGATE_TEST_KC_SECRET", "gw-secret")
				k.ClientID, k.ClientSecret = "mcp-gateway", "{env.MCPGATE_TEST_KC_SECRET}"
			}
			provisionKeycloak(t, k, issuer)
			tok, err := k.UpstreamToken(context.Background(), &jwtverify.Claims{Issuer: issuer, Subject: "u"}, tc.subject)
			if !errors.Is(err, tc.err) || tok.Value != tc.want {
				t.Fatalf("token %q err %v, want %q %v", tok.Value, err, tc.want, tc.err)
			}
			if tc.hint != "" && !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("error %q does not say %q", err, tc.hint)
			}
			if err != nil && (strings.Contains(err.Error(), tc.subject) || strings.Contains(err.Error(), "gw-secret")) {
				t.Errorf("error %q reveals a credential", err)
			}
			if tc.method == "get" && (f.last.Method != http.MethodGet || f.last.Header.Get("Authorization") != "Bearer "+tc.subject) {
				t.Errorf("GET form: %s with Authorization %q", f.last.Method, f.last.Header.Get("Authorization"))
			}
			if tc.method == "post" && f.lastForm != "token="+tc.subject {
				t.Errorf("POST form body %q, want only token=", f.lastForm)
			}
		})
	}
}

func TestKeycloakSourceConfig(t *testing.T) {
	f := &fakeKeycloak{answers: map[string][2]string{"a": {"200", "access_token=x"}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	// Realm defaults to the issuer; another issuer's token never reaches Keycloak.
	k := &Keycloak{}
	provisionKeycloak(t, k, srv.URL+"/realms/mcp")
	if k.endpoint != srv.URL+"/realms/mcp/broker/github/token" {
		t.Errorf("endpoint %q", k.endpoint)
	}
	if _, err := k.UpstreamToken(context.Background(), &jwtverify.Claims{Issuer: "https://other.example", Subject: "u"}, "a"); !errors.Is(err, ErrNoUpstreamToken) || f.requests.Load() != 0 {
		t.Fatalf("another issuer's token: %v, %d requests", err, f.requests.Load())
	}
	for name, bad := range map[string]*Keycloak{
		"post without client": {Method: "post"},
		"unknown method":      {Method: "exchange"},
		"alias with slash":    {Alias: "git/hub"},
		"relative realm":      {Realm: "/realms/mcp"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		if err := bad.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
		cancel()
	}
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`mcp_auth {
		upstream_token keycloak {
			realm https://sso.example.com/realms/mcp
			alias github
			method post
			client_id mcp-gateway
			client_secret {env.KC_SECRET}
			timeout 2s
		}
	}`))
	want := `{"alias":"github","client_id":"mcp-gateway","client_secret":"{env.KC_SECRET}","method":"post","realm":"https://sso.example.com/realms/mcp","source":"keycloak","timeout":2000000000}`
	if err != nil || string(h.UpstreamRaw) != want {
		t.Errorf("Caddyfile: %v\n got %s\nwant %s", err, h.UpstreamRaw, want)
	}
}
