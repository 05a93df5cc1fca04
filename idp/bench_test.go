package idp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkTokenExchange measures one RFC 8693 exchange served in-process (JWT verify, revocation
// lookups, GitHub token decrypt), with the memory and the bbolt store.
func BenchmarkTokenExchange(b *testing.B) {
	for _, kind := range []string{"memory", "bolt"} {
		b.Run(kind, func(b *testing.B) {
			var st Store = NewMemoryStore()
			if kind == "bolt" {
				bs, err := OpenBoltStore(filepath.Join(b.TempDir(), "idp.db"))
				if err != nil {
					b.Fatal(err)
				}
				st = bs
			}
			defer st.Close()
			srv, err := New(Options{Issuer: "http://idp.test", DevLogin: true, Store: st, EncryptionKey: bytes.Repeat([]byte{1}, 32),
				ExchangeClients: []ExchangeClient{{ID: "gateway", Secret: "gateway-secret", Audiences: []string{"https://mcp.example.com/mcp"}}}})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			ctx := b.Context()
			if err := srv.saveGitHubToken(ctx, "dev:bench", &githubToken{AccessToken: "ghp_bench"}); err != nil {
				b.Fatal(err)
			}
			// The token's client must exist: access tokens verify only while it does.
			_ = srv.putJSON(ctx, bucketClients, "c", clientRecord{ClientID: "c"})
			_ = srv.putJSON(ctx, bucketFamilies, "fam", familyRecord{Exp: srv.opts.Now().Add(1e12).Unix()})
			at, jti, exp, _ := srv.mintAccessToken("dev:bench", "c", "mcp", "https://mcp.example.com/mcp", srv.opts.Now())
			_ = srv.putJSON(ctx, bucketAccess, jti, accessRecord{FamilyID: "fam", Exp: exp.Unix()})
			body := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {at}, "subject_token_type": {tokenTypeAccessToken},
				"audience": {"https://api.github.com"}}.Encode()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "http://idp.test/token", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("gateway", "gateway-secret")
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
