package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// fakeAuth0 is an Auth0 tenant as its Authentication and Management API documentation
// describes the calls the two Auth0 sources make: /oauth/token with the Token Vault
// federated-connection grant and with client credentials, and GET /api/v2/users/{id}.
type fakeAuth0 struct {
	t *testing.T

	mu sync.Mutex
	// users maps a subject (Auth0 user_id) to its identities; vault maps a subject token to
	// the Token Vault answer for it.
	users map[string][]map[string]any
	vault map[string]vaultAnswer
	// mgmtIssued counts client-credentials grants; mgmtValid is the Management token the users
	// endpoint accepts.
	mgmtIssued int
	mgmtValid  string
	// override, if set, answers a request before the normal handling (for faults).
	override func(w http.ResponseWriter, r *http.Request) bool
	// requests counts every request; paths records the users endpoint's escaped paths.
	requests atomic.Int64
	paths    []string
	forms    []url.Values
}

type vaultAnswer struct {
	status int
	body   string
}

const (
	fakeAuth0ClientID     = "gateway-client"
	fakeAuth0ClientSecret = "gateway-secret-value"
)

func newFakeAuth0(t *testing.T) (*fakeAuth0, *httptest.Server) {
	f := &fakeAuth0{t: t, users: map[string][]map[string]any{}, vault: map[string]vaultAnswer{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAuth0) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.mu.Lock()
	override := f.override
	f.mu.Unlock()
	if override != nil && override(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/oauth/token":
		_ = r.ParseForm()
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		f.mu.Unlock()
		if r.PostForm.Get("client_id") != fakeAuth0ClientID || r.PostForm.Get("client_secret") != fakeAuth0ClientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"access_denied","error_description":"Unauthorized"}`)
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "client_credentials":
			f.mu.Lock()
			f.mgmtIssued++
			f.mgmtValid = fmt.Sprintf("mgmt-token-%d", f.mgmtIssued)
			tok := f.mgmtValid
			f.mu.Unlock()
			fmt.Fprintf(w, `{"access_token":%q,"scope":"read:users read:user_idp_tokens","expires_in":86400,"token_type":"Bearer"}`, tok)
		case grantTypeAuth0Federated:
			f.mu.Lock()
			a, ok := f.vault[r.PostForm.Get("subject_token")]
			f.mu.Unlock()
			if !ok {
				a = vaultAnswer{http.StatusUnauthorized, `{"error":"federated_connection_refresh_token_not_found","error_description":"Federated connection Refresh Token not found."}`}
			}
			w.WriteHeader(a.status)
			fmt.Fprint(w, a.body)
		default:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":"unauthorized_client","error_description":"Grant type not allowed for the client."}`)
		}
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.EscapedPath(), "/api/v2/users/"):
		f.mu.Lock()
		f.paths = append(f.paths, r.URL.EscapedPath())
		valid := f.mgmtValid
		ids, ok := f.users[strings.TrimPrefix(r.URL.Path, "/api/v2/users/")]
		f.mu.Unlock()
		if valid == "" || r.Header.Get("Authorization") != "Bearer "+valid {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"statusCode":401,"error":"Unauthorized","message":"Expired token received for JSON Web Token validation"}`)
			return
		}
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"identities": ids})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAuth0) set(fn func(f *fakeAuth0)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

const fakeAuth0Issuer = "https://tenant.example.auth0.com/"

// auth0Claims are verified claims of an Auth0 access token for sub.
func auth0Claims(sub string) *jwtverify.Claims {
	return &jwtverify.Claims{Issuer: fakeAuth0Issuer, Subject: sub}
}

// provisionAuth0 provisions src (an *Auth0TokenVault or *Auth0Management) for the fake tenant
// at srvURL, with clock now.
func provisionAuth0(t *testing.T, src interface {
	caddy.Provisioner
	caddy.Validator
	issuerBinder
}, a *auth0Client, srvURL string, now func() time.Time) {
	t.Helper()
	t.Setenv("MCPGATE_TEST_AUTH0_SECRET", fakeAuth0ClientSecret)
	a.Domain, a.ClientID, a.ClientSecret = srvURL, fakeAuth0ClientID, "{env.MCPGATE_TEST_AUTH0_SECRET}"
	a.out.now = now
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := src.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := src.bindIssuers([]string{fakeAuth0Issuer}); err != nil {
		t.Fatal(err)
	}
}

// noSecretIn fails the test if err's text holds a credential of the test.
func noSecretIn(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, fakeAuth0ClientSecret) {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q reveals a credential", err)
		}
	}
}

func TestAuth0TokenVaultRequest(t *testing.T) {
	f, srv := newFakeAuth0(t)
	f.set(func(f *fakeAuth0) {
		f.vault["alice.at"] = vaultAnswer{200, `{"access_token":"gho_alice","expires_in":28800,"issued_token_type":"http://auth0.com/oauth/token-type/federated-connection-access-token","token_type":"Bearer","scope":"repo"}`}
	})
	now := time.Unix(1_800_000_000, 0)
	v := &Auth0TokenVault{}
	provisionAuth0(t, v, &v.auth0Client, srv.URL, func() time.Time { return now })
	tok, err := v.UpstreamToken(context.Background(), auth0Claims("github|1"), "alice.at")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Value != "gho_alice" || !tok.Expiry.Equal(now.Add(8*time.Hour)) {
		t.Errorf("token %q expiry %v, want gho_alice at now+8h (expires_in honoured)", tok.Value, tok.Expiry)
	}
	form := f.forms[0]
	want := map[string]string{
		"grant_type":           "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token",
		"subject_token":        "alice.at",
		"subject_token_type":   "urn:ietf:params:oauth:token-type:access_token",
		"requested_token_type": "http://auth0.com/oauth/token-type/federated-connection-access-token",
		"connection":           "github",
		"client_id":            fakeAuth0ClientID,
		"client_secret":        fakeAuth0ClientSecret,
	}
	for k, w := range want {
		if form.Get(k) != w {
			t.Errorf("%s = %q, want %q", k, form.Get(k), w)
		}
	}
	if len(form) != len(want) {
		t.Errorf("form has %d parameters, want exactly %d: %v", len(form), len(want), keys(form))
	}
}

func keys(v url.Values) []string {
	var ks []string
	for k := range v {
		ks = append(ks, k)
	}
	return ks
}

func TestAuth0TokenVaultErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer *vaultAnswer // nil: the fake's "no federated token" answer
		want   error
	}{
		{"not connected", nil, ErrNoUpstreamToken},
		{"tokenset not found", &vaultAnswer{401, `{"error":"tokenset_not_found"}`}, ErrNoUpstreamToken},
		{"subject token refused", &vaultAnswer{403, `{"error":"invalid_grant","error_description":"Invalid subject token"}`}, ErrSubjectTokenRejected},
		{"client refused", &vaultAnswer{401, `{"error":"invalid_client"}`}, ErrSourceUnavailable},
		{"grant not allowed", &vaultAnswer{403, `{"error":"unauthorized_client"}`}, ErrSourceUnavailable},
		{"rate limited", &vaultAnswer{429, `{"error":"too_many_requests"}`}, ErrSourceUnavailable},
		{"server error", &vaultAnswer{500, `oops`}, ErrSourceUnavailable},
		{"200 without token", &vaultAnswer{200, `{"expires_in":10}`}, ErrSourceUnavailable},
		{"wrong token type", &vaultAnswer{200, `{"access_token":"x","issued_token_type":"urn:ietf:params:oauth:token-type:id_token"}`}, ErrSourceUnavailable},
		{"unknown error code", &vaultAnswer{400, `{"error":"<script>"}`}, ErrSourceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeAuth0(t)
			if tc.answer != nil {
				f.set(func(f *fakeAuth0) { f.vault["tok.at"] = *tc.answer })
			}
			v := &Auth0TokenVault{}
			provisionAuth0(t, v, &v.auth0Client, srv.URL, time.Now)
			_, err := v.UpstreamToken(context.Background(), auth0Claims("github|1"), "tok.at")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			noSecretIn(t, err, "tok.at")
			if strings.Contains(fmt.Sprint(err), "<script>") {
				t.Errorf("error echoes the tenant's unvetted error code: %v", err)
			}
		})
	}
}

func TestAuth0TokenVaultTimeoutAndIssuer(t *testing.T) {
	f, srv := newFakeAuth0(t)
	release := make(chan struct{})
	defer close(release)
	f.set(func(f *fakeAuth0) {
		f.override = func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
	})
	v := &Auth0TokenVault{}
	v.Timeout = caddy.Duration(100 * time.Millisecond)
	provisionAuth0(t, v, &v.auth0Client, srv.URL, time.Now)
	start := time.Now()
	_, err := v.UpstreamToken(context.Background(), auth0Claims("github|1"), "tok.at")
	if !errors.Is(err, ErrSourceUnavailable) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err = %v, want unavailable (timeout)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the call took %s despite a 100ms timeout", d)
	}
	// A token of another issuer never reaches the tenant.
	n := f.requests.Load()
	other := &jwtverify.Claims{Issuer: "https://other.example/", Subject: "github|1"}
	if _, err := v.UpstreamToken(context.Background(), other, "tok.at"); !errors.Is(err, ErrNoUpstreamToken) {
		t.Fatalf("other issuer: err = %v", err)
	}
	if f.requests.Load() != n {
		t.Fatal("a token of another issuer was sent to the Auth0 tenant")
	}
}

func TestAuth0ManagementToken(t *testing.T) {
	f, srv := newFakeAuth0(t)
	f.set(func(f *fakeAuth0) {
		f.users["github|1"] = []map[string]any{
			{"provider": "github", "connection": "github", "user_id": "1", "access_token": "gho_alice", "isSocial": true},
		}
		f.users["github|2"] = []map[string]any{
			{"provider": "auth0", "connection": "Username-Password-Authentication", "user_id": "x"},
			{"provider": "github", "connection": "github", "user_id": "2", "access_token": "gho_bob", "expires_in": 600},
		}
		f.users["auth0|3"] = []map[string]any{{"provider": "auth0", "connection": "Username-Password-Authentication", "user_id": "3"}}
		f.users["github|4"] = []map[string]any{{"provider": "github", "connection": "github", "user_id": "4"}}
	})
	now := time.Unix(1_800_000_000, 0)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	m := &Auth0Management{}
	provisionAuth0(t, m, &m.auth0Client, srv.URL, clock)
	if m.Audience != srv.URL+"/api/v2/" {
		t.Errorf("default audience %q", m.Audience)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		sub, want string
		expiry    time.Duration
		err       error
	}{
		{"github|1", "gho_alice", 0, nil},
		{"github|2", "gho_bob", 10 * time.Minute, nil},
		{"auth0|3", "", 0, ErrNoUpstreamToken},  // no GitHub identity
		{"github|4", "", 0, ErrNoUpstreamToken}, // GitHub identity without a stored token
		{"github|5", "", 0, ErrSubjectTokenRejected},
	} {
		tok, err := m.UpstreamToken(ctx, auth0Claims(tc.sub), "unused")
		if !errors.Is(err, tc.err) || tok.Value != tc.want {
			t.Errorf("%s: token %q err %v, want %q %v", tc.sub, tok.Value, err, tc.want, tc.err)
		}
		if tc.expiry != 0 && !tok.Expiry.Equal(now.Add(tc.expiry)) {
			t.Errorf("%s: expiry %v, want now+%s", tc.sub, tok.Expiry, tc.expiry)
		}
		noSecretIn(t, err, "mgmt-token-1")
	}
	if f.mgmtIssued != 1 {
		t.Errorf("%d Management tokens for five lookups, want 1 (cached)", f.mgmtIssued)
	}
	if f.paths[0] != "/api/v2/users/github%7C1" {
		t.Errorf("users path %q, want the user id path-escaped", f.paths[0])
	}
	cc := f.forms[0]
	if cc.Get("grant_type") != "client_credentials" || cc.Get("audience") != srv.URL+"/api/v2/" {
		t.Errorf("client credentials form %v", keys(cc))
	}

	// Past the Management token's lifetime (less the skew) a new one is fetched.
	clockMu.Lock()
	now = now.Add(24*time.Hour - 30*time.Second)
	clockMu.Unlock()
	if _, err := m.UpstreamToken(ctx, auth0Claims("github|1"), "unused"); err != nil {
		t.Fatal(err)
	}
	if f.mgmtIssued != 2 {
		t.Errorf("Management tokens issued = %d after expiry, want 2", f.mgmtIssued)
	}

	// The tenant revokes the Management token: one 401, a new token, the call succeeds.
	f.set(func(f *fakeAuth0) { f.mgmtValid = "revoked" })
	if tok, err := m.UpstreamToken(ctx, auth0Claims("github|1"), "unused"); err != nil || tok.Value != "gho_alice" {
		t.Fatalf("after a revoked Management token: %q %v", tok.Value, err)
	}
	if f.mgmtIssued != 3 {
		t.Errorf("Management tokens issued = %d, want 3", f.mgmtIssued)
	}
}

func TestAuth0ManagementRateLimit(t *testing.T) {
	f, srv := newFakeAuth0(t)
	now := time.Unix(1_800_000_000, 0)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	var limited atomic.Bool
	limited.Store(true)
	f.set(func(f *fakeAuth0) {
		f.users["github|1"] = []map[string]any{{"provider": "github", "connection": "github", "access_token": "gho_alice"}}
		f.override = func(w http.ResponseWriter, r *http.Request) bool {
			if !limited.Load() || r.Method != http.MethodGet {
				return false
			}
			w.Header().Set("X-RateLimit-Limit", "50")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", fmt.Sprint(clock().Add(20*time.Second).Unix()))
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached"}`)
			return true
		}
	})
	m := &Auth0Management{}
	provisionAuth0(t, m, &m.auth0Client, srv.URL, clock)
	ctx := context.Background()
	if _, err := m.UpstreamToken(ctx, auth0Claims("github|1"), ""); !errors.Is(err, ErrSourceUnavailable) {
		t.Fatalf("429: err = %v", err)
	}
	n := f.requests.Load()
	for i := 0; i < 50; i++ {
		if _, err := m.UpstreamToken(ctx, auth0Claims("github|1"), ""); !errors.Is(err, ErrSourceUnavailable) {
			t.Fatalf("during the back-off: err = %v", err)
		}
	}
	if got := f.requests.Load() - n; got != 0 {
		t.Fatalf("%d requests reached Auth0 during the back-off, want 0", got)
	}
	limited.Store(false)
	advance(19 * time.Second)
	if _, err := m.UpstreamToken(ctx, auth0Claims("github|1"), ""); !errors.Is(err, ErrSourceUnavailable) {
		t.Fatalf("one second before the reset: err = %v", err)
	}
	advance(2 * time.Second)
	if tok, err := m.UpstreamToken(ctx, auth0Claims("github|1"), ""); err != nil || tok.Value != "gho_alice" {
		t.Fatalf("after the reset: %q %v", tok.Value, err)
	}

	// A reset an hour away is capped: calls resume within a minute.
	limited.Store(true)
	f.set(func(f *fakeAuth0) {
		inner := f.override
		f.override = func(w http.ResponseWriter, r *http.Request) bool {
			if limited.Load() && r.Method == http.MethodGet {
				w.Header().Set("X-RateLimit-Reset", fmt.Sprint(clock().Add(time.Hour).Unix()))
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return inner(w, r)
		}
	})
	_, _ = m.UpstreamToken(ctx, auth0Claims("github|1"), "")
	limited.Store(false)
	advance(auth0MaxBackoff + time.Second)
	if _, err := m.UpstreamToken(ctx, auth0Claims("github|1"), ""); err != nil {
		t.Fatalf("a minute after a far-away reset: %v", err)
	}
}

