package idp

import (
	"context"
	"testing"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// The access token contract: the gateway's verifier (jwtverify, default config, JWKS discovered from
// this issuer's metadata) accepts this IdP's access tokens, RS256 and ES256, with the expected
// claims; a token for another resource is refused.
func TestContractGatewayVerifierAcceptsTokens(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.SigningAlgorithm = alg })
			c := e.register(nil)
			tok := e.login(c, "contract", "")["access_token"].(string)
			ks, err := jwtverify.NewRemoteKeySet(jwtverify.KeySetConfig{Issuer: e.issuer, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer ks.Close()
			v, err := jwtverify.NewVerifier(jwtverify.Config{Audience: "https://mcp.example.com/mcp/", Now: e.clock.Now},
				map[string]jwtverify.KeySource{e.issuer: ks})
			if err != nil {
				t.Fatal(err)
			}
			cl, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("gateway verifier rejects the IdP's token: %v (%s)", err, jwtverify.Reason(err))
			}
			if cl.Subject != "dev:contract" || cl.ClientID != c.ID || cl.Scope != "mcp" || cl.Issuer != e.issuer || cl.ID == "" || cl.IssuedAt.IsZero() {
				t.Errorf("claims %+v", cl)
			}
			other, _ := jwtverify.NewVerifier(jwtverify.Config{Audience: "https://other.example.com/mcp", Now: e.clock.Now},
				map[string]jwtverify.KeySource{e.issuer: ks})
			if _, err := other.Verify(context.Background(), tok); err == nil {
				t.Errorf("token accepted for another resource")
			}
		})
	}
}
