package jwtverify

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// with returns a copy of goodClaims(now) changed by f.
func with(now time.Time, f func(map[string]any)) map[string]any {
	c := goodClaims(now)
	f(c)
	return c
}

// TestVerifySecurityCases covers gateway cases 3–14 of shared/SECURITY.md
// and the typ/ID-token rules of issue 3, each with its exact outcome.
func TestVerifySecurityCases(t *testing.T) {
	testKeys(t)
	clock := newFakeClock()
	now := clock.Now()
	leeway := DefaultLeeway

	// An attacker's server: any request to it is a failure (case 5).
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		_, _ = w.Write(jwksDoc(t, rsaJWK("rsa1", &rsaAttack.PublicKey)))
	}))
	defer evil.Close()

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	good := mustJSON(t, goodClaims(now))
	rs := func(h map[string]any, payload []byte) string {
		return signRaw(t, jwt.SigningMethodRS256, rsaKey, h, payload)
	}
	hdr := func(extra map[string]any) map[string]any {
		h := rsHeader("rsa1")
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	noneToken := func(sig string) string {
		return b64url(mustJSON(t, map[string]any{"alg": "none", "typ": "JWT"})) + "." + b64url(good) + "." + sig
	}

	tests := []struct {
		name   string
		token  func() string
		mod    func(*Config)
		reason string // "" means accepted
	}{
		{"valid RS256 at+jwt", func() string { return tokenRS256(t, goodClaims(now)) }, nil, ""},
		{"valid ES256", func() string { return tokenES256(t, goodClaims(now)) }, nil, ""},

		// Go's base64 decoder skips CR and LF, and the signature does not
		// cover its own segment: without the check these would verify.
		{"LF inside the signature", func() string {
			tok := tokenRS256(t, goodClaims(now))
			i := len(tok) - 10
			return tok[:i] + "\n" + tok[i:]
		}, nil, "malformed"},
		{"LF at the end", func() string { return tokenRS256(t, goodClaims(now)) + "\n" }, nil, "malformed"},
		{"CRLF inside the header", func() string { tok := tokenRS256(t, goodClaims(now)); return tok[:5] + "\r\n" + tok[5:] }, nil, "malformed"},

		// Case 3: alg none.
		{"3 alg none, empty signature segment", func() string { return noneToken("") }, nil, "algorithm"},
		{"3 alg none, with signature segment", func() string { return noneToken(b64url([]byte("sig"))) }, nil, "algorithm"},
		{"3 alg none, no signature segment at all", func() string { return noneToken("")[:len(noneToken(""))-1] }, nil, "malformed"},
		{"3 alg NONE uppercase", func() string {
			return b64url(mustJSON(t, map[string]any{"alg": "NONE"})) + "." + b64url(good) + "."
		}, nil, "algorithm"},

		// Case 4: algorithms outside the allowlist, key confusion.
		{"4 HS256 signed with the RSA public key PEM", func() string {
			return signRaw(t, jwt.SigningMethodHS256, pubPEM, hdr(map[string]any{"alg": "HS256"}), good)
		}, nil, "algorithm"},
		{"4 HS256 signed with the RSA public key DER", func() string {
			return signRaw(t, jwt.SigningMethodHS256, pubDER, hdr(map[string]any{"alg": "HS256"}), good)
		}, nil, "algorithm"},
		{"4 RS384 with allowlist RS256+ES256", func() string {
			return signRaw(t, jwt.SigningMethodRS384, rsaKey, hdr(map[string]any{"alg": "RS384"}), good)
		}, nil, "algorithm"},
		{"4 RS384 accepted when allowlisted", func() string {
			return signRaw(t, jwt.SigningMethodRS384, rsaKey, hdr(map[string]any{"alg": "RS384"}), good)
		}, func(c *Config) { c.Algorithms = []string{"RS384"} }, ""},
		{"4 ES256 header naming the RSA kid", func() string {
			return signRaw(t, jwt.SigningMethodES256, ecKey, hdr(map[string]any{"alg": "ES256"}), good)
		}, nil, "algorithm"},
		{"4 RS256 header naming the EC kid", func() string {
			return signRaw(t, jwt.SigningMethodRS256, rsaKey, hdr(map[string]any{"kid": "ec1"}), good)
		}, nil, "algorithm"},
		{"4 alg missing", func() string { return rs(hdr(map[string]any{"alg": nil}), good) }, nil, "algorithm"},
		{"4 alg not a string", func() string { return rs(hdr(map[string]any{"alg": 256}), good) }, nil, "algorithm"},
		{"4 EdDSA not allowlisted by default", func() string {
			return signRaw(t, jwt.SigningMethodEdDSA, edKey, map[string]any{"alg": "EdDSA", "kid": "ed1", "typ": "at+jwt"}, good)
		}, nil, "algorithm"},
		{"4 EdDSA accepted when allowlisted", func() string {
			return signRaw(t, jwt.SigningMethodEdDSA, edKey, map[string]any{"alg": "EdDSA", "kid": "ed1", "typ": "at+jwt"}, good)
		}, func(c *Config) { c.Algorithms = []string{"EdDSA"} }, ""},

		// Case 5: key URLs and embedded keys in the header are never used.
		{"5 jku to attacker, attacker signature", func() string {
			return signRaw(t, jwt.SigningMethodRS256, rsaAttack, hdr(map[string]any{"jku": evil.URL + "/jwks"}), good)
		}, nil, "signature"},
		{"5 x5u to attacker, attacker signature", func() string {
			return signRaw(t, jwt.SigningMethodRS256, rsaAttack, hdr(map[string]any{"x5u": evil.URL + "/cert.pem"}), good)
		}, nil, "signature"},
		{"5 embedded jwk, attacker signature, unknown kid", func() string {
			return signRaw(t, jwt.SigningMethodRS256, rsaAttack, hdr(map[string]any{"kid": "attacker", "jwk": rsaJWK("attacker", &rsaAttack.PublicKey)}), good)
		}, nil, "unknown_kid"},
		{"5 x5c, attacker signature", func() string {
			return signRaw(t, jwt.SigningMethodRS256, rsaAttack, hdr(map[string]any{"x5c": []string{b64url([]byte("not a cert"))}}), good)
		}, nil, "signature"},
		{"5 jku with the issuer's own signature is verified against the issuer's keys only", func() string {
			return rs(hdr(map[string]any{"jku": evil.URL + "/jwks", "x5u": evil.URL + "/x"}), good)
		}, nil, ""},

		// Case 6: kid is only a map key.
		{"6 kid path", func() string { return rs(hdr(map[string]any{"kid": "../../../../etc/passwd"}), good) }, nil, "unknown_kid"},
		{"6 kid SQL", func() string { return rs(hdr(map[string]any{"kid": "' OR '1'='1'; DROP TABLE keys; --"}), good) }, nil, "unknown_kid"},
		{"6 kid URL", func() string { return rs(hdr(map[string]any{"kid": evil.URL + "/jwks"}), good) }, nil, "unknown_kid"},
		{"6 kid 10KB, default size limit", func() string { return rs(hdr(map[string]any{"kid": strings.Repeat("k", 10240)}), good) }, nil, "too_large"},
		{"6 kid 10KB, large size limit", func() string { return rs(hdr(map[string]any{"kid": strings.Repeat("k", 10240)}), good) },
			func(c *Config) { c.MaxTokenBytes = 64 << 10 }, "malformed"},
		{"6 kid not a string", func() string { return rs(hdr(map[string]any{"kid": 7}), good) }, nil, "malformed"},

		// Case 8 (size) is also covered by TestVerifyHugeTokenIsCheap.
		{"8 1MB bearer", func() string { return strings.Repeat("a", 1<<20) }, nil, "too_large"},
		{"8 garbage", func() string { return "not-a-jwt" }, nil, "malformed"},
		{"8 four segments", func() string { return tokenRS256(t, goodClaims(now)) + ".x" }, nil, "malformed"},
		{"8 empty", func() string { return "" }, nil, "empty"},
		{"8 bad base64 header", func() string { return "!!!." + b64url(good) + ".sig" }, nil, "malformed"},
		{"8 header not JSON", func() string { return b64url([]byte("nope")) + "." + b64url(good) + ".sig" }, nil, "malformed"},
		{"8 padded base64 segments", func() string {
			p := strings.Split(tokenRS256(t, goodClaims(now)), ".")
			return p[0] + "." + p[1] + "==." + p[2]
		}, nil, "malformed"},

		// Case 9: crit.
		{"9 crit unknown extension", func() string {
			return rs(hdr(map[string]any{"crit": []string{"urn:example:ext"}, "urn:example:ext": true}), good)
		}, nil, "crit"},
		{"9 crit b64", func() string { return rs(hdr(map[string]any{"crit": []string{"b64"}, "b64": false}), good) }, nil, "crit"},
		{"9 crit empty array", func() string { return rs(hdr(map[string]any{"crit": []string{}}), good) }, nil, "crit"},

		// Case 10: exp.
		{"10 expired", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }))
		}, nil, "expired"},
		{"10 exp 0", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = 0 })) }, nil, "expired"},
		{"10 exp string", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = "tomorrow" })) }, nil, "malformed"},
		{"10 exp quoted number", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = "9999999999" }))
		}, nil, "malformed"},
		{"10 exp missing", func() string { return tokenRS256(t, with(now, func(c map[string]any) { delete(c, "exp") })) }, nil, "missing_claim"},
		{"10 exp null", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = nil })) }, nil, "missing_claim"},
		{"RFC 9068 sub missing", func() string { return tokenRS256(t, with(now, func(c map[string]any) { delete(c, "sub") })) }, nil, "missing_claim"},
		{"RFC 9068 sub empty", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["sub"] = "" })) }, nil, "missing_claim"},
		{"RFC 9068 sub null", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["sub"] = nil })) }, nil, "missing_claim"},
		{"RFC 9068 sub number", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["sub"] = 42 })) }, nil, "malformed"},
		{"10 exp absurdly large", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = 1e300 })) }, nil, "malformed"},

		// Case 11: nbf / iat with leeway (default 30s).
		{"11 nbf just past leeway", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["nbf"] = now.Add(leeway + time.Second).Unix() }))
		}, nil, "not_yet_valid"},
		{"11 nbf just inside leeway", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["nbf"] = now.Add(leeway - time.Second).Unix() }))
		}, nil, ""},
		{"11 iat just past leeway", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["iat"] = now.Add(leeway + time.Second).Unix() }))
		}, nil, "not_yet_valid"},
		{"11 iat just inside leeway", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["iat"] = now.Add(leeway - time.Second).Unix() }))
		}, nil, ""},
		{"11 nbf string", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["nbf"] = "soon" })) }, nil, "malformed"},

		// Case 12: issuer.
		{"12 wrong iss", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["iss"] = "https://evil.example.com" }))
		}, nil, "issuer"},
		{"12 iss with trailing slash", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["iss"] = testIssuer + "/" })) }, nil, "issuer"},
		{"12 iss with uppercase host", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["iss"] = "https://ISSUER.example.com" }))
		}, nil, "issuer"},
		{"12 iss missing", func() string { return tokenRS256(t, with(now, func(c map[string]any) { delete(c, "iss") })) }, nil, "issuer"},
		{"12 iss not a string", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["iss"] = 1 })) }, nil, "malformed"},

		// Case 13: audience.
		{"13 aud missing", func() string { return tokenRS256(t, with(now, func(c map[string]any) { delete(c, "aud") })) }, nil, "audience"},
		{"13 aud foreign", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = "https://other.example.com/mcp" }))
		}, nil, "audience"},
		{"13 aud numeric", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = 123 })) }, nil, "audience"},
		{"13 aud empty array", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = []string{} })) }, nil, "audience"},
		{"13 aud array of numbers", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = []int{1} })) }, nil, "audience"},
		{"13 aud null", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = nil })) }, nil, "audience"},
		{"13 aud prefix of ours", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = "https://mcp.example.com" }))
		}, nil, "audience"},
		{"13 aud array containing ours", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = []string{"https://other.example.com", testAudience} }))
		}, nil, ""},
		{"13 aud with trailing slash", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = testAudience + "/" }))
		}, nil, ""},
		{"13 aud with uppercase scheme and host", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = "HTTPS://MCP.Example.COM/mcp" }))
		}, nil, ""},
		{"13 aud with different path case", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = "https://mcp.example.com/MCP" }))
		}, nil, "audience"},

		// Case 14: ID tokens.
		{"14 ID token: aud is a client id, typ ID", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = "client-1"; c["typ"] = "ID"; c["nonce"] = "n" }))
		}, nil, "type"},
		{"14 ID token: aud is a client id, no typ claim", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = "client-1"; c["azp"] = "client-1"; c["nonce"] = "n" }))
		}, nil, "audience"},
		{"14 Keycloak ID token with our aud still rejected by typ claim", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["typ"] = "ID" }))
		}, nil, "type"},
		{"14 Keycloak access token typ Bearer accepted", func() string {
			return tokenRS256(t, with(now, func(c map[string]any) { c["typ"] = "Bearer" }))
		}, nil, ""},

		// typ header (RFC 9068 §4: at+jwt only by default; see
		// TestAccessTokenTypes for configured lists).
		{"typ absent", func() string { return rs(hdr(map[string]any{"typ": nil}), good) }, nil, "type"},
		{"typ JWT", func() string { return rs(hdr(map[string]any{"typ": "JWT"}), good) }, nil, "type"},
		{"typ AT+JWT", func() string { return rs(hdr(map[string]any{"typ": "AT+JWT"}), good) }, nil, ""},
		{"typ application/at+jwt", func() string { return rs(hdr(map[string]any{"typ": "application/at+jwt"}), good) }, nil, ""},
		{"typ Application/At+JWT", func() string { return rs(hdr(map[string]any{"typ": "Application/At+JWT"}), good) }, nil, ""},
		{"typ id+jwt", func() string { return rs(hdr(map[string]any{"typ": "id+jwt"}), good) }, nil, "type"},
		{"typ dpop+jwt", func() string { return rs(hdr(map[string]any{"typ": "dpop+jwt"}), good) }, nil, "type"},
		{"typ logout+jwt", func() string { return rs(hdr(map[string]any{"typ": "logout+jwt"}), good) }, nil, "type"},
		{"typ application/JWT", func() string { return rs(hdr(map[string]any{"typ": "application/JWT"}), good) }, nil, "type"},
		{"typ application/at+jwt+junk", func() string { return rs(hdr(map[string]any{"typ": "application/at+jwt+junk"}), good) }, nil, "type"},
		{"typ application/", func() string { return rs(hdr(map[string]any{"typ": "application/"}), good) }, nil, "type"},
		{"typ application/id+jwt", func() string { return rs(hdr(map[string]any{"typ": "application/id+jwt"}), good) }, nil, "type"},
		{"typ empty", func() string { return rs(hdr(map[string]any{"typ": ""}), good) }, nil, "type"},
		{"typ number", func() string { return rs(hdr(map[string]any{"typ": 1}), good) }, nil, "type"},

		// Signature integrity.
		{"tampered payload", func() string {
			p := strings.Split(tokenRS256(t, goodClaims(now)), ".")
			return p[0] + "." + b64url(mustJSON(t, with(now, func(c map[string]any) { c["sub"] = "github:1" }))) + "." + p[2]
		}, nil, "signature"},
		// One character off a 342-character RS256 signature leaves 341, a
		// length base64 can never have. (Cutting 4 left a valid length
		// whose last character decoded under strict decoding one time in
		// 16, giving "signature" instead.)
		{"truncated signature", func() string { tok := tokenRS256(t, goodClaims(now)); return tok[:len(tok)-1] }, nil, "malformed"},
		{"zero signature", func() string {
			p := strings.Split(tokenRS256(t, goodClaims(now)), ".")
			return p[0] + "." + p[1] + "." + b64url(make([]byte, 256))
		}, nil, "signature"},
		{"empty signature", func() string {
			p := strings.Split(tokenRS256(t, goodClaims(now)), ".")
			return p[0] + "." + p[1] + "."
		}, nil, "signature"},
		{"scope not a string", func() string { return tokenRS256(t, with(now, func(c map[string]any) { c["scope"] = 5 })) }, nil, "malformed"},
	}
	ks := &countingKeySource{KeySource: staticKeys(t)}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, clock, ks, tc.mod)
			raw := tc.token()
			claims, err := v.Verify(context.Background(), raw)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if claims.Subject != "github:42" || claims.Issuer != testIssuer {
					t.Fatalf("claims = %+v", claims)
				}
				return
			}
			if err == nil {
				t.Fatalf("want rejection %q, token accepted", tc.reason)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			if got := Reason(err); got != tc.reason {
				t.Fatalf("Reason = %q, want %q (err: %v)", got, tc.reason, err)
			}
			assertNoTokenMaterial(t, err, raw)
		})
	}
	if n := evilHits.Load(); n != 0 {
		t.Fatalf("the attacker's server got %d requests; want 0", n)
	}
}