func TestAuth0ManagementBadCredentials(t *testing.T) {
	_, srv := newFakeAuth0(t)
	m := &Auth0Management{}
	provisionAuth0(t, m, &m.auth0Client, srv.URL, time.Now)
	m.secret = "wrong-secret"
	_, err := m.UpstreamToken(context.Background(), auth0Claims("github|1"), "")
	if !errors.Is(err, ErrSourceUnavailable) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want unavailable naming the 401", err)
	}
	noSecretIn(t, err, "wrong-secret")
}

func TestAuth0Validate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		domain string
		id     string
		secret string
		want   string
	}{
		{"bare host", "tenant.us.auth0.com", "id", "s", ""},
		{"url with slash", "https://tenant.us.auth0.com/", "id", "s", ""},
		{"path", "https://tenant.us.auth0.com/oauth/token", "id", "s", "tenant's host or base URL"},
		{"empty domain", "", "id", "s", "tenant's host or base URL"},
		{"no client", "tenant.us.auth0.com", "", "s", "client_id is required"},
		{"no secret", "tenant.us.auth0.com", "id", "{env.MCPGATE_TEST_UNSET_SECRET}", "client_secret is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Auth0TokenVault{}
			v.Domain, v.ClientID, v.ClientSecret = tc.domain, tc.id, tc.secret
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			if err := v.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			err := v.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			if err == nil && v.endpoint("/oauth/token") != "https://tenant.us.auth0.com/oauth/token" {
				t.Errorf("token endpoint %q", v.endpoint("/oauth/token"))
			}
		})
	}
}

