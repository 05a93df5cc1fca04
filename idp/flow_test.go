package idp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// fetchJWKS parses the published JWKS into public keys by kid, checking that each kid is the
// RFC 7638 thumbprint of its key.
func fetchJWKS(t *testing.T, e *testEnv) map[string]crypto.PublicKey {
	t.Helper()
	resp, err := http.Get(e.url("/jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []jwk }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	out := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if got := thumbprint(k); got != k.Kid {
			t.Errorf("kid %q is not the RFC 7638 thumbprint %q", k.Kid, got)
		}
		dec := func(s string) []byte { b, _ := base64.RawURLEncoding.DecodeString(s); return b }
		switch k.Kty {
		case "RSA":
			out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(dec(k.N)), E: int(new(big.Int).SetBytes(dec(k.E)).Int64())}
		case "EC":
			out[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(dec(k.X)), Y: new(big.Int).SetBytes(dec(k.Y))}
		}
	}
	return out
}

// verifyWithJWKS checks an access token the way a resource server would (RFC 9068 claims, signature from the JWKS).
func verifyWithJWKS(t *testing.T, e *testEnv, raw string) (jwt.MapClaims, *jwt.Token) {
	t.Helper()
	keys := fetchJWKS(t, e)
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(tk *jwt.Token) (any, error) {
		k, ok := keys[tk.Header["kid"].(string)]
		if !ok {
			t.Fatalf("kid %v not in JWKS", tk.Header["kid"])
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithIssuer(e.issuer), jwt.WithTimeFunc(e.clock.Now))
	if err != nil {
		t.Fatalf("access token does not verify against the JWKS: %v", err)
	}
	return claims, tok
}

func TestFullFlowDevLogin(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.SigningAlgorithm = alg })
			c := e.register(map[string]any{"scope": "mcp"})
			b := e.browser()
			p := newPKCE()
			q := e.getCode(b, c, p, "alice", "ghp_devtoken123", url.Values{"resource": {"https://MCP.example.com/mcp/"}})
			if q.Get("state") != "st-123" || q.Get("iss") != e.issuer || q.Get("code") == "" {
				t.Fatalf("authorization response %v: want code, state and iss", q)
			}
			resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("token: %d %v", resp.StatusCode, m)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			if m["token_type"] != "Bearer" || m["refresh_token"] == nil || m["scope"] != "mcp" {
				t.Errorf("token response %v", m)
			}
			claims, tok := verifyWithJWKS(t, e, m["access_token"].(string))
			if tok.Header["typ"] != "at+jwt" || tok.Header["alg"] != alg {
				t.Errorf("header %v", tok.Header)
			}
			aud, _ := claims.GetAudience()
			if claims["sub"] != "dev:alice" || claims["client_id"] != c.ID || claims["scope"] != "mcp" ||
				!slices.Equal(aud, []string{"https://mcp.example.com/mcp"}) || claims["jti"] == nil || claims["iat"] == nil || claims["exp"] == nil {
				t.Errorf("claims %v", claims)
			}

			// Second authorization by the same user and client: consent remembered, no page.
			p2 := newPKCE()
			pg := b.follow(authorizeURL(e, c, p2, url.Values{"resource": {"https://mcp.example.com/mcp"}}))
			if pg.status != http.StatusFound || !strings.Contains(pg.location, "code=") {
				t.Fatalf("remembered consent: got %d %s", pg.status, pg.body)
			}

			// Userinfo.
			req, _ := http.NewRequest(http.MethodGet, e.url("/userinfo"), nil)
			req.Header.Set("Authorization", "Bearer "+m["access_token"].(string))
			uresp, um := doJSON(t, req)
			if uresp.StatusCode != 200 || um["sub"] != "dev:alice" || um["preferred_username"] != "alice" || um["name"] != "alice" || um["github_linked"] != true {
				t.Errorf("userinfo %d %v", uresp.StatusCode, um)
			}

			// Token exchange returns the pasted PAT.
			xresp, xm := e.exchange(m["access_token"].(string), "gateway", "gateway-secret-0123456789")
			if xresp.StatusCode != 200 || xm["access_token"] != "ghp_devtoken123" || xm["issued_token_type"] != tokenTypeAccessToken || xm["token_type"] != "Bearer" {
				t.Errorf("exchange %d %v", xresp.StatusCode, xm)
			}
			if _, ok := xm["expires_in"]; ok {
				t.Errorf("expires_in present for a non-expiring token")
			}
		})
	}
}

func (e *testEnv) exchange(subject, user, pass string) (*http.Response, map[string]any) {
	e.t.Helper()
	return e.postForm("/token", url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {subject},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
		"audience":             {"https://api.github.com"},
	}, user, pass)
}
