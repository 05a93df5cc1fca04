package idp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// replicaHeader routes a test request to one replica (its index); without it requests alternate.
const replicaHeader = "X-Test-Replica"

// newReplicas starts two Servers on one storage, with one issuer, one encryption key and one
// clock, behind a test load balancer that alternates between them (or obeys replicaHeader): two
// replicas of one IdP. The testEnv's srv is the first replica.
func newReplicas(t *testing.T, mod func(*Options)) (*testEnv, [2]*Server) {
	t.Helper()
	store := NewMemoryStore()
	key := randomBytes(32)
	var srvs [2]*Server
	var n atomic.Int64
	lb := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1) % 2)
		switch r.Header.Get(replicaHeader) {
		case "0":
			i = 0
		case "1":
			i = 1
		}
		srvs[i].ServeHTTP(w, r)
	}))
	e := newEnv(t, func(o *Options) {
		o.Store, o.EncryptionKey = store, key
		if mod != nil {
			mod(o)
		}
	})
	// The first replica is newEnv's; the second shares its issuer and storage and is served,
	// like the first, only through the balancer.
	o := e.srv.opts
	o.Issuer = e.issuer
	second, err := New(o)
	if err != nil {
		t.Fatalf("second replica: %v", err)
	}
	t.Cleanup(func() { second.Close() })
	srvs = [2]*Server{e.srv, second}
	e.ts.Config.Handler = lb.Config.Handler
	return e, srvs
}

// onReplica posts a form to replica i.
func (e *testEnv) onReplica(i int, path string, v url.Values, user, pass string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url(path), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(replicaHeader, string(rune('0'+i)))
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return doJSON(e.t, req)
}

// both runs f on replica 0 and replica 1 at once.
func both(f func(i int)) {
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

// GitHub's refresh tokens are single use and each replica refreshes on its own: when both
// refresh one user's expired GitHub token at once, GitHub refuses the second, and that replica
// must hand out the token the first stored, not tell the user to link GitHub again.
func TestReplicasShareGitHubRefresh(t *testing.T) {
	g := newFakeGitHub(t)
	g.refreshDelay = 200 * time.Millisecond
	e, _ := newReplicas(t, func(o *Options) { withGitHub(g)(o); o.AccessTokenTTL = 72 * time.Hour })
	c := e.register(nil)
	tok := e.githubTokens(c) // the sign-in's requests alternate between the replicas
	at := tok["access_token"].(string)
	e.clock.Advance(9 * time.Hour)

	var got [2]string
	var status [2]int
	both(func(i int) {
		resp, m := e.onReplica(i, "/token", url.Values{
			"grant_type": {grantTokenExchange}, "subject_token": {at},
			"subject_token_type": {tokenTypeAccessToken}, "audience": {g.ts.URL + "/api"},
		}, "gateway", "gateway-secret-0123456789")
		status[i] = resp.StatusCode
		got[i], _ = m["access_token"].(string)
	})
	if status != [2]int{200, 200} || got[0] == "" || got[0] != got[1] {
		t.Fatalf("exchanges on both replicas: status %v, tokens equal %v", status, got[0] == got[1])
	}
	if r := g.refreshes.Load(); r != 2 {
		t.Fatalf("GitHub refreshes: %d, want 2 (one per replica, one refused)", r)
	}
	stored, err := e.srv.loadGitHubToken(t.Context(), "github:4242")
	if err != nil || stored.AccessToken != got[0] {
		t.Fatalf("stored token is not the one handed out (err %v)", err)
	}
}

// A provider that rotates refresh tokens refuses the old one once used: when two of our
// refreshes for one user reach two replicas at once, each checks the upstream, one of those
// checks is refused, and the user's grant must survive it.
func TestReplicasShareUpstreamRefresh(t *testing.T) {
	op := newFakeOP(t)
	op.set(func(op *fakeOP) { op.rotating = true })
	e, _ := newReplicas(t, func(o *Options) {
		o.DevLogin = false
		o.Upstreams = []UpstreamOIDC{{Name: "corp", DisplayName: "Corp SSO", Issuer: op.ts.URL, ClientID: op.clientID, ClientSecret: "up-secret"}}
	})
	op.now = e.clock.Now
	// Two clients of the same user, so that both refreshes are legitimate and independent.
	var rts [2]string
	var clients [2]testClient
	b := e.browser()
	for i := range 2 {
		clients[i] = e.register(nil)
		p := newPKCE()
		pg := upstreamCode(e, b, clients[i], p)
		u, _ := url.Parse(pg.location)
		resp, tok := e.redeem(clients[i], u.Query().Get("code"), p.verifier, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("sign-in %d: %d %v", i, resp.StatusCode, tok)
		}
		rts[i] = tok["refresh_token"].(string)
	}
	op.set(func(op *fakeOP) { op.refreshDelay = 200 * time.Millisecond })
	var status [2]int
	var errs [2]any
	both(func(i int) {
		resp, m := e.onReplica(i, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rts[i]}, "client_id": {clients[i].ID}}, "", "")
		status[i], errs[i] = resp.StatusCode, m["error"]
		rts[i], _ = m["refresh_token"].(string)
	})
	if status != [2]int{200, 200} {
		t.Fatalf("refreshes on both replicas: %v %v", status, errs)
	}
	// The account disabled at the provider still ends the grant.
	op.set(func(op *fakeOP) { op.disabled, op.refreshDelay = true, 0 })
	resp, m := e.onReplica(0, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rts[0]}, "client_id": {clients[0].ID}}, "", "")
	if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("refresh after the upstream disabled the account: %d %v", resp.StatusCode, m)
	}
}
