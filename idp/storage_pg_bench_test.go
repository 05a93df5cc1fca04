package idp

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// BenchmarkStorageBackends is authorization code redemption and refresh token rotation through
// the token endpoint's handlers, on bbolt and on PostgreSQL in the same run, reported as requests
// per second of each and as the ratio PostgreSQL/bbolt (issue 19's goal: at least 0.5):
//
//	go test -run '^$' -bench StorageBackends ./idp/
//
// Each iteration redeems one code and rotates one refresh token on each backend, one request at
// a time (one client, no concurrency), with ES256 keys so the signature weighs less than RS256's
// and the storage shows more. PostgreSQL is the local test server (pgtest), over loopback TCP.
func BenchmarkStorageBackends(b *testing.B) {
	bolt, err := OpenBoltStore(filepath.Join(b.TempDir(), "idp.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bolt.Close() })
	pg := openPG(b, pgtest.NewDatabase(b))
	type backend struct {
		name           string
		srv            *Server
		client         string
		codes          []string
		verifier, rt   string
		redeem, rotate time.Duration
	}
	backends := []*backend{{name: "bolt"}, {name: "postgres"}}
	for i, st := range []Storage{NewKVStorage(bolt), pg} {
		be := backends[i]
		be.srv = newBenchServer(b, func(o *Options) {
			o.Storage = st
			o.EncryptionKey = make([]byte, 32)
			o.SigningAlgorithm = "ES256"
			o.CodeTTL = time.Hour // the codes are issued up front: a long run must not outlive them
		})
		be.client = benchClient(b, be.srv)
		be.codes, be.verifier = issueCodes(b, be.srv, be.client, b.N+1)
		be.rt = refreshTokenOf(b, serve(be.srv, codeRequest(be.client, be.codes[b.N], be.verifier)))
	}
	b.ResetTimer()
	for i := range b.N {
		for _, be := range backends {
			t0 := time.Now()
			w := serve(be.srv, codeRequest(be.client, be.codes[i], be.verifier))
			be.redeem += time.Since(t0)
			if w.Code != http.StatusOK {
				b.Fatalf("%s: token: %d %s", be.name, w.Code, w.Body.String())
			}
			t0 = time.Now()
			w = serve(be.srv, formRequest("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {be.rt}, "client_id": {be.client}}))
			be.rotate += time.Since(t0)
			be.rt = refreshTokenOf(b, w)
		}
	}
	b.StopTimer()
	perSec := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() }
	for _, be := range backends {
		b.ReportMetric(perSec(be.redeem), be.name+"_redeem/s")
		b.ReportMetric(perSec(be.rotate), be.name+"_refresh/s")
	}
	b.ReportMetric(perSec(backends[1].redeem)/perSec(backends[0].redeem), "pg/bolt_redeem")
	b.ReportMetric(perSec(backends[1].rotate)/perSec(backends[0].rotate), "pg/bolt_refresh")
}

// codeRequest is the token request that redeems code (PKCE, public client).
func codeRequest(clientID, code, verifier string) *http.Request {
	return formRequest("/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchRedirect},
		"code_verifier": {verifier}, "client_id": {clientID},
	})
}
