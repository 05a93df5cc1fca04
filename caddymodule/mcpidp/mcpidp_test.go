package mcpidp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestIDPUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    IDP
		wantErr string
	}{
		{
			name: "full",
			input: `mcp_idp {
				issuer https://auth.example.com
				data_dir /var/lib/mcpgate
				encryption_key {env.MCPGATE_IDP_KEY}
				github {
					client_id {env.GITHUB_CLIENT_ID}
					client_secret {env.GITHUB_CLIENT_SECRET}
					base_url https://github.example.com
					api_url https://github.example.com/api/v3
					scopes repo read:user
				}
				exchange_client gateway {env.MCPGATE_GATEWAY_SECRET} https://mcp.example.com/mcp
				default_resource https://mcp.example.com/mcp
				allowed_resources https://mcp.example.com/mcp https://other.example.com/mcp
				scopes mcp:tools github:repo
				signing_algorithm ES256
				access_token_ttl 15m
				refresh_token_ttl 24h
				registration_token {env.REG}
				authorize_rate_limit 30
				authorize_rate_window 90s
				cimd_failure_cache_ttl 2m
				key_rotation_interval 168h
				key_pre_publish 2h
				cleanup_interval 10m
			}`,
			want: IDP{
				Issuer:        "https://auth.example.com",
				DataDir:       "/var/lib/mcpgate",
				EncryptionKey: "{env.MCPGATE_IDP_KEY}",
				GitHub: &IDPGitHub{
					ClientID: "{env.GITHUB_CLIENT_ID}", ClientSecret: "{env.GITHUB_CLIENT_SECRET}",
					BaseURL: "https://github.example.com", APIURL: "https://github.example.com/api/v3",
					Scopes: []string{"repo", "read:user"},
				},
				ExchangeClients:     []IDPExchangeClient{{ID: "gateway", Secret: "{env.MCPGATE_GATEWAY_SECRET}", Audiences: []string{"https://mcp.example.com/mcp"}}},
				DefaultResource:     "https://mcp.example.com/mcp",
				AllowedResources:    []string{"https://mcp.example.com/mcp", "https://other.example.com/mcp"},
				Scopes:              []string{"mcp:tools", "github:repo"},
				SigningAlgorithm:    "ES256",
				AccessTokenTTL:      caddy.Duration(15 * time.Minute),
				RefreshTokenTTL:     caddy.Duration(24 * time.Hour),
				RegistrationToken:   "{env.REG}",
				AuthorizeRateLimit:  30,
				AuthorizeRateWindow: caddy.Duration(90 * time.Second),
				CIMDFailureCacheTTL: caddy.Duration(2 * time.Minute),
				KeyRotationInterval: caddy.Duration(168 * time.Hour),
				KeyPrePublish:       caddy.Duration(2 * time.Hour),
				CleanupInterval:     caddy.Duration(10 * time.Minute),
			},
		},
		{
			name:  "dev",
			input: "mcp_idp {\n issuer https://localhost:9443\n dev_login\n allow_private_cimd\n}",
			want:  IDP{Issuer: "https://localhost:9443", DevLogin: true, AllowPrivateCIMD: true},
		},
		{
			name:  "authorize rate limit disabled, day-long failure cache",
			input: "mcp_idp {\n authorize_rate_limit -1\n cimd_failure_cache_ttl 1d\n authorize_rate_window 0s\n}",
			want:  IDP{AuthorizeRateLimit: -1, CIMDFailureCacheTTL: caddy.Duration(24 * time.Hour)},
		},
		{name: "argument on directive", input: "mcp_idp https://x {\n}", wantErr: "wrong argument count"},
		{name: "unknown option", input: "mcp_idp {\n bogus 1\n}", wantErr: `unrecognized mcp_idp option "bogus"`},
		{name: "exchange client without secret", input: "mcp_idp {\n exchange_client gateway\n}", wantErr: "needs an id, a secret and the resources"},
		{name: "exchange client without audiences", input: "mcp_idp {\n exchange_client gateway s3cret\n}", wantErr: "needs an id, a secret and the resources"},
		{name: "bad duration", input: "mcp_idp {\n access_token_ttl soon\n}", wantErr: "access_token_ttl"},
		{name: "unknown github option", input: "mcp_idp {\n github {\n  org x\n }\n}", wantErr: `unrecognized github option "org"`},
		{name: "dev_login takes no argument", input: "mcp_idp {\n dev_login yes\n}", wantErr: "wrong argument count"},
		{name: "negative access token ttl", input: "mcp_idp {\n access_token_ttl -1h\n}", wantErr: "access_token_ttl must not be negative"},
		{name: "rate limit not an integer", input: "mcp_idp {\n authorize_rate_limit 10/m\n}", wantErr: `authorize_rate_limit: "10/m" is not an integer`},
		{name: "rate limit fractional", input: "mcp_idp {\n authorize_rate_limit 1.5\n}", wantErr: `authorize_rate_limit: "1.5" is not an integer`},
		{name: "rate limit zero", input: "mcp_idp {\n authorize_rate_limit 0\n}", wantErr: "use -1 to disable"},
		{name: "rate limit without value", input: "mcp_idp {\n authorize_rate_limit\n}", wantErr: "wrong argument count"},
		{name: "rate limit with two values", input: "mcp_idp {\n authorize_rate_limit 10 1m\n}", wantErr: "wrong argument count"},
		{name: "rate window not a duration", input: "mcp_idp {\n authorize_rate_window often\n}", wantErr: "authorize_rate_window: "},
		{name: "negative rate window", input: "mcp_idp {\n authorize_rate_window -1m\n}", wantErr: "authorize_rate_window must not be negative"},
		{name: "rate window without value", input: "mcp_idp {\n authorize_rate_window\n}", wantErr: "wrong argument count"},
		{name: "failure cache ttl not a duration", input: "mcp_idp {\n cimd_failure_cache_ttl 5\n}", wantErr: "cimd_failure_cache_ttl: "},
		{name: "negative failure cache ttl", input: "mcp_idp {\n cimd_failure_cache_ttl -30s\n}", wantErr: "cimd_failure_cache_ttl must not be negative"},
		{name: "negative key rotation interval", input: "mcp_idp {\n key_rotation_interval -1h\n}", wantErr: "key_rotation_interval must not be negative"},
		{name: "key pre-publish not a duration", input: "mcp_idp {\n key_pre_publish soon\n}", wantErr: "key_pre_publish: "},
		{name: "cleanup interval without value", input: "mcp_idp {\n cleanup_interval\n}", wantErr: "wrong argument count"},
		{name: "failure cache ttl with two values", input: "mcp_idp {\n cimd_failure_cache_ttl 1m 2m\n}", wantErr: "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got IDP
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestIDPValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    IDP
		ok   bool
	}{
		{"dev", IDP{Issuer: "https://a", DevLogin: true}, true},
		{"github", IDP{Issuer: "https://a", GitHub: &IDPGitHub{ClientID: "x"}}, true},
		{"no issuer", IDP{DevLogin: true}, false},
		{"no login method", IDP{Issuer: "https://a"}, false},
		{"exchange client without id", IDP{Issuer: "https://a", DevLogin: true, ExchangeClients: []IDPExchangeClient{{Secret: "s", Audiences: []string{"https://a/mcp"}}}}, false},
		{"exchange client without audiences", IDP{Issuer: "https://a", DevLogin: true, ExchangeClients: []IDPExchangeClient{{ID: "gateway", Secret: "s"}}}, false},
		{"rate limit and windows set", IDP{Issuer: "https://a", DevLogin: true, AuthorizeRateLimit: 5, AuthorizeRateWindow: caddy.Duration(time.Hour), CIMDFailureCacheTTL: caddy.Duration(time.Second)}, true},
		{"rate limit disabled", IDP{Issuer: "https://a", DevLogin: true, AuthorizeRateLimit: -1}, true},
		{"negative rate window", IDP{Issuer: "https://a", DevLogin: true, AuthorizeRateWindow: -1}, false},
		{"negative failure cache ttl", IDP{Issuer: "https://a", DevLogin: true, CIMDFailureCacheTTL: caddy.Duration(-time.Minute)}, false},
		{"negative access token ttl", IDP{Issuer: "https://a", DevLogin: true, AccessTokenTTL: caddy.Duration(-time.Minute)}, false},
		{"negative refresh token ttl", IDP{Issuer: "https://a", DevLogin: true, RefreshTokenTTL: caddy.Duration(-time.Minute)}, false},
	} {
		if err := tt.m.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	// The error names the offending field.
	err := IDP{Issuer: "https://a", DevLogin: true, CIMDFailureCacheTTL: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "cimd_failure_cache_ttl must not be negative") {
		t.Errorf("Validate() = %v, want it to name cimd_failure_cache_ttl", err)
	}
}

// The rate limit, its window and the CIMD failure cache TTL reach idp.Options unchanged; unset
// they stay zero, so idp applies its documented defaults (100, 1m, 1m).
func TestIDPOptionsPassThrough(t *testing.T) {
	for _, tt := range []struct {
		name         string
		m            IDP
		limit        int
		window, cimd time.Duration
	}{
		{"unset", IDP{Issuer: "https://a", DevLogin: true}, 0, 0, 0},
		{"set", IDP{
			Issuer: "https://a", DevLogin: true, AuthorizeRateLimit: 7,
			AuthorizeRateWindow: caddy.Duration(90 * time.Second), CIMDFailureCacheTTL: caddy.Duration(3 * time.Minute),
		}, 7, 90 * time.Second, 3 * time.Minute},
		{"disabled", IDP{Issuer: "https://a", DevLogin: true, AuthorizeRateLimit: -1}, -1, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.m.idpOptions(caddy.NewReplacer())
			if err != nil {
				t.Fatal(err)
			}
			if opts.AuthorizeRateLimit != tt.limit || opts.AuthorizeRateWindow != tt.window || opts.CIMDFailureCacheTTL != tt.cimd {
				t.Fatalf("idp.Options got limit %d window %v cimd failure ttl %v, want %d %v %v",
					opts.AuthorizeRateLimit, opts.AuthorizeRateWindow, opts.CIMDFailureCacheTTL, tt.limit, tt.window, tt.cimd)
			}
		})
	}
}