func TestAuth0UnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  string // the source's JSON
		err   string
	}{
		{"token vault", `mcp_auth {
			resource https://mcp.example.com/mcp
			issuer https://tenant.us.auth0.com/ {
				access_token_types JWT
			}
			upstream_token auth0_token_vault {
				domain tenant.us.auth0.com
				client_id api-client
				client_secret {env.AUTH0_CLIENT_SECRET}
				connection github
				timeout 3s
			}
		}`, `{"client_id":"api-client","client_secret":"{env.AUTH0_CLIENT_SECRET}","connection":"github","domain":"tenant.us.auth0.com","source":"auth0_token_vault","timeout":3000000000}`, ""},
		{"management", `mcp_auth {
			resource https://mcp.example.com/mcp
			issuer https://tenant.us.auth0.com/
			upstream_token auth0_management {
				domain https://tenant.us.auth0.com
				client_id m2m
				client_secret {env.AUTH0_M2M_SECRET}
				audience https://tenant.us.auth0.com/api/v2/
				issuer https://tenant.us.auth0.com/
			}
		}`, `{"audience":"https://tenant.us.auth0.com/api/v2/","client_id":"m2m","client_secret":"{env.AUTH0_M2M_SECRET}","domain":"https://tenant.us.auth0.com","issuer":"https://tenant.us.auth0.com/","source":"auth0_management"}`, ""},
		{"unknown option", `mcp_auth {
			upstream_token auth0_token_vault {
				audience x
			}
		}`, "", `unrecognized auth0_token_vault option "audience"`},
		{"missing value", `mcp_auth {
			upstream_token auth0_management {
				domain
			}
		}`, "", "wrong argument count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(h.UpstreamRaw) != tc.want {
				t.Errorf("source JSON\n got %s\nwant %s", h.UpstreamRaw, tc.want)
			}
		})
	}
}