// assertNoTokenMaterial fails if err's message contains any segment of raw
// (or a long run of it).
func assertNoTokenMaterial(t *testing.T, err error, raw string) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 200 {
		t.Errorf("error message is %d bytes long", len(msg))
	}
	for _, seg := range strings.Split(raw, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Errorf("error message contains token material: %q", msg)
		}
	}
}

// TestVerifyClaimsMapping checks the Claims fields, including client_id/azp
// and scope/scp fallbacks.
func TestVerifyClaimsMapping(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	v := newTestVerifier(t, clock, staticKeys(t), func(c *Config) { c.CacheSize = -1 })
	tests := []struct {
		name       string
		mod        func(map[string]any)
		wantClient string
		wantScope  string
		wantScopes []string
		wantHas    bool
	}{
		{"client_id and scope", func(map[string]any) {}, "client-1", "mcp:tools github:repo", []string{"mcp:tools", "github:repo"}, true},
		{"azp fallback", func(c map[string]any) { delete(c, "client_id"); c["azp"] = "app" }, "app", "mcp:tools github:repo", []string{"mcp:tools", "github:repo"}, true},
		{"scp array", func(c map[string]any) { delete(c, "scope"); c["scp"] = []string{"a", "b"} }, "client-1", "a b", []string{"a", "b"}, true},
		{"scp string", func(c map[string]any) { delete(c, "scope"); c["scp"] = "a b" }, "client-1", "a b", []string{"a", "b"}, true},
		{"no scope claim", func(c map[string]any) { delete(c, "scope") }, "client-1", "", nil, false},
		{"scope null", func(c map[string]any) { c["scope"] = nil }, "client-1", "", nil, false},
		{"empty scope", func(c map[string]any) { c["scope"] = "" }, "client-1", "", []string{}, true},
		{"empty scp array", func(c map[string]any) { delete(c, "scope"); c["scp"] = []string{} }, "client-1", "", []string{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := goodClaims(now)
			cl["nbf"] = now.Add(-time.Minute).Unix()
			tc.mod(cl)
			c, err := v.Verify(context.Background(), tokenRS256(t, cl))
			if err != nil {
				t.Fatal(err)
			}
			if c.ClientID != tc.wantClient || c.Scope != tc.wantScope || strings.Join(c.Scopes, ",") != strings.Join(tc.wantScopes, ",") {
				t.Fatalf("got client %q scope %q scopes %q", c.ClientID, c.Scope, c.Scopes)
			}
			if c.HasScopeClaim != tc.wantHas {
				t.Fatalf("HasScopeClaim = %v, want %v", c.HasScopeClaim, tc.wantHas)
			}
			if !c.Expiry.Equal(time.Unix(now.Add(time.Hour).Unix(), 0)) || !c.IssuedAt.Equal(time.Unix(now.Unix(), 0)) ||
				!c.NotBefore.Equal(time.Unix(now.Add(-time.Minute).Unix(), 0)) || c.ID != "jti-1" ||
				len(c.Audience) != 1 || c.Audience[0] != testAudience {
				t.Fatalf("claims = %+v", c)
			}
			sub, scope, clientID, iss := c.Identity()
			if sub != any(c.Subject) || scope != any(tc.wantScope) || clientID != any(tc.wantClient) || iss != any(c.Issuer) || c.Subject == "" {
				t.Fatalf("Identity() = %v, %v, %v, %v", sub, scope, clientID, iss)
			}
			if n := testing.AllocsPerRun(100, func() { sub, scope, clientID, iss = c.Identity() }); n != 0 {
				t.Errorf("Identity of verified claims allocates %v times", n)
			}
		})
	}
}

