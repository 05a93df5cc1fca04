package mcpidp

// Two Caddy processes serving mcp_idp on one PostgreSQL database: the replicas of issue 19.
// Caddy runs once per process, so the test binary re-executes itself as Caddy (TestMain), once
// per replica, with the same Caddyfile and only the ports (and, for the rotation test, the
// rotation interval) from the environment. The test talks to each replica's port directly,
// sending every request as a load balancer in front of them would: to the issuer's host name.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mcpgate/mcpgate/caddymodule/mcpauth" // the gateway beside each replica
	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// asCaddyEnv, set to 1, makes the test binary run as Caddy with its arguments.
const asCaddyEnv = "MCPGATE_TEST_RUN_AS_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(asCaddyEnv) == "1" {
		caddycmd.Main()
		return
	}
	os.Exit(m.Run())
}

const (
	replicaIssuer   = "http://idp.replicas.test"
	replicaResource = "http://mcp.replicas.test/mcp"
	replicaGWSecret = "gateway-secret-for-the-replica-test"
	// replicaRotation is replica A's key rotation interval. B keeps the default (30 days), so
	// every new key is made by A and reaches B only through PostgreSQL.
	replicaRotation = 12 * time.Second
)

// replicaCaddyfile is every replica's Caddyfile; {$...} are the per-process ports and rotation
// interval, {env.*} the secrets, which never appear in the file or in the adapted JSON. The
// gateway site beside each replica verifies tokens with the keys of the other replica's JWKS.
const replicaCaddyfile = `{
	admin off
	persist_config off
	auto_https off
}

http://:{$MCPGATE_TEST_IDP_PORT} {
	bind 127.0.0.1
	mcp_idp {
		issuer ` + replicaIssuer + `
		dev_login
		encryption_key {env.MCPGATE_TEST_IDP_KEY}
		storage postgres {
			dsn {env.MCPGATE_TEST_IDP_DSN}
		}
		default_resource ` + replicaResource + `
		exchange_client gateway {env.MCPGATE_TEST_GATEWAY_SECRET} ` + replicaResource + `
		authorize_rate_limit -1
		key_rotation_interval {$MCPGATE_TEST_KEY_ROTATION}
		key_pre_publish 5s
		cleanup_interval 1s
	}
}

http://:{$MCPGATE_TEST_GATEWAY_PORT} {
	bind 127.0.0.1
	mcp_auth {
		resource ` + replicaResource + `
		issuer ` + replicaIssuer + ` {
			jwks_uri http://127.0.0.1:{$MCPGATE_TEST_PEER_IDP_PORT}/jwks.json
		}
		jwks_refresh_interval 1h
		jwks_refetch_cooldown 1s
	}
	respond "signed in as {http.auth.user.id}"
}
`

// replica is one Caddy process.
type replica struct {
	name            string
	idpPort, gwPort string
	cmd             *exec.Cmd
	done            chan struct{} // closed when the process has exited
	log             string        // its stdout and stderr
	idp, gw         *http.Transport
}

// replicaSet is the two replicas and what the test knows about them.
type replicaSet struct {
	t   *testing.T
	r   [2]*replica
	dsn string
}

// startReplicas creates a database, starts replica A and B on it and waits until both serve.
// Both stop (before the database is dropped) when the test ends.
func startReplicas(t *testing.T) *replicaSet {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(replicaCaddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("replica test key"))
	key := base64.StdEncoding.EncodeToString(sum[:])
	rs := &replicaSet{t: t, dsn: dsn}
	for i, name := range []string{"A", "B"} {
		rs.r[i] = &replica{name: name, idpPort: freePort(t), gwPort: freePort(t), done: make(chan struct{})}
	}
	for i, r := range rs.r {
		rotation := "720h"
		if i == 0 {
			rotation = replicaRotation.String()
		}
		home := filepath.Join(dir, r.name)
		r.log = filepath.Join(dir, r.name+".log")
		logf, err := os.Create(r.log)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self, "run", "--adapter", "caddyfile", "--config", cfg)
		cmd.Env = append(os.Environ(),
			asCaddyEnv+"=1",
			"HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
			"MCPGATE_IDP_KEY=",
			"MCPGATE_TEST_IDP_KEY="+key, "MCPGATE_TEST_IDP_DSN="+dsn, "MCPGATE_TEST_GATEWAY_SECRET="+replicaGWSecret,
			"MCPGATE_TEST_IDP_PORT="+r.idpPort, "MCPGATE_TEST_GATEWAY_PORT="+r.gwPort,
			"MCPGATE_TEST_PEER_IDP_PORT="+rs.r[1-i].idpPort, "MCPGATE_TEST_KEY_ROTATION="+rotation,
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("start replica %s: %v", r.name, err)
		}
		logf.Close()
		r.cmd = cmd
		go func() { _ = cmd.Wait(); close(r.done) }()
		t.Cleanup(func() { r.stop(t) })
		r.idp, r.gw = loopbackTransport(r.idpPort), loopbackTransport(r.gwPort)
	}
	for _, r := range rs.r {
		r.waitReady(t)
	}
	return rs
}

