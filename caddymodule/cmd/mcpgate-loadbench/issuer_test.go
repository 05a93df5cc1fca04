package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// TestMintedTokensVerify checks that the minted tokens are what the gateway
// accepts: verified by jwtverify against the fake issuer's JWKS.
func TestMintedTokensVerify(t *testing.T) {
	fi, err := newFakeIssuer()
	if err != nil {
		t.Fatal(err)
	}
	defer fi.Close()
	const res = "http://127.0.0.1:1/mcp"
	ks, err := jwtverify.NewRemoteKeySet(jwtverify.KeySetConfig{Issuer: fi.URL(), JWKSURI: fi.URL() + "/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	v, err := jwtverify.NewVerifier(jwtverify.Config{Audience: res, CacheSize: -1}, map[string]jwtverify.KeySource{fi.URL(): ks})
	if err != nil {
		t.Fatal(err)
	}
	m := minter{fi: fi, resource: res, now: time.Now()}
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			toks, err := m.mint(alg, 3, func(i int) string { return "user-" + alg })
			if err != nil {
				t.Fatal(err)
			}
			if toks[0] == toks[1] {
				t.Fatal("minted tokens are not distinct")
			}
			for _, tok := range toks {
				c, err := v.Verify(context.Background(), tok)
				if err != nil {
					t.Fatalf("Verify: %v (%s)", err, jwtverify.Reason(err))
				}
				if c.Subject != "user-"+alg {
					t.Fatalf("sub = %q", c.Subject)
				}
			}
		})
	}
	if _, err := m.token("HS256", "x", 0); err == nil {
		t.Fatal("HS256 minted")
	}
}

func TestFakeExchange(t *testing.T) {
	fi, err := newFakeIssuer()
	if err != nil {
		t.Fatal(err)
	}
	defer fi.Close()
	tests := []struct {
		name   string
		secret string
		form   url.Values
		want   int
	}{
		{"ok", exchangeSecret, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"x"}}, 200},
		{"bad secret", "nope", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"x"}}, 401},
		{"wrong grant", exchangeSecret, url.Values{"grant_type": {"refresh_token"}, "subject_token": {"x"}}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, fi.URL()+"/token", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("gateway", tt.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 200 {
				var body struct {
					AccessToken string `json:"access_token"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || !strings.HasPrefix(body.AccessToken, upstreamPrefix) {
					t.Fatalf("body %+v, %v", body, err)
				}
			}
		})
	}
}