// TestIdentityOfBuiltClaims: Claims not made by Verify still report their
// own values.
func TestIdentityOfBuiltClaims(t *testing.T) {
	c := &Claims{Subject: "s", Scope: "a b", ClientID: "c", Issuer: "https://i"}
	if sub, scope, clientID, iss := c.Identity(); sub != any("s") || scope != any("a b") || clientID != any("c") || iss != any("https://i") {
		t.Fatalf("Identity() = %v, %v, %v, %v", sub, scope, clientID, iss)
	}
}

func TestMissingScopes(t *testing.T) {
	c := &Claims{Scopes: []string{"mcp:tools", "github:repo"}}
	tests := []struct {
		required []string
		want     string
	}{
		{nil, ""},
		{[]string{"mcp:tools"}, ""},
		{[]string{"mcp:tools", "admin"}, "admin"},
		{[]string{"MCP:tools"}, "MCP:tools"},
	}
	for _, tc := range tests {
		if got := strings.Join(c.MissingScopes(tc.required), " "); got != tc.want {
			t.Errorf("MissingScopes(%q) = %q, want %q", tc.required, got, tc.want)
		}
	}
}

// TestClockSkewR3 is reliability scenario R3: leeway applies to exp, so with
// the default 30s leeway exp+29s is accepted and exp+31s rejected.
func TestClockSkewR3(t *testing.T) {
	for _, leeway := range []time.Duration{DefaultLeeway, 2 * time.Minute} {
		clock := newFakeClock()
		exp := clock.Now().Add(time.Minute)
		raw := tokenRS256(t, with(clock.Now(), func(c map[string]any) { c["exp"] = exp.Unix() }))
		tests := []struct {
			at     time.Time
			reason string
		}{
			{exp.Add(-time.Second), ""},
			{exp.Add(leeway - time.Second), ""},
			{exp.Add(leeway + time.Second), "expired"},
		}
		for _, tc := range tests {
			for _, cacheSize := range []int{-1, 10} {
				c := newFakeClock()
				c.ns.Store(tc.at.UnixNano())
				v := newTestVerifier(t, c, staticKeys(t), func(cfg *Config) { cfg.Leeway = leeway; cfg.CacheSize = cacheSize })
				_, err := v.Verify(context.Background(), raw)
				if Reason(err) != tc.reason {
					t.Errorf("leeway %v, at exp%+v, cache %d: reason %q, want %q", leeway, tc.at.Sub(exp), cacheSize, Reason(err), tc.reason)
				}
			}
		}
	}
}

