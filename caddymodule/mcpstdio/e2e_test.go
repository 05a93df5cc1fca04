package mcpstdio_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	// mcp_auth, in front of mcp_stdio in every end-to-end test.
	_ "github.com/mcpgate/mcpgate/caddymodule"
	_ "github.com/mcpgate/mcpgate/caddymodule/mcpstdio"
	"github.com/mcpgate/mcpgate/internal/caddyrun"
	"github.com/mcpgate/mcpgate/internal/testutil"
)

// End-to-end: a real Caddy, in process, with admin off (so this package never collides with
// other packages' caddytest instances on localhost:2999) on free loopback ports, serving
// HTTPS with a test certificate: mcp_auth (a fake issuer's JWKS and a fake token exchange on
// httptest) in front of mcp_stdio. Only one Caddy config runs per process, so these tests do
// not run in parallel.

// stack is one loaded Caddy config and its fakes.
type stack struct {
	t      *testing.T
	origin string // https://localhost:<port>
	key    *rsa.PrivateKey
	issuer *httptest.Server
	xchg   *httptest.Server
	client *http.Client
	logs   string // Caddy's log file (debug level)

	mu     sync.Mutex
	tokens map[string]string // sub -> upstream token the exchange hands out
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newStack starts the fakes; load starts Caddy with stdioBlock as the mcp_stdio directive.
func newStack(t *testing.T, tokens map[string]string) *stack {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	s := &stack{t: t, key: rsaKey, tokens: tokens}
	s.issuer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1",
			"n": base64.RawURLEncoding.EncodeToString(s.key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(s.key.E)).Bytes()),
		}}})
	}))
	t.Cleanup(s.issuer.Close)
	s.xchg = httptest.NewServer(http.HandlerFunc(s.exchange))
	t.Cleanup(s.xchg.Close)
	return s
}

// exchange is an RFC 8693 token endpoint: the subject token's sub gets tokens[sub].
func (s *stack) exchange(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != "gateway" || secret != "s3cret-gateway" || r.ParseForm() != nil {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(r.PostForm.Get("subject_token"), claims); err != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	sub, _ := claims["sub"].(string)
	s.mu.Lock()
	tok, ok := s.tokens[sub]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_target"}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer",
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "expires_in": 3600})
}

// load runs Caddy with mcp_auth and the given mcp_stdio block until the test ends.
func (s *stack) load(stdioBlock string) {
	t := s.t
	t.Helper()
	httpPort, httpsPort := freePort(t), freePort(t)
	s.origin = fmt.Sprintf("https://localhost:%d", httpsPort)
	dir := t.TempDir()
	s.logs = filepath.Join(dir, "caddy.log")
	certFile, keyFile, pool := selfSignedLocalhost(t, dir)
	cf := fmt.Sprintf(`{
	log {
		output file %s
		level DEBUG
	}
	admin off
	persist_config off
	auto_https disable_redirects
	http_port %d
	https_port %d
	grace_period 1s
}
%s {
	tls %s %s
	mcp_auth {
		resource %s/mcp
		issuer %s {
			jwks_uri %s/jwks
		}
		scopes_supported mcp:tools
		required_scopes mcp:tools
		upstream_token token_exchange {
			token_endpoint %s/token
			client_id gateway
			client_secret s3cret-gateway
			timeout 5s
		}
		# mcp_stdio reads the token from this header (see docs/mcp_stdio.md).
		upstream_header X-GitHub-Token
	}
	%s
}
`, s.logs, httpPort, httpsPort, s.origin, certFile, keyFile, s.origin, s.issuer.URL, s.issuer.URL, s.xchg.URL, stdioBlock)
	caddyrun.Load(t, cf)
	s.client = s.tlsClient(httpsPort, pool)
}

