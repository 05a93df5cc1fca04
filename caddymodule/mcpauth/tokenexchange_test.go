package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
)

// provisionExchange returns a provisioned TokenExchange against endpoint.
func provisionExchange(t *testing.T, te *TokenExchange) *TokenExchange {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := te.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := te.Validate(); err != nil {
		t.Fatal(err)
	}
	return te
}

// TestTokenExchangeRequest checks the exact RFC 8693 request of CONTRACTS.md
// section 2 and the success mapping.
func TestTokenExchangeRequest(t *testing.T) {
	t.Setenv("MCPGATE_TEST_GATEWAY_SECRET", "p@ss:w/rd")
	var got *http.Request
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got, form = r, r.PostForm
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"gho_abc","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}`))
	}))
	defer srv.Close()
	now := time.Unix(1_800_000_000, 0)
	te := &TokenExchange{TokenEndpoint: srv.URL + "/token", ClientSecret: "{env.MCPGATE_TEST_GATEWAY_SECRET}", now: func() time.Time { return now }}
	provisionExchange(t, te)
	tok, err := te.UpstreamToken(context.Background(), nil, "subject.jwt.value")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Value != "gho_abc" || !tok.Expiry.Equal(now.Add(time.Hour)) {
		t.Errorf("token = %q expiry %v", tok.Value, tok.Expiry)
	}
	if got.Method != "POST" || got.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("method %s content-type %q", got.Method, got.Header.Get("Content-Type"))
	}
	id, secret, ok := got.BasicAuth()
	// RFC 6749 2.3.1: form-urlencoded before Basic.
	if !ok || id != "gateway" || secret != url.QueryEscape("p@ss:w/rd") {
		t.Errorf("basic auth = %q %q %v", id, secret, ok)
	}
	want := map[string]string{
		"grant_type":           "urn:ietf:params:oauth:grant-type:token-exchange",
		"subject_token":        "subject.jwt.value",
		"subject_token_type":   "urn:ietf:params:oauth:token-type:access_token",
		"requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"audience":             "https://api.github.com",
	}
	for k, v := range want {
		if form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, form.Get(k), v)
		}
	}
	if form.Has("client_secret") || form.Has("client_id") {
		t.Error("client credentials in the body with client_secret_basic")
	}
}

func TestTokenExchangeClientSecretPost(t *testing.T) {
	var form url.Values
	var authz string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form, authz = r.PostForm, r.Header.Get("Authorization")
		_, _ = w.Write([]byte(`{"access_token":"gho_x","token_type":"Bearer"}`))
	}))
	defer srv.Close()
	te := provisionExchange(t, &TokenExchange{TokenEndpoint: srv.URL, ClientID: "gw", ClientSecret: "sec", AuthMethod: "client_secret_post"})
	tok, err := te.UpstreamToken(context.Background(), nil, "s")
	if err != nil || tok.Value != "gho_x" || !tok.Expiry.IsZero() {
		t.Fatalf("%v %v", tok.Value, err)
	}
	if form.Get("client_id") != "gw" || form.Get("client_secret") != "sec" || authz != "" {
		t.Errorf("client_secret_post: form %v authz %q", form, authz)
	}
}

// TestTokenExchangeErrors maps every documented error to its sentinel, and
// never puts the secret or the subject token in the error.
func TestTokenExchangeErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		body   string
		delay  time.Duration
		want   error
	}{
		{"invalid_target = not linked", 400, `{"error":"invalid_target"}`, 0, ErrNoUpstreamToken},
		{"invalid_request = subject rejected", 400, `{"error":"invalid_request"}`, 0, ErrSubjectTokenRejected},
		{"invalid_client", 401, `{"error":"invalid_client"}`, 0, ErrSourceUnavailable},
		{"unauthorized_client", 400, `{"error":"unauthorized_client"}`, 0, ErrSourceUnavailable},
		{"server error", 500, `oops`, 0, ErrSourceUnavailable},
		{"503", 503, ``, 0, ErrSourceUnavailable},
		{"200 without token", 200, `{"token_type":"Bearer"}`, 0, ErrSourceUnavailable},
		{"200 not JSON", 200, `<html>`, 0, ErrSourceUnavailable},
		{"wrong issued type", 200, `{"access_token":"x","issued_token_type":"urn:ietf:params:oauth:token-type:id_token"}`, 0, ErrSourceUnavailable},
		{"huge body", 200, `{"access_token":"` + strings.Repeat("a", 100<<10) + `"}`, 0, ErrSourceUnavailable},
		{"redirect not followed", 302, ``, 0, ErrSourceUnavailable},
		{"timeout", 200, `{"access_token":"late"}`, 2 * time.Second, ErrSourceUnavailable},
		{"log injection in error code", 400, `{"error":"invalid_target\nFAKE LOG"}`, 0, ErrSourceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.delay > 0 {
					select {
					case <-time.After(c.delay):
					case <-r.Context().Done():
						return
					}
				}
				if c.status == 302 {
					w.Header().Set("Location", "https://elsewhere.example/token")
				}
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			te := provisionExchange(t, &TokenExchange{TokenEndpoint: srv.URL, ClientSecret: "top-secret-value", Timeout: caddy.Duration(200 * time.Millisecond)})
			start := time.Now()
			_, err := te.UpstreamToken(context.Background(), nil, "subject-token-value")
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
			for _, s := range []string{"top-secret-value", "subject-token-value", "FAKE LOG"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}
	// Connection refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	te := provisionExchange(t, &TokenExchange{TokenEndpoint: u, ClientSecret: "x"})
	if _, err := te.UpstreamToken(context.Background(), nil, "s"); !errors.Is(err, ErrSourceUnavailable) {
		t.Errorf("connection refused: %v", err)
	}
}

func TestTokenExchangeValidate(t *testing.T) {
	for _, c := range []struct {
		te   TokenExchange
		want string
	}{
		{TokenExchange{ClientSecret: "x"}, "token_endpoint"},
		{TokenExchange{TokenEndpoint: "https://a/token"}, "client_secret is empty"},
		{TokenExchange{TokenEndpoint: "https://a/token", ClientSecret: "x", AuthMethod: "private_key_jwt"}, "auth_method"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		te := c.te
		_ = te.Provision(ctx)
		err := te.Validate()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.te, err, c.want)
		}
	}
}