// TestVerifyHugeTokenIsCheap is case 8: a 1 MB bearer value is rejected
// without parsing or copying it.
func TestVerifyHugeTokenIsCheap(t *testing.T) {
	v := newTestVerifier(t, newFakeClock(), staticKeys(t), nil)
	huge := strings.Repeat("A", 1<<20)
	hugeDots := strings.Repeat("A.", 1<<19)
	for _, raw := range []string{huge, hugeDots} {
		if _, err := v.Verify(context.Background(), raw); Reason(err) != "too_large" {
			t.Fatalf("reason %q", Reason(err))
		}
		allocs := testing.AllocsPerRun(20, func() {
			_, _ = v.Verify(context.Background(), raw)
		})
		if allocs != 0 {
			t.Fatalf("rejecting a 1MB token allocated %v times", allocs)
		}
		start := time.Now()
		for range 1000 {
			_, _ = v.Verify(context.Background(), raw)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("1000 rejections of a 1MB token took %v", d)
		}
	}
}

func TestNewVerifierConfig(t *testing.T) {
	ks := map[string]KeySource{testIssuer: staticKeys(t)}
	tests := []struct {
		name string
		cfg  Config
		keys map[string]KeySource
		ok   bool
	}{
		{"defaults", Config{Audience: testAudience}, ks, true},
		{"no audience", Config{}, ks, false},
		{"relative audience", Config{Audience: "/mcp"}, ks, false},
		{"audience with fragment", Config{Audience: testAudience + "#x"}, ks, false},
		{"HS256 refused", Config{Audience: testAudience, Algorithms: []string{"RS256", "HS256"}}, ks, false},
		{"none refused", Config{Audience: testAudience, Algorithms: []string{"none"}}, ks, false},
		{"lowercase rs256 refused", Config{Audience: testAudience, Algorithms: []string{"rs256"}}, ks, false},
		{"PS256 and EdDSA allowed", Config{Audience: testAudience, Algorithms: []string{"PS256", "EdDSA"}}, ks, true},
		{"no issuers", Config{Audience: testAudience}, nil, false},
		{"nil key source", Config{Audience: testAudience}, map[string]KeySource{testIssuer: nil}, false},
		{"empty issuer", Config{Audience: testAudience}, map[string]KeySource{"": staticKeys(t)}, false},
		{"typ JWT and absent", Config{Audience: testAudience, AccessTokenTypes: []string{"at+jwt", "JWT", ""}}, ks, true},
		{"typ id+jwt refused", Config{Audience: testAudience, AccessTokenTypes: []string{"at+jwt", "application/ID+JWT"}}, ks, false},
		{"typ dpop+jwt refused", Config{Audience: testAudience, AccessTokenTypes: []string{"dpop+jwt"}}, ks, false},
		{"typ logout+jwt refused", Config{Audience: testAudience, AccessTokenTypes: []string{"logout+jwt"}}, ks, false},
		{"typ bare application/ refused", Config{Audience: testAudience, AccessTokenTypes: []string{"application/"}}, ks, false},
		{"typ other media type refused", Config{Audience: testAudience, AccessTokenTypes: []string{"text/plain"}}, ks, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(tc.cfg, tc.keys)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestVerifyMultipleIssuers: each issuer's tokens verify only with its own
// key source, and an unknown issuer never reaches any key source.
func TestVerifyMultipleIssuers(t *testing.T) {
	testKeys(t)
	clock := newFakeClock()
	other := "https://idp2.example.com"
	ks1 := &countingKeySource{KeySource: NewStaticKeySet(map[string]crypto.PublicKey{"rsa1": &rsaKey.PublicKey})}
	ks2 := &countingKeySource{KeySource: NewStaticKeySet(map[string]crypto.PublicKey{"rsa1": &rsaKey2.PublicKey})}
	v, err := NewVerifier(Config{Audience: testAudience, Now: clock.Now, CacheSize: -1}, map[string]KeySource{testIssuer: ks1, other: ks2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c2 := with(clock.Now(), func(c map[string]any) { c["iss"] = other })
	// Same kid at both issuers: issuer 2's token signed with issuer 1's key fails.
	if _, err := v.Verify(ctx, signRaw(t, jwt.SigningMethodRS256, rsaKey, rsHeader("rsa1"), mustJSON(t, c2))); Reason(err) != "signature" {
		t.Fatalf("cross-issuer key: %v", err)
	}
	if _, err := v.Verify(ctx, signRaw(t, jwt.SigningMethodRS256, rsaKey2, rsHeader("rsa1"), mustJSON(t, c2))); err != nil {
		t.Fatalf("issuer 2: %v", err)
	}
	if _, err := v.Verify(ctx, tokenRS256(t, goodClaims(clock.Now()))); err != nil {
		t.Fatalf("issuer 1: %v", err)
	}
	before := ks1.calls.Load() + ks2.calls.Load()
	if _, err := v.Verify(ctx, tokenRS256(t, with(clock.Now(), func(c map[string]any) { c["iss"] = "https://idp3.example.com" }))); Reason(err) != "issuer" {
		t.Fatalf("unknown issuer: %v", err)
	}
	if ks1.calls.Load()+ks2.calls.Load() != before {
		t.Fatal("an unknown issuer reached a key source")
	}
}

// TestVerifyCheapChecksBeforeKeys: tokens failing claim or header checks
// never call the KeySource (so they can never trigger a JWKS fetch).
func TestVerifyCheapChecksBeforeKeys(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	ks := &countingKeySource{KeySource: staticKeys(t)}
	v := newTestVerifier(t, clock, ks, nil)
	bad := []map[string]any{
		with(now, func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }),
		with(now, func(c map[string]any) { c["aud"] = "https://other" }),
		with(now, func(c map[string]any) { c["iss"] = "https://other" }),
		with(now, func(c map[string]any) { c["typ"] = "ID" }),
		with(now, func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }),
	}
	for _, c := range bad {
		if _, err := v.Verify(context.Background(), signRaw(t, jwt.SigningMethodRS256, rsaKey, rsHeader("unknown-kid"), mustJSON(t, c))); err == nil {
			t.Fatal("accepted")
		}
	}
	if n := ks.calls.Load(); n != 0 {
		t.Fatalf("KeySource called %d times for tokens failing cheap checks", n)
	}
}

// failingKeySource returns a non-package error that mentions the kid.
type failingKeySource struct{}

func (failingKeySource) Key(_ context.Context, kid, _ string) (crypto.PublicKey, error) {
	return nil, errors.New("backend exploded for kid " + kid)
}

func TestVerifyForeignKeySourceError(t *testing.T) {
	clock := newFakeClock()
	v := newTestVerifier(t, clock, failingKeySource{}, nil)
	_, err := v.Verify(context.Background(), tokenRS256(t, goodClaims(clock.Now())))
	if Reason(err) != "keys_unavailable" || !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrInvalidToken) || strings.Contains(err.Error(), "rsa1") {
		t.Fatalf("err = %v", err)
	}
}

// TestAccessTokenTypes covers Config.AccessTokenTypes: at+jwt only by
// default (RFC 9068 §4), a configured list for issuers typing their tokens
// otherwise, "" for "no typ header", and a rejection detail naming typ.
func TestAccessTokenTypes(t *testing.T) {
	clock := newFakeClock()
	payload := mustJSON(t, goodClaims(clock.Now()))
	keycloak := []string{"at+jwt", "JWT", ""}
	tests := []struct {
		name       string
		types      []string
		typ        any // nil: no typ header
		wantReject bool
		wantDetail string
	}{
		{"default at+jwt", nil, "at+jwt", false, ""},
		{"default application/at+jwt", nil, "application/at+jwt", false, ""},
		{"default AT+JWT", nil, "AT+JWT", false, ""},
		{"default JWT", nil, "JWT", true, `typ "JWT" is not an accepted access token type`},
		{"default absent", nil, nil, true, "typ header is absent; an access token must be typed at+jwt (Config.AccessTokenTypes)"},
		{"default id+jwt", nil, "id+jwt", true, `typ "id+jwt" is not an accepted access token type`},
		{"default empty", nil, "", true, `typ "" is not an accepted access token type`},
		{"default number", nil, 7, true, "typ header is not a string"},
		{"default long typ quoted and cut", nil, strings.Repeat("x", 100), true, `typ "` + strings.Repeat("x", 40) + `…" is not an accepted access token type`},
		{"default control chars escaped", nil, "a\u0000b", true, `typ "a\x00b" is not an accepted access token type`},
		{"keycloak JWT", keycloak, "JWT", false, ""},
		{"keycloak application/jwt", keycloak, "application/jwt", false, ""},
		{"keycloak absent", keycloak, nil, false, ""},
		{"keycloak at+jwt", keycloak, "at+jwt", false, ""},
		{"keycloak id+jwt", keycloak, "id+jwt", true, `typ "id+jwt" is not an accepted access token type`},
		{"keycloak empty typ is not absent", keycloak, "", true, `typ "" is not an accepted access token type`},
		{"JWT without absent", []string{"JWT"}, nil, true, "typ header is absent; an access token must be typed at+jwt (Config.AccessTokenTypes)"},
		{"JWT only refuses at+jwt", []string{"JWT"}, "at+jwt", true, `typ "at+jwt" is not an accepted access token type`},
		{"absent only", []string{""}, nil, false, ""},
		{"absent only refuses JWT", []string{""}, "JWT", true, `typ "JWT" is not an accepted access token type`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, clock, staticKeys(t), func(c *Config) { c.AccessTokenTypes = tc.types; c.CacheSize = -1 })
			h := rsHeader("rsa1")
			delete(h, "typ")
			if tc.typ != nil {
				h["typ"] = tc.typ
			}
			raw := signRaw(t, jwt.SigningMethodRS256, rsaKey, h, payload)
			_, err := v.Verify(context.Background(), raw)
			if !tc.wantReject {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if Reason(err) != "type" {
				t.Fatalf("reason %q (%v), want type", Reason(err), err)
			}
			if got := Detail(err); got != tc.wantDetail {
				t.Fatalf("detail %q, want %q", got, tc.wantDetail)
			}
		})
	}
}

// TestDetail: every rejection has a detail; other errors have none.
func TestDetail(t *testing.T) {
	clock := newFakeClock()
	v := newTestVerifier(t, clock, staticKeys(t), nil)
	_, err := v.Verify(context.Background(), tokenRS256(t, with(clock.Now(), func(c map[string]any) { c["aud"] = "https://other.example/mcp" })))
	if got := Detail(err); got != "aud does not contain this resource" {
		t.Fatalf("Detail = %q", got)
	}
	if Detail(ErrKeysUnavailable) == "" || Detail(nil) != "" || Detail(errors.New("x")) != "" {
		t.Fatal("Detail of non-token errors")
	}
}

// checkedRecorder is a CheckedKeySource that records which method the Verifier used.
type checkedRecorder struct {
	KeySource
	key, checked atomic.Int64
}

func (r *checkedRecorder) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	r.key.Add(1)
	return r.KeySource.Key(ctx, kid, alg)
}