// loopbackTransport sends every request, whatever its URL's host, to 127.0.0.1:port.
func loopbackTransport(port string) *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", "127.0.0.1:"+port)
		},
		MaxIdleConnsPerHost: 16,
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// waitReady polls the replica's metadata and gateway until both answer, failing with the
// replica's log if it exits or stays silent.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	c := &http.Client{Timeout: 5 * time.Second}
	for {
		idpOK := probe(c, r.idp, replicaIssuer+"/.well-known/oauth-authorization-server", http.StatusOK)
		gwOK := probe(c, r.gw, replicaResource, http.StatusUnauthorized)
		if idpOK && gwOK {
			return
		}
		select {
		case <-r.done:
			t.Fatalf("replica %s exited before serving:\n%s", r.name, r.logText())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s does not serve (metadata %v, gateway %v):\n%s", r.name, idpOK, gwOK, r.logText())
		}
	}
}

func probe(c *http.Client, tr *http.Transport, u string, want int) bool {
	c2 := *c
	c2.Transport = tr
	resp, err := c2.Get(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == want
}

func (r *replica) logText() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

// stop interrupts the process (Caddy shuts down gracefully) and kills it after 15s; a failed
// test gets the replica's log.
func (r *replica) stop(t *testing.T) {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	if t.Failed() {
		t.Logf("replica %s log:\n%s", r.name, r.logText())
	}
}

// client is an HTTP client for replica i that shares jar (a browser behind a load balancer
// keeps one cookie jar whichever replica answers) and never follows redirects.
func (rs *replicaSet) client(i int, jar http.CookieJar) *http.Client {
	return &http.Client{
		Transport:     rs.r[i].idp,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post sends a form to the issuer's path on replica i, with basic authentication when user is
// set, and decodes the JSON answer.
func (rs *replicaSet) post(i int, path string, v url.Values, user, pass string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, replicaIssuer+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return rs.doJSON(i, req)
}

func (rs *replicaSet) doJSON(i int, req *http.Request) (int, map[string]any) {
	resp, err := rs.client(i, nil).Do(req)
	if err != nil {
		rs.t.Errorf("%s %s on replica %s: %v", req.Method, req.URL.Path, rs.r[i].name, err)
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// register registers a public client with refresh tokens on replica i.
func (rs *replicaSet) register(i int) string {
	rs.t.Helper()
	body := `{"client_name":"replicas","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",` +
		`"grant_types":["authorization_code","refresh_token"]}`
	req, _ := http.NewRequest(http.MethodPost, replicaIssuer+"/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	status, m := rs.doJSON(i, req)
	id, _ := m["client_id"].(string)
	if status != http.StatusCreated || id == "" {
		rs.t.Fatalf("register on %s: %d %v", rs.r[i].name, status, m)
	}
	return id
}

// browserStep names the replica that serves each step of a sign-in.
type browserSteps struct {
	authorize, loginPage, loginPost, consentPage, consentPost int
}

var (
	csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	reqField  = regexp.MustCompile(`name="req" value="([^"]*)"`)
)

type page struct {
	status   int
	location string
	body     string
}

// signIn runs a browser through authorize, the dev login and the consent page, each step on
// the replica steps names, with one cookie jar, and returns the authorization code and the
// PKCE verifier.
func (rs *replicaSet) signIn(clientID, user string, steps browserSteps) (code, verifier string) {
	t := rs.t
	t.Helper()
	jar, _ := cookiejar.New(nil)
	do := func(i int, method, u string, form url.Values) page {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, u, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := rs.client(i, jar).Do(req)
		if err != nil {
			t.Fatalf("%s %s on replica %s: %v", method, req.URL.Path, rs.r[i].name, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		p := page{status: resp.StatusCode, body: string(b)}
		if loc := resp.Header.Get("Location"); loc != "" {
			l, _ := req.URL.Parse(loc)
			p.location = l.String()
		}
		return p
	}
	// follow GETs u on replica i and follows redirects while they stay on the issuer.
	follow := func(i int, u string) page {
		t.Helper()
		p := do(i, http.MethodGet, u, nil)
		for n := 0; n < 10 && strings.HasPrefix(p.location, replicaIssuer+"/"); n++ {
			p = do(i, http.MethodGet, p.location, nil)
		}
		return p
	}
	field := func(re *regexp.Regexp, p page) string {
		t.Helper()
		m := re.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no %s in the page (status %d):\n%s", re, p.status, p.body)
		}
		return m[1]
	}

	verifier = strings.Repeat("v", 20) + base64.RawURLEncoding.EncodeToString([]byte(user + clientID))[:24]
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {"http://127.0.0.1/cb"}, "state": {"st"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	p := do(steps.authorize, http.MethodGet, replicaIssuer+"/authorize?"+q.Encode(), nil)
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, replicaIssuer+"/") {
		t.Fatalf("authorize on %s: status %d, Location %q (the IdP must build its URLs from the issuer)", rs.r[steps.authorize].name, p.status, p.location)
	}
	login := follow(steps.loginPage, p.location)
	if !strings.Contains(login.body, `name="username"`) {
		t.Fatalf("no dev login form on %s: %d %s", rs.r[steps.loginPage].name, login.status, login.body)
	}
	p = do(steps.loginPost, http.MethodPost, replicaIssuer+"/login", url.Values{
		"csrf_token": {field(csrfField, login)}, "req": {field(reqField, login)}, "username": {user}, "github_token": {""},
	})
	if p.status != http.StatusSeeOther {
		t.Fatalf("login form posted to %s (page from %s): status %d %s", rs.r[steps.loginPost].name, rs.r[steps.loginPage].name, p.status, p.body)
	}
	consent := follow(steps.consentPage, p.location)
	if !strings.Contains(consent.body, `value="approve"`) {
		t.Fatalf("no consent page on %s after signing in on %s: %d %s", rs.r[steps.consentPage].name, rs.r[steps.loginPost].name, consent.status, consent.body)
	}
	p = do(steps.consentPost, http.MethodPost, replicaIssuer+"/consent", url.Values{
		"csrf_token": {field(csrfField, consent)}, "req": {field(reqField, consent)}, "action": {"approve"},
	})
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, "http://127.0.0.1/cb?") {
		t.Fatalf("consent posted to %s (page from %s): status %d, Location %q %s", rs.r[steps.consentPost].name, rs.r[steps.consentPage].name, p.status, p.location, p.body)
	}
	l, _ := url.Parse(p.location)
	if code = l.Query().Get("code"); code == "" {
		t.Fatalf("no code in %s", p.location)
	}
	return code, verifier
}

func (rs *replicaSet) redeem(i int, clientID, code, verifier string) (int, map[string]any) {
	return rs.post(i, "/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1/cb"},
		"code_verifier": {verifier}, "client_id": {clientID},
	}, "", "")
}

func (rs *replicaSet) refresh(i int, clientID, rt string) (int, map[string]any) {
	return rs.post(i, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}, "", "")
}

// active introspects tok on replica i as the gateway.
func (rs *replicaSet) active(i int, tok string) bool {
	rs.t.Helper()
	status, m := rs.post(i, "/introspect", url.Values{"token": {tok}}, "gateway", replicaGWSecret)
	if status != http.StatusOK {
		rs.t.Fatalf("introspect on %s: %d %v", rs.r[i].name, status, m)
	}
	return m["active"] == true
}

// tokens redeems code on replica i and returns the access and refresh tokens.
func (rs *replicaSet) tokens(i int, clientID, code, verifier string) (at, rt string) {
	rs.t.Helper()
	status, m := rs.redeem(i, clientID, code, verifier)
	at, _ = m["access_token"].(string)
	rt, _ = m["refresh_token"].(string)
	if status != http.StatusOK || at == "" || rt == "" {
		rs.t.Fatalf("redeem on %s: %d %v", rs.r[i].name, status, m)
	}
	return at, rt
}

// jwks returns replica i's JWKS, keys sorted by kid.
func (rs *replicaSet) jwks(i int) []map[string]any {
	rs.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, replicaIssuer+"/jwks.json", nil)
	status, m := rs.doJSON(i, req)
	if status != http.StatusOK {
		rs.t.Fatalf("jwks on %s: %d", rs.r[i].name, status)
	}
	var keys []map[string]any
	for _, k := range m["keys"].([]any) {
		keys = append(keys, k.(map[string]any))
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a]["kid"].(string) < keys[b]["kid"].(string) })
	return keys
}

