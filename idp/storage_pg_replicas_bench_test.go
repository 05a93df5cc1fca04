package idp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// replicaBenchWorkers is how many clients send requests at once in BenchmarkPostgresReplicas.
const replicaBenchWorkers = 16

// BenchmarkPostgresReplicas is authorization code redemption and refresh token rotation per
// second with replicaBenchWorkers concurrent clients, against one Server and against two
// replicas, in the same run, on one PostgreSQL database (the local test server, pgtest):
//
//	go test -run '^$' -bench PostgresReplicas -benchtime 4000x ./idp/
//
// The replicas are two Servers with one issuer and one EncryptionKey, each with a storage opened
// on its own (two pools, as two processes would have); the clients' requests alternate between
// them, as behind a round-robin balancer, so a code issued on one is redeemed on either and a
// refresh chain moves between both. The single Server has one pool of its own on the same
// database. Each pool is OpenPostgresStorage's default size (reported as pool_conns), so the
// replicas have twice the connections; a third side, one_2xpool, is one Server whose pool has
// as many as both replicas together, to tell the second pool's share from the second Server's. Requests are served in-process
// (httptest.ResponseRecorder), ES256 keys. b.N is the number of redemptions, and of rotations,
// on each side; they run in rounds that alternate which side goes first, so slow drift of the
// machine falls on both. Reported: each side's requests per second and the ratios two/one.
//
// Everything shares this machine's CPUs: the Servers, the clients and PostgreSQL. When they are
// saturated a second replica adds no CPU, and the ratio says what the second pool and the second
// Server's locks give or cost, not what a second machine would.
func BenchmarkPostgresReplicas(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	open := func(maxConns int32) *PostgresStorage {
		s, err := OpenPostgresStorage(context.Background(), dsn, PostgresOptions{MaxConns: maxConns})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		return s
	}
	newServer := func(st *PostgresStorage) *Server {
		return newBenchServer(b, func(o *Options) {
			o.Storage = st
			o.EncryptionKey = make([]byte, 32)
			o.SigningAlgorithm = "ES256"
			o.CodeTTL = time.Hour // codes are all issued before the first round
		})
	}
	type side struct {
		name     string
		srvs     []*Server
		client   string
		codes    []string
		verifier string
		rts      []string // one refresh chain per worker
		next     atomic.Int64
		redeem   time.Duration
		rotate   time.Duration
	}
	first := open(0)
	pool := first.pool.Config().MaxConns // OpenPostgresStorage's default
	one := &side{name: "one", srvs: []*Server{newServer(first)}}
	two := &side{name: "two", srvs: []*Server{newServer(open(0)), newServer(open(0))}}
	wide := &side{name: "one_2xpool", srvs: []*Server{newServer(open(2 * pool))}}
	sides := []*side{one, two, wide}
	for _, sd := range sides {
		sd.client = benchClient(b, sd.srvs[0])
		sd.codes, sd.verifier = issueCodes(b, sd.srvs[0], sd.client, b.N+replicaBenchWorkers)
		for w := range replicaBenchWorkers {
			sd.rts = append(sd.rts, refreshTokenOf(b, serve(sd.srvs[w%len(sd.srvs)], codeRequest(sd.client, sd.codes[b.N+w], sd.verifier))))
		}
	}

	// run makes n requests (do(srv, worker, i) for i < n) from replicaBenchWorkers goroutines,
	// the side's servers taking turns, and returns the wall time.
	var failed atomic.Value
	run := func(sd *side, n int, do func(srv *Server, w, i int) error) time.Duration {
		var wg sync.WaitGroup
		var next atomic.Int64
		start := time.Now()
		for w := range replicaBenchWorkers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := do(sd.srvs[int(sd.next.Add(1))%len(sd.srvs)], w, i); err != nil {
						failed.CompareAndSwap(nil, fmt.Errorf("%s: %w", sd.name, err))
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	redeemFrom := func(sd *side, off int) func(*Server, int, int) error {
		return func(srv *Server, _, i int) error {
			w := serve(srv, codeRequest(sd.client, sd.codes[off+i], sd.verifier))
			if w.Code != http.StatusOK {
				return fmt.Errorf("redeem: %d %s", w.Code, w.Body.String())
			}
			return nil
		}
	}
	rotateOn := func(sd *side) func(*Server, int, int) error {
		return func(srv *Server, w, _ int) error {
			resp := serve(srv, formRequest("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {sd.rts[w]}, "client_id": {sd.client}}))
			var tok struct {
				RefreshToken string `json:"refresh_token"`
			}
			if resp.Code != http.StatusOK || json.Unmarshal(resp.Body.Bytes(), &tok) != nil || tok.RefreshToken == "" {
				return fmt.Errorf("refresh: %d %s", resp.Code, resp.Body.String())
			}
			sd.rts[w] = tok.RefreshToken // only worker w touches its chain
			return nil
		}
	}

	const rounds = 8
	b.ResetTimer()
	done := 0
	for r := range rounds {
		n := (b.N - done) / (rounds - r)
		order := sides
		if r%2 == 1 {
			order = []*side{wide, two, one}
		}
		for _, sd := range order {
			sd.redeem += run(sd, n, redeemFrom(sd, done))
		}
		for _, sd := range order {
			sd.rotate += run(sd, n, rotateOn(sd))
		}
		done += n
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perSec := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() }
	for _, sd := range sides {
		b.ReportMetric(perSec(sd.redeem), sd.name+"_redeem/s")
		b.ReportMetric(perSec(sd.rotate), sd.name+"_refresh/s")
	}
	b.ReportMetric(perSec(two.redeem)/perSec(one.redeem), "two/one_redeem")
	b.ReportMetric(perSec(two.rotate)/perSec(one.rotate), "two/one_refresh")
	b.ReportMetric(perSec(two.redeem)/perSec(wide.redeem), "two/one_2xpool_redeem")
	b.ReportMetric(perSec(two.rotate)/perSec(wide.rotate), "two/one_2xpool_refresh")
	b.ReportMetric(float64(pool), "pool_conns")
}
