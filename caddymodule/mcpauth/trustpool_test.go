package mcpauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// tlsCopy serves h over TLS with httptest's own CA, which no system trusts.
func tlsCopy(t *testing.T, h http.Handler) (*httptest.Server, json.RawMessage) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := map[string]any{"provider": "inline", "trusted_ca_certs": []string{base64.StdEncoding.EncodeToString(srv.Certificate().Raw)}}
	raw, err := json.Marshal(pool)
	if err != nil {
		t.Fatal(err)
	}
	return srv, raw
}

// The JWKS and the token endpoint are served over HTTPS by a CA only the trust pool names: with
// tls_trust_pool the gateway verifies and injects; without it the JWKS cannot be fetched, so
// the issuer's keys are unavailable: 503 with Retry-After (not 401, the token may be fine).
func TestTrustPool(t *testing.T) {
	for _, tt := range []struct {
		name       string
		withPool   bool
		wantStatus int
	}{
		{"with tls_trust_pool", true, http.StatusOK},
		{"system roots only", false, http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var jwksFetches, exchanges int
			env := newTestEnv(t, func(h *Handler, env *testEnv) {
				jwks, pool := tlsCopy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					jwksFetches++
					env.issuer.srv.Config.Handler.ServeHTTP(w, r)
				}))
				tok, _ := tlsCopy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					exchanges++
					env.exchange.srv.Config.Handler.ServeHTTP(w, r)
				}))
				h.Issuers[0].JWKSURI = jwks.URL + "/jwks"
				up := map[string]any{"source": "token_exchange", "token_endpoint": tok.URL + "/token",
					"client_id": "gateway", "client_secret": "s3cret-gateway", "audience": "https://api.github.com", "timeout": "2s"}
				if tt.withPool {
					h.TrustPoolRaw = pool
					// httptest's TLS servers share one certificate, so the same pool trusts both.
					up["tls_trust_pool"] = json.RawMessage(pool)
				}
				h.UpstreamRaw, _ = json.Marshal(up)
			})
			w := env.do(bearerRequest(http.MethodPost, "https://mcp.example.com/mcp", env.validToken("user-1")))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.withPool {
				if got := env.backend.Last().Get("X-GitHub-Token"); got == "" {
					t.Fatal("no upstream token injected")
				}
				if jwksFetches == 0 || exchanges != 1 {
					t.Fatalf("jwks fetches %d, exchanges %d; want >0 and 1", jwksFetches, exchanges)
				}
			} else {
				if env.backend.Calls() != 0 {
					t.Fatal("the backend was called")
				}
				if w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" {
					t.Fatalf("Retry-After %q, WWW-Authenticate %q; want a Retry-After and no challenge",
						w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
}

func TestTrustPoolCaddyfile(t *testing.T) {
	for _, tt := range []struct {
		name, input, want, wantErr string
	}{
		{
			name:  "pki_root",
			input: "mcp_auth {\n resource https://m/mcp\n issuer https://i\n tls_trust_pool pki_root local\n}",
			want:  `{"authority":["local"],"provider":"pki_root"}`,
		},
		{name: "twice", input: "mcp_auth {\n tls_trust_pool pki_root local\n tls_trust_pool pki_root local\n}", wantErr: "already specified"},
		{name: "unknown source", input: "mcp_auth {\n tls_trust_pool nonsense\n}", wantErr: "nonsense"},
		{name: "no source", input: "mcp_auth {\n tls_trust_pool\n}", wantErr: "wrong argument count"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(h.TrustPoolRaw) != tt.want {
				t.Fatalf("tls_trust_pool = %s, want %s", h.TrustPoolRaw, tt.want)
			}
		})
	}

	var te TokenExchange
	err := te.UnmarshalCaddyfile(caddyfile.NewTestDispenser("token_exchange {\n token_endpoint https://i/token\n tls_trust_pool pki_root local\n}"))
	if err != nil || string(te.TrustPoolRaw) != `{"authority":["local"],"provider":"pki_root"}` {
		t.Fatalf("token_exchange tls_trust_pool = %s, %v", te.TrustPoolRaw, err)
	}
}