// TestTokenExchangeIssuerBinding: the exchanged issuer defaults to the
// handler's only issuer, is required with several, and must be one of them.
func TestTokenExchangeIssuerBinding(t *testing.T) {
	for _, c := range []struct {
		name, issuer string
		issuers      []string
		want, err    string
	}{
		{"default single", "", []string{"https://a.example"}, "https://a.example", ""},
		{"explicit", "https://b.example", []string{"https://a.example", "https://b.example"}, "https://b.example", ""},
		{"several without issuer", "", []string{"https://a.example", "https://b.example"}, "", "issuer is required"},
		{"foreign issuer", "https://c.example", []string{"https://a.example"}, "", "not one of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			te := &TokenExchange{Issuer: c.issuer}
			err := te.bindIssuers(c.issuers)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || te.Issuer != c.want {
				t.Fatalf("err = %v, issuer = %q, want %q", err, te.Issuer, c.want)
			}
		})
	}
}

// TestCrossIssuerTokenNotExchanged: with two issuers, a token of the issuer
// the exchange is not for never reaches the token endpoint (it could replay
// it); the user gets the no-upstream-token answer instead.
func TestCrossIssuerTokenNotExchanged(t *testing.T) {
	for _, c := range []struct {
		name       string
		second     bool // token from the second issuer
		wantStatus int
		wantCalls  int64
	}{
		{"exchange issuer", false, 200, 1},
		{"other issuer", true, 403, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var second *fakeIssuer
			env := newTestEnv(t, func(h *Handler, env *testEnv) {
				second = newFakeIssuer(t)
				h.Issuers = append(h.Issuers, IssuerConfig{Issuer: second.URL(), JWKSURI: second.URL() + "/jwks"})
				h.UpstreamRaw = json.RawMessage(`{"source":"token_exchange","issuer":"` + env.issuer.URL() + `","token_endpoint":"` + env.exchange.srv.URL + `/token","client_secret":"s3cret-gateway","timeout":"500ms"}`)
			})
			cl := env.claims("github:1")
			if c.second {
				cl["iss"] = second.URL()
			}
			w := env.do(bearerRequest("POST", "/mcp", signJWT(t, env.header(), cl, jwt.SigningMethodRS256, env.issuer.key)))
			if w.Code != c.wantStatus || env.exchange.calls.Load() != c.wantCalls {
				t.Errorf("status %d, exchange calls %d; want %d, %d", w.Code, env.exchange.calls.Load(), c.wantStatus, c.wantCalls)
			}
		})
	}
}

// TestSeveralIssuersRequireExchangeIssuer: a config with two issuers and a
// token_exchange without issuer fails to load.
func TestSeveralIssuersRequireExchangeIssuer(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := Handler{Resource: testResource,
		Issuers:     []IssuerConfig{{Issuer: "https://a.example"}, {Issuer: "https://b.example"}},
		UpstreamRaw: json.RawMessage(`{"source":"token_exchange","token_endpoint":"https://a.example/token","client_secret":"x"}`)}
	err := h.Provision(ctx)
	_ = h.Cleanup()
	if err == nil || !strings.Contains(err.Error(), "token_exchange issuer is required") {
		t.Errorf("err = %v", err)
	}
}