func (r *checkedRecorder) CheckedKey(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	r.checked.Add(1)
	return r.KeySource.Key(ctx, kid, alg)
}

// TestVerifyUsesCheckedKey: with a CheckedKeySource the Verifier asks CheckedKey, never Key,
// and only for tokens whose header and claims passed.
func TestVerifyUsesCheckedKey(t *testing.T) {
	clock := newFakeClock()
	rec := &checkedRecorder{KeySource: staticKeys(t)}
	v := newTestVerifier(t, clock, rec, func(c *Config) { c.CacheSize = -1 })
	ctx := context.Background()
	now := clock.Now()
	for _, bad := range []string{
		tokenRS256(t, with(now, func(c map[string]any) { c["aud"] = "https://other.example/mcp" })),
		tokenRS256(t, with(now, func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })),
		tokenRS256(t, with(now, func(c map[string]any) { delete(c, "sub") })),
		signRaw(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rsa1"}, mustJSON(t, goodClaims(now))),
	} {
		if _, err := v.Verify(ctx, bad); err == nil {
			t.Fatal("bad token accepted")
		}
	}
	if n := rec.checked.Load() + rec.key.Load(); n != 0 {
		t.Fatalf("%d key lookups for tokens whose checks failed", n)
	}
	if _, err := v.Verify(ctx, tokenRS256(t, goodClaims(now))); err != nil {
		t.Fatal(err)
	}
	if rec.checked.Load() != 1 || rec.key.Load() != 0 {
		t.Fatalf("CheckedKey %d, Key %d; want 1 and 0", rec.checked.Load(), rec.key.Load())
	}
}