func kids(keys []map[string]any) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k["kid"].(string))
	}
	return out
}

// kidOf returns the kid in a JWT's header.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &hdr) != nil || hdr.Kid == "" {
		t.Fatalf("not a JWT with a kid: %.20s…", jwt)
	}
	return hdr.Kid
}

// gateway sends tok to the mcp_auth gateway in replica i's process (whose JWKS comes from the
// other replica) and returns the status and body.
func (rs *replicaSet) gateway(i int, tok string) (int, string) {
	rs.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, replicaResource, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Transport: rs.r[i].gw, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		rs.t.Fatalf("gateway of %s: %v", rs.r[i].name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// parallel runs f(0..n-1) at once (released together) and waits for all.
func parallel(n int, f func(k int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for k := range n {
		wg.Go(func() { <-start; f(k) })
	}
	close(start)
	wg.Wait()
}

// TestReplicas starts two Caddy replicas on one PostgreSQL database once and runs the issue's
// scenarios against them; the key rotation runs last, as it waits for replica A to rotate.
func TestReplicas(t *testing.T) {
	rs := startReplicas(t)
	const A, B = 0, 1

	// The IdP never builds a URL from the Host header: asked under the balancer's name or under
	// its own address, each replica describes the one issuer.
	t.Run("metadata names the issuer whatever the Host", func(t *testing.T) {
		rs.t = t
		for i := range rs.r {
			for _, host := range []string{"idp.replicas.test", "127.0.0.1:" + rs.r[i].idpPort, "evil.example"} {
				req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/.well-known/oauth-authorization-server", nil)
				status, m := rs.doJSON(i, req)
				if status != http.StatusOK || m["issuer"] != replicaIssuer || m["token_endpoint"] != replicaIssuer+"/token" || m["jwks_uri"] != replicaIssuer+"/jwks.json" {
					t.Errorf("replica %s, Host %s: %d %v", rs.r[i].name, host, status, m)
				}
			}
		}
		if a, b := rs.jwks(A), rs.jwks(B); len(a) == 0 || !reflect.DeepEqual(a, b) {
			t.Errorf("the replicas publish different keys: %v and %v", kids(a), kids(b))
		}
	})

	// A grant made on one replica lives and dies on both. Each step of the sign-in may hit
	// either replica: the login form's CSRF token (stateless, keyed by the shared encryption
	// key), the session and the pending request all come through PostgreSQL.
	for _, tc := range []struct {
		name                    string
		steps                   browserSteps
		redeem, refresh, revoke int
	}{
		{"log in on A; redeem on B, refresh on A, revoke on B", browserSteps{A, A, A, A, A}, B, A, B},
		{"pages from A, forms posted to B; redeem on A, refresh on B, revoke on A", browserSteps{A, A, B, A, B}, A, B, A},
		{"every step on the other replica", browserSteps{B, A, B, A, B}, A, B, A},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs.t = t
			clientID := rs.register(tc.revoke)
			code, verifier := rs.signIn(clientID, "ada", tc.steps)
			at1, rt1 := rs.tokens(tc.redeem, clientID, code, verifier)
			for i := range rs.r {
				if !rs.active(i, at1) || !rs.active(i, rt1) {
					t.Fatalf("the new grant is not active on %s", rs.r[i].name)
				}
			}
			status, m := rs.refresh(tc.refresh, clientID, rt1)
			at2, _ := m["access_token"].(string)
			rt2, _ := m["refresh_token"].(string)
			if status != http.StatusOK || rt2 == "" || rt2 == rt1 || at2 == "" {
				t.Fatalf("refresh on %s: %d %v", rs.r[tc.refresh].name, status, m)
			}
			if status, m := rs.post(tc.revoke, "/revoke", url.Values{"token": {rt2}, "client_id": {clientID}}, "", ""); status != http.StatusOK {
				t.Fatalf("revoke on %s: %d %v", rs.r[tc.revoke].name, status, m)
			}
			for i := range rs.r {
				for _, tok := range []struct{ name, v string }{{"first access token", at1}, {"refreshed access token", at2}, {"refresh token", rt2}} {
					if rs.active(i, tok.v) {
						t.Errorf("%s still active on %s after revocation on %s", tok.name, rs.r[i].name, rs.r[tc.revoke].name)
					}
				}
				if status, m := rs.refresh(i, clientID, rt2); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
					t.Errorf("refresh with the revoked token on %s: %d %v, want 400 invalid_grant", rs.r[i].name, status, m)
				}
			}
		})
	}

	// One code, eight redemptions at once on both replicas: exactly one wins, the others are
	// replays, and the replay revokes what the winner got (RFC 6749 §4.1.2), on both replicas.
	t.Run("8 parallel redemptions of one code: exactly one wins", func(t *testing.T) {
		rs.t = t
		clientID := rs.register(A)
		code, verifier := rs.signIn(clientID, "grace", browserSteps{A, B, A, B, A})
		var mu sync.Mutex
		var wins []map[string]any
		var others []string
		parallel(8, func(k int) {
			status, m := rs.redeem(k%2, clientID, code, verifier)
			mu.Lock()
			defer mu.Unlock()
			if status == http.StatusOK {
				wins = append(wins, m)
			} else {
				others = append(others, fmt.Sprintf("%d %v", status, m["error"]))
			}
		})
		if len(wins) != 1 {
			t.Fatalf("%d redemptions succeeded, want exactly 1 (others: %v)", len(wins), others)
		}
		for _, o := range others {
			if o != "400 invalid_grant" {
				t.Errorf("a losing redemption answered %s, want 400 invalid_grant", o)
			}
		}
		for i := range rs.r {
			if rs.active(i, wins[0]["access_token"].(string)) || rs.active(i, wins[0]["refresh_token"].(string)) {
				t.Errorf("the winner's tokens are still active on %s after the replays", rs.r[i].name)
			}
		}
	})

	// One refresh token, eight refreshes at once on both replicas, all within the grace window
	// (RefreshGrace, 10s by default): every one gets a fresh access token and the SAME successor,
	// and none is taken for a reuse that revokes the family.
	t.Run("8 parallel refreshes of one token: the grace rule holds", func(t *testing.T) {
		rs.t = t
		clientID := rs.register(B)
		code, verifier := rs.signIn(clientID, "hopper", browserSteps{B, B, B, B, B})
		_, rt := rs.tokens(A, clientID, code, verifier)
		type result struct {
			status   int
			at, next string
			err      any
		}
		results := make([]result, 8)
		parallel(8, func(k int) {
			status, m := rs.refresh(k%2, clientID, rt)
			at, _ := m["access_token"].(string)
			next, _ := m["refresh_token"].(string)
			results[k] = result{status, at, next, m["error"]}
		})
		for k, r := range results {
			if r.status != http.StatusOK || r.at == "" || r.next == "" {
				t.Fatalf("refresh %d on %s: %d %v", k, rs.r[k%2].name, r.status, r.err)
			}
			if r.next != results[0].next || r.next == rt {
				t.Fatalf("refresh %d got another successor than refresh 0: the family branched", k)
			}
			if !rs.active(1-k%2, r.at) {
				t.Errorf("access token of refresh %d is not active on the other replica", k)
			}
		}
		for i := range rs.r {
			if !rs.active(i, results[0].next) {
				t.Fatalf("the successor is not active on %s: the family was revoked", rs.r[i].name)
			}
		}
		if status, m := rs.refresh(B, clientID, results[0].next); status != http.StatusOK {
			t.Fatalf("refresh with the successor: %d %v", status, m)
		}
	})

	// Replica A rotates its signing key (B never does): the new key reaches B's JWKS through
	// PostgreSQL before A signs with it, so a token A signs with it verifies at the gateway whose
	// JWKS comes from B, and both replicas end up publishing the same keys.
	t.Run("key rotation on A; tokens verify with the JWKS of B", func(t *testing.T) {
		rs.t = t
		clientID := rs.register(A)
		code, verifier := rs.signIn(clientID, "lovelace", browserSteps{A, A, A, A, A})
		at, rt := rs.tokens(A, clientID, code, verifier)
		oldKid := kidOf(t, at)
		if status, body := rs.gateway(A, at); status != http.StatusOK || body != "signed in as dev:lovelace" {
			t.Fatalf("gateway of A (JWKS from B) before the rotation: %d %q", status, body)
		}
		deadline := time.Now().Add(2*replicaRotation + 30*time.Second)
		var newAT string
		for newAT == "" {
			if time.Now().After(deadline) {
				t.Fatalf("replica A signed nothing but %s for %s", oldKid, 2*replicaRotation+30*time.Second)
			}
			published := kids(rs.jwks(B)) // read before A signs the token below
			status, m := rs.refresh(A, clientID, rt)
			if status != http.StatusOK {
				t.Fatalf("refresh on A: %d %v", status, m)
			}
			rt = m["refresh_token"].(string)
			tok := m["access_token"].(string)
			if kid := kidOf(t, tok); kid != oldKid {
				if !slices.Contains(published, kid) {
					t.Fatalf("A signed with %s before B published it (B's JWKS: %v)", kid, published)
				}
				newAT = tok
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if status, body := rs.gateway(A, newAT); status != http.StatusOK || body != "signed in as dev:lovelace" {
			t.Fatalf("gateway of A (JWKS from B) rejects a token A signed with its new key: %d %q", status, body)
		}
		if status, _ := rs.gateway(A, at); status != http.StatusOK {
			t.Fatalf("the token signed with the previous key stopped verifying: %d", status)
		}
		// Both replicas converge on one key set within a few reloads (once per cleanup_interval).
		for end := time.Now().Add(15 * time.Second); ; {
			a, b := rs.jwks(A), rs.jwks(B)
			if reflect.DeepEqual(a, b) && len(a) >= 2 {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("the replicas publish different keys: A %v, B %v", kids(a), kids(b))
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	// The DSN (with its password) is given through the environment and never reaches a log.
	t.Run("the DSN appears in no log", func(t *testing.T) {
		u, err := url.Parse(rs.dsn)
		if err != nil {
			t.Fatal("cannot parse the test DSN")
		}
		for _, r := range rs.r {
			log := r.logText()
			if strings.Contains(log, rs.dsn) || (u.User != nil && strings.Contains(log, u.User.String()+"@")) {
				t.Errorf("replica %s logged the DSN", r.name)
			}
			if !strings.Contains(log, "serving initial configuration") {
				t.Errorf("replica %s's log is not Caddy's (nothing checked):\n%s", r.name, log)
			}
		}
	})
}

// Caddyfile.examples/replicas.Caddyfile passes `caddy validate` (this test binary as Caddy:
// every module provisions, so mcp_idp connects to the database and migrates it) with its
// environment set, and is refused, saying why, when MCPGATE_PG_DSN or MCPGATE_IDP_KEY is
// missing.
func TestReplicasExampleValidates(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("example key"))
	env := map[string]string{
		"MCPGATE_PG_DSN":         pgtest.NewDatabase(t),
		"MCPGATE_IDP_KEY":        base64.StdEncoding.EncodeToString(sum[:]),
		"MCPGATE_GATEWAY_SECRET": "test-gateway-secret",
		"GITHUB_CLIENT_ID":       "test-client", "GITHUB_CLIENT_SECRET": "test-secret",
	}
	for _, tc := range []struct {
		name  string
		unset string
		want  string
	}{
		{"complete environment", "", "Valid configuration"},
		{"no MCPGATE_PG_DSN", "MCPGATE_PG_DSN", "dsn expands to nothing"},
		{"no MCPGATE_IDP_KEY", "MCPGATE_IDP_KEY", "encryption_key expands to nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			cmd := exec.Command(self, "validate", "--config", filepath.Join("..", "..", "Caddyfile.examples", "replicas.Caddyfile"))
			cmd.Env = append(os.Environ(), asCaddyEnv+"=1", "HOME="+home,
				"XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
			for k, v := range env {
				if k == tc.unset {
					v = ""
				}
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			if !strings.Contains(string(out), tc.want) || (tc.unset == "") != (err == nil) {
				t.Fatalf("caddy validate: %v, want %q in:\n%s", err, tc.want, out)
			}
			if strings.Contains(string(out), env["MCPGATE_PG_DSN"]) {
				t.Fatalf("caddy validate printed the DSN:\n%s", out)
			}
		})
	}
}
