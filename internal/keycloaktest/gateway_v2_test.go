package keycloaktest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// (1) The gateway with the keycloak source's method post against Keycloak 26.7 with the identity
// brokering API v2 (a second server, started for this test): the gateway authenticates as the
// confidential client mcp-gateway and posts the user's access token; alice gets her repositories,
// carol (no GitHub link) 403 upstream_account_not_linked.
func TestGatewayBrokeringV2(t *testing.T) {
	port := freePort(t)
	mcpURL := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	realm, err := RealmParams{GitHubURL: shared.ghURL, Audience: mcpURL, BrokeringV2: true}.Realm()
	if err != nil {
		t.Fatal(err)
	}
	kc := StartT(t, Options{Version: V2Version, Realms: [][]byte{realm}, Features: []string{"identity-brokering-api:v2"}})
	t.Logf("Keycloak %s ready in %s (cached build reused: %v)", V2Version, kc.StartDuration.Round(100*time.Millisecond), kc.BuildReused)
	g := startGateway(t, gatewayOpts{kc: kc, port: port, clientID: PublicClient, post: true})

	alice := g.signInAt(t, githubfake.AliceLogin, "")
	shared.gh.Reset()
	st, _, body := g.call(t, alice)
	if st != http.StatusOK || !strings.Contains(body, "alice/secret-plans") || strings.Contains(body, "bob/tools") {
		t.Errorf("alice: %d %.300s", st, body)
	}
	toks := shared.gh.Tokens()
	if len(toks) == 0 {
		t.Error("the GitHub fake received no call")
	}
	for _, tok := range toks {
		if tok != githubfake.AliceToken {
			t.Errorf("a GitHub call carried a token that is not alice's")
		}
	}
	carol := g.signInAt(t, Carol, DefaultUserPassword)
	st, hdr, body := g.call(t, carol)
	wantRejection(t, "carol", st, hdr, body, http.StatusForbidden, "upstream_account_not_linked")
	g.assertNoTokens(t, map[string]string{"alice's access token": alice, "carol's access token": carol,
		"the gateway's client secret": DefaultGatewaySecret})
}