// TestIssuerAccessTokenTypes: an issuer's own list replaces the default for that issuer only,
// so allowing Keycloak's JWT-typed tokens does not allow them from the other issuers.
func TestIssuerAccessTokenTypes(t *testing.T) {
	clock := newFakeClock()
	const keycloak = "https://keycloak.example/realms/mcp"
	ks := staticKeys(t)
	v, err := NewVerifier(Config{
		Audience: testAudience, Now: clock.Now, CacheSize: -1,
		IssuerAccessTokenTypes: map[string][]string{keycloak: {"JWT", ""}},
	}, map[string]KeySource{testIssuer: ks, keycloak: ks})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iss        string
		typ        any
		wantReject bool
	}{
		{testIssuer, "at+jwt", false},
		{testIssuer, "JWT", true},
		{testIssuer, nil, true},
		{keycloak, "JWT", false},
		{keycloak, nil, false},
		{keycloak, "at+jwt", true}, // the issuer's list replaces the default
	} {
		h := rsHeader("rsa1")
		delete(h, "typ")
		if tc.typ != nil {
			h["typ"] = tc.typ
		}
		raw := signRaw(t, jwt.SigningMethodRS256, rsaKey, h, mustJSON(t, with(clock.Now(), func(c map[string]any) { c["iss"] = tc.iss })))
		_, err := v.Verify(context.Background(), raw)
		if tc.wantReject != (err != nil) || (err != nil && Reason(err) != "type") {
			t.Errorf("iss %s typ %v: err %v (reason %q), want rejected=%v for its type", tc.iss, tc.typ, err, Reason(err), tc.wantReject)
		}
	}
	for name, cfg := range map[string]Config{
		"unknown issuer": {Audience: testAudience, IssuerAccessTokenTypes: map[string][]string{"https://nope.example": {"JWT"}}},
		"id token type":  {Audience: testAudience, IssuerAccessTokenTypes: map[string][]string{testIssuer: {"id+jwt"}}},
	} {
		if _, err := NewVerifier(cfg, map[string]KeySource{testIssuer: ks}); err == nil {
			t.Errorf("%s: NewVerifier accepted the configuration", name)
		}
	}
}