// assertLogsClean fails if a secret appears in Caddy's log, and returns the log.
func (s *stack) assertLogsClean(secrets ...string) string {
	s.t.Helper()
	b, err := os.ReadFile(s.logs)
	if err != nil {
		s.t.Fatalf("reading Caddy's log: %v", err)
	}
	for _, sec := range secrets {
		if strings.Contains(string(b), sec) {
			s.t.Errorf("a token is in Caddy's log")
		}
	}
	return string(b)
}

// selfSignedLocalhost writes a certificate for localhost and its key into dir. A certificate
// from files keeps Caddy's certificate automation (and its events) out of these tests.
func selfSignedLocalhost(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "localhost.crt"), filepath.Join(dir, "localhost.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, pool
}

// tlsClient trusts the site's certificate and waits (bounded) until the site answers.
func (s *stack) tlsClient(port int, pool *x509.CertPool) *http.Client {
	t := s.t
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
		if err == nil {
			conn.Close()
			return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy's HTTPS site never came up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// token is an access token of the fake issuer for sub, audience this resource.
func (s *stack) token(sub string) string {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": s.issuer.URL, "sub": sub, "aud": s.origin + "/mcp", "client_id": "c1",
		"scope": "mcp:tools", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": sub + now.String(),
	})
	tok.Header["kid"] = "k1"
	tok.Header["typ"] = "at+jwt"
	signed, err := tok.SignedString(s.key)
	if err != nil {
		s.t.Fatal(err)
	}
	return signed
}

// mcpClient is mcp-go's streamable HTTP client (a client nobody here wrote) for sub,
// initialized. version "" lets it speak 2026-07-28 (server/discover, stateless); a 2025
// version makes it use the initialize handshake and a session.
func (s *stack) mcpClient(ctx context.Context, sub, version string, opts ...transport.StreamableHTTPCOption) *client.Client {
	return s.mcpClientWith(ctx, sub, version, nil, opts...)
}

// mcpClientWith is mcpClient with client options (a sampling handler, say).
func (s *stack) mcpClientWith(ctx context.Context, sub, version string, copts []client.ClientOption, opts ...transport.StreamableHTTPCOption) *client.Client {
	t := s.t
	t.Helper()
	opts = append([]transport.StreamableHTTPCOption{
		transport.WithHTTPBasicClient(s.client),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + s.token(sub)}),
	}, opts...)
	tr, err := transport.NewStreamableHTTP(s.origin+"/mcp", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if version != "" {
		copts = append(copts, client.WithProtocolVersion(version))
	}
	c := client.NewClient(tr, copts...)
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: "mcpstdio-e2e", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize as %s (%q): %v", sub, version, err)
	}
	return c
}

// callText calls a tool and returns its first text content.
func callText(ctx context.Context, t *testing.T, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	if args == nil {
		args = map[string]any{} // server-everything's schemas refuse null arguments
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	if res.IsError {
		t.Fatalf("%s: tool error: %s", name, b.String())
	}
	return b.String()
}

// nodeDir prepares testdata/node (npm ci when node_modules is missing) and returns its path.
func nodeDir(t *testing.T) string {
	return testutil.NodeProject(t, filepath.Join("testdata", "node"), "@modelcontextprotocol/server-github")
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// The example Caddyfile adapts without warnings, with mcp_stdio after mcp_auth in each site's
// route (the directive order needs no `order` line).
func TestExampleCaddyfileAdapts(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "Caddyfile.examples", "stdio-server.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "stdio-server.Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s:%d: %s", w.File, w.Line, w.Message)
	}
	js := string(out)
	for _, want := range []string{
		`"handler":"mcp_stdio"`,
		`"command":"/usr/local/bin/github-mcp-server"`,
		`"args":["stdio","--read-only"]`,
		`"GITHUB_PERSONAL_ACCESS_TOKEN":"{http.request.header.X-GitHub-Token}"`,
		`"command":"node"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("adapted JSON lacks %s", want)
		}
	}
	if a, s := strings.Index(js, `"handler":"mcp_auth"`), strings.Index(js, `"handler":"mcp_stdio"`); a < 0 || s < a {
		t.Error("mcp_stdio does not come after mcp_auth")
	}
}