// The JSON field names are the documented snake_case ones; durations accept Caddy's strings.
func TestIDPJSONFields(t *testing.T) {
	var m IDP
	in := `{"authorize_rate_limit":-1,"authorize_rate_window":"90s","cimd_failure_cache_ttl":"2m"}`
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	want := IDP{AuthorizeRateLimit: -1, AuthorizeRateWindow: caddy.Duration(90 * time.Second), CIMDFailureCacheTTL: caddy.Duration(2 * time.Minute)}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	out, err := json.Marshal(IDP{Issuer: "https://a"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"issuer":"https://a"}` {
		t.Fatalf("unset fields are not omitted: %s", out)
	}
}

// authorize_rate_limit and authorize_rate_window, written in a Caddyfile, govern the running
// server: beyond the limit one client address gets a 429 with Retry-After equal to the window,
// while another address (Caddy's client IP, which honours trusted_proxies) is unaffected; -1
// disables the limit.
func TestIDPAuthorizeRateLimit(t *testing.T) {
	t.Setenv("MCPGATE_IDP_KEY", "")
	for _, tt := range []struct {
		name     string
		opts     string
		requests int // successive /authorize requests from 203.0.113.7
		allowed  int // how many of them get through (302); the rest get 429
	}{
		{"limit 2 per 90s", "authorize_rate_limit 2\n authorize_rate_window 90s", 4, 2},
		// More requests than the default limit (100), all let through.
		{"disabled", "authorize_rate_limit -1", 101, 101},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m IDP
			cf := "mcp_idp {\n issuer https://localhost:9443\n dev_login\n " + tt.opts + "\n}"
			if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(cf)); err != nil {
				t.Fatal(err)
			}
			m.DataDir = t.TempDir()
			_, cancel := provisionIDP(t, &m)
			defer cancel()
			defer m.Cleanup()

			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "https://localhost:9443/register",
				strings.NewReader(`{"client_name":"t","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
			req.Header.Set("Content-Type", "application/json")
			if err := m.ServeHTTP(rec, req, nil); err != nil || rec.Code != http.StatusCreated {
				t.Fatalf("register: status %d, error %v: %s", rec.Code, err, rec.Body)
			}
			var reg struct {
				ClientID string `json:"client_id"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &reg); err != nil || reg.ClientID == "" {
				t.Fatalf("register response %s: %v", rec.Body, err)
			}
			authorize := func(clientIP string) *httptest.ResponseRecorder {
				q := url.Values{
					"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {"http://127.0.0.1/cb"},
					"state": {"s"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"},
				}
				req := httptest.NewRequest(http.MethodGet, "https://localhost:9443/authorize?"+q.Encode(), nil)
				req = req.WithContext(context.WithValue(req.Context(), caddyhttp.VarsCtxKey,
					map[string]any{caddyhttp.ClientIPVarKey: clientIP}))
				rec := httptest.NewRecorder()
				if err := m.ServeHTTP(rec, req, nil); err != nil {
					t.Fatal(err)
				}
				return rec
			}
			for i := range tt.requests {
				want := http.StatusFound
				if i >= tt.allowed {
					want = http.StatusTooManyRequests
				}
				rec := authorize("203.0.113.7")
				if rec.Code != want {
					t.Fatalf("request %d: status %d, want %d: %s", i+1, rec.Code, want, rec.Body)
				}
				if want == http.StatusTooManyRequests && rec.Header().Get("Retry-After") != "90" {
					t.Fatalf("request %d: Retry-After %q, want the 90s window", i+1, rec.Header().Get("Retry-After"))
				}
			}
			if rec := authorize("198.51.100.9"); rec.Code != http.StatusFound {
				t.Fatalf("another client address: status %d, want 302", rec.Code)
			}
		})
	}
}

// provisionIDP provisions an mcp_idp handler as Caddy would.
func provisionIDP(t *testing.T, m *IDP) (*IDP, context.CancelFunc) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := m.Provision(ctx); err != nil {
		cancel()
		t.Fatalf("Provision: %v", err)
	}
	if err := m.Validate(); err != nil {
		cancel()
		t.Fatalf("Validate: %v", err)
	}
	return m, cancel
}

func idpGet(t *testing.T, m *IDP, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "https://localhost:9443"+path, nil)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Fatal("mcp_idp called the next handler")
		return nil
	})
	if err := m.ServeHTTP(rec, req, next); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

// A config reload provisions the new handler before the old one is cleaned up. bbolt locks its
// file, so both must share one open store: the new handler must neither block nor fail, and it
// must publish the same signing key; the store must be closed only after the last user.
func TestIDPReloadSharesStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MCPGATE_IDP_KEY", "")
	t.Setenv("MCPGATE_TEST_GATEWAY_SECRET", "s3cret-for-tests")
	cfg := func() *IDP {
		return &IDP{
			Issuer: "https://localhost:9443", DataDir: dir, DevLogin: true,
			ExchangeClients: []IDPExchangeClient{{ID: "gateway", Secret: "{env.MCPGATE_TEST_GATEWAY_SECRET}", Audiences: []string{"https://mcp.example.com/mcp"}}},
		}
	}
	old, cancelOld := provisionIDP(t, cfg())
	defer cancelOld()

	status, meta := idpGet(t, old, "/.well-known/oauth-authorization-server")
	if status != http.StatusOK || meta["issuer"] != "https://localhost:9443" {
		t.Fatalf("metadata: status %d, issuer %v", status, meta["issuer"])
	}
	_, jwks1 := idpGet(t, old, "/jwks.json")

	done := make(chan *IDP, 1)
	go func() {
		m, cancel := provisionIDP(t, cfg())
		defer cancel()
		done <- m
	}()
	var cur *IDP
	select {
	case cur = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("provisioning a second mcp_idp on the same data_dir blocked (store not shared)")
	}
	if err := old.Cleanup(); err != nil {
		t.Fatalf("Cleanup old: %v", err)
	}
	_, jwks2 := idpGet(t, cur, "/jwks.json")
	if !reflect.DeepEqual(jwks1, jwks2) {
		t.Fatalf("signing keys changed across reload:\n%v\n%v", jwks1, jwks2)
	}
	if err := cur.Cleanup(); err != nil {
		t.Fatalf("Cleanup new: %v", err)
	}
	// After the last user the file is closed: a fresh handler opens it again, and the generated
	// key file is private.
	again, cancel := provisionIDP(t, cfg())
	defer cancel()
	if _, jwks3 := idpGet(t, again, "/jwks.json"); !reflect.DeepEqual(jwks1, jwks3) {
		t.Fatal("signing keys did not survive a restart")
	}
	if err := again.Cleanup(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "idp.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("idp.key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestIDPProvisionErrors(t *testing.T) {
	t.Setenv("MCPGATE_IDP_KEY", "")
	t.Setenv("MCPGATE_TEST_EMPTY", "")
	for _, tt := range []struct {
		name string
		m    IDP
		want string
	}{
		{"no key in production", IDP{Issuer: "https://a.example", GitHub: &IDPGitHub{ClientID: "x", ClientSecret: "y"}}, "no encryption key"},
		{"bad key", IDP{Issuer: "https://a.example", DevLogin: true, EncryptionKey: "not-base64!"}, "base64"},
		{"empty exchange secret", IDP{Issuer: "https://a.example", DevLogin: true, ExchangeClients: []IDPExchangeClient{{ID: "gateway", Secret: "{env.MCPGATE_TEST_EMPTY}", Audiences: []string{"https://a.example/mcp"}}}}, "empty secret"},
		{"exchange client without audiences", IDP{Issuer: "https://a.example", DevLogin: true, ExchangeClients: []IDPExchangeClient{{ID: "gateway", Secret: "s"}}}, `exchange client "gateway" names no audiences`},
		{"empty registration token", IDP{Issuer: "https://a.example", DevLogin: true, RegistrationToken: "{env.MCPGATE_TEST_EMPTY}"}, "registration_token expands to nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			m.DataDir = t.TempDir()
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := m.Provision(ctx)
			_ = m.Cleanup()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Provision error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// registration_token, expanded from the environment, closes dynamic registration to anyone
// without it.
func TestIDPRegistrationToken(t *testing.T) {
	t.Setenv("MCPGATE_IDP_KEY", "")
	t.Setenv("MCPGATE_TEST_REG", "initial-access-token")
	m, cancel := provisionIDP(t, &IDP{Issuer: "https://localhost:9443", DataDir: t.TempDir(), DevLogin: true, RegistrationToken: "{env.MCPGATE_TEST_REG}"})
	defer cancel()
	defer m.Cleanup()
	body := `{"client_name":"t","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`
	for _, tt := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer initial-access-token", http.StatusCreated},
	} {
		req := httptest.NewRequest(http.MethodPost, "https://localhost:9443/register", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		if err := m.ServeHTTP(rec, req, nil); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tt.want {
			t.Errorf("register with %q: status %d, want %d", tt.auth, rec.Code, tt.want)
		}
	}
}
