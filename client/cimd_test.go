package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

// TestCheckClientMetadataURL checks each rule of the draft's "Client Identifier" section, with
// the test-only loopback http exception.
func TestCheckClientMetadataURL(t *testing.T) {
	tests := []struct {
		url  string
		want string // "" = accepted
	}{
		// MUST have an "https" scheme (plain http only for loopback, in tests).
		{"https://app.example/mcpgate-client.json", ""},
		{"HTTPS://app.example/mcpgate-client.json", ""},
		{"http://127.0.0.1:8080/client.json", ""},
		{"http://localhost/client.json", ""},
		{"http://[::1]:9/client.json", ""},
		{"http://[::ffff:127.0.0.1]:9/client.json", ""},
		{"http://app.example/client.json", "must use https (plain http only for a loopback host"},
		{"http://127.0.0.1.nip.io/client.json", "must use https"},
		{"ftp://app.example/client.json", "is not an absolute https URL"},
		{"not a url", "is not an absolute https URL"},
		{"/client.json", "is not an absolute https URL"},
		{"https:///client.json", "is not an absolute https URL"},
		{"https:app.example/client.json", "is not an absolute https URL"},
		// MUST contain a path component.
		{"https://app.example", "needs a path naming the document"},
		{"https://app.example?x=1", "needs a path naming the document"},
		{"https://app.example/", ""},
		// MUST NOT contain single-dot or double-dot path segments.
		{"https://app.example/a/../client.json", "must not contain . or .. path segments"},
		{"https://app.example/./client.json", "must not contain . or .. path segments"},
		{"https://app.example/a/..", "must not contain . or .. path segments"},
		{"https://app.example/a/%2e%2E/client.json", "must not contain . or .. path segments"},
		{"https://app.example/a/.well-known/client.json", ""},
		{"https://app.example/a/client..json", ""},
		// MUST NOT contain a fragment component.
		{"https://app.example/client.json#frag", "must not carry a fragment"},
		{"https://app.example/client.json#", "must not carry a fragment"},
		// MUST NOT contain a username or password component.
		{"https://user@app.example/client.json", "must not carry a username or password"},
		{"https://user:pw@app.example/client.json", "must not carry a username or password"},
		{"https://:pw@app.example/client.json", "must not carry a username or password"},
		// SHOULD NOT include a query string component: allowed.
		{"https://app.example/client.json?v=1", ""},
		{"https://app.example/client.json?", ""},
		// MAY contain a port.
		{"https://app.example:8443/clients/cli", ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckClientMetadataURL(tt.url)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			mustContain(t, err, tt.want)
			// New refuses the same URL with the same message.
			_, err = New(Config{MCPURL: "https://h.example/mcp", CacheDir: t.TempDir(), ClientMetadataURL: tt.url})
			mustContain(t, err, tt.want)
		})
	}
}

func TestClientMetadataURLConfigConflicts(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"with client ID", Config{ClientID: "cli"}, "exclude each other"},
		{"with client secret", Config{ClientSecret: "s"}, "takes no client secret"},
		{"with -reregister", Config{ForceRegister: true}, "never registers"},
		{"with a registration token", Config{RegistrationToken: "iat"}, "never registers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.MCPURL, tt.cfg.CacheDir = "https://h.example/mcp", t.TempDir()
			tt.cfg.ClientMetadataURL = "https://app.example/client.json"
			_, err := New(tt.cfg)
			mustContain(t, err, tt.want)
		})
	}
}

func TestNewClientMetadataDocument(t *testing.T) {
	tests := []struct {
		url, name, wantName string
	}{
		{"https://app.example/mcpgate-client.json", "", "mcpgate-client"},
		{"https://app.example/c", "My CLI", "My CLI"},
	}
	for _, tt := range tests {
		doc, err := NewClientMetadataDocument(tt.url, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"client_id":                  tt.url,
			"client_name":                tt.wantName,
			"redirect_uris":              []any{"http://127.0.0.1/callback"},
			"grant_types":                []any{"authorization_code", "refresh_token"},
			"response_types":             []any{"code"},
			"token_endpoint_auth_method": "none",
			"application_type":           "native",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("document\n got %v\nwant %v", got, want)
		}
	}
	_, err := NewClientMetadataDocument("http://app.example/c", "")
	mustContain(t, err, "must use https")
}

// docServer serves the client metadata document built for its own URL (plain http on
// loopback, which the fake authorization server fetches) and counts the fetches.
func docServer(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var (
		docURL string
		hits   atomic.Int32
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mcpgate-client.json" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		doc, err := NewClientMetadataDocument(docURL, "cimd test")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	docURL = "http://" + srv.Listener.Addr().String() + "/mcpgate-client.json"
	srv.Start()
	t.Cleanup(srv.Close)
	return docURL, &hits
}

// TestCIMDLogin: with ClientMetadataURL and an authorization server that supports metadata
// documents, the whole life of a login (authorize, code exchange, refresh, revocation) uses the
// URL as client_id, nothing is registered and nothing about the client is cached.
func TestCIMDLogin(t *testing.T) {
	docURL, docHits := docServer(t)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, oauthtest.ASOptions{ClientIDMetadataDocuments: true, Now: clock.Now}, oauthtest.ResourceOptions{})
	c, stderr := e.client(t, func(c *Config) { c.ClientMetadataURL = docURL; c.Now = clock.Now })
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatalf("Tools: %v\n%s", err, stderr)
	}
	st, err := c.Status()
	if err != nil || st.ClientID != docURL {
		t.Fatalf("status %+v %v", st, err)
	}
	authz := e.as.Authorizes()
	if len(authz) != 1 {
		t.Fatalf("%d authorization requests", len(authz))
	}
	if got := authz[0].Get("redirect_uri"); !strings.HasPrefix(got, "http://127.0.0.1:") || !strings.HasSuffix(got, "/callback") || redirectPort(got) == 0 {
		t.Errorf("redirect_uri %q, want the loopback callback with a port", got)
	}

	// Refresh after expiry, by a second run (a new Client), then logout.
	clock.Advance(2 * time.Hour)
	c2, _ := e.client(t, func(c *Config) {
		c.ClientMetadataURL = docURL
		c.Now = clock.Now
		c.OpenURL = func(string) error { t.Error("browser opened although a refresh token exists"); return nil }
	})
	if _, err := c2.Tools(ctxT(t)); err != nil {
		t.Fatalf("Tools after expiry: %v", err)
	}
	forms := e.as.TokenForms()
	if n := len(forms); n != 2 || forms[1].Get("grant_type") != "refresh_token" {
		t.Fatalf("token requests %v, want the code exchange then a refresh", forms)
	}
	if err := c2.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.as.Revoked(), ","); got != "refresh_token,access_token" {
		t.Errorf("revoked %q", got)
	}

	var endpoints []string
	for _, u := range e.as.ClientIDUses() {
		endpoints = append(endpoints, u.Endpoint)
		if u.ClientID != docURL {
			t.Errorf("%s saw client_id %q, want %q", u.Endpoint, u.ClientID, docURL)
		}
	}
	if got, want := strings.Join(endpoints, ","), "authorize,token,token,revoke,revoke"; got != want {
		t.Errorf("client_id uses at %s, want %s", got, want)
	}
	if n := e.as.RegisterHits(); n != 0 {
		t.Errorf("%d registration requests, want none", n)
	}
	if got := len(e.as.DocumentFetches()); got != 5 || docHits.Load() != 5 {
		t.Errorf("document fetched %d times by the AS, served %d times; want 5 (one per request)", got, docHits.Load())
	}
	if _, err := os.Stat(filepath.Join(e.cacheDir, "clients")); !os.IsNotExist(err) {
		t.Errorf("a registration cache exists: %v", err)
	}
	if strings.Contains(stderr.String(), "Registering") {
		t.Errorf("stderr mentions registration: %s", stderr)
	}
}

// TestCIMDUnsupported: an authorization server without client_id_metadata_document_supported
// gets no request at all (no registration fallback, no authorization) and the error names the
// issuer and the ways out. A cached token of another client is neither revoked nor deleted.
func TestCIMDUnsupported(t *testing.T) {
	docURL, docHits := docServer(t)
	tests := []struct {
		name  string
		login bool // Login (with a cached token from an earlier DCR run) instead of Tools
	}{{"first use", false}, {"login with a cached token", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
			if tt.login {
				c0, _ := e.client(t, nil)
				if _, err := c0.Tools(ctxT(t)); err != nil {
					t.Fatal(err)
				}
			}
			regs, authz := e.as.RegisterHits(), len(e.as.Authorizes())
			c, _ := e.client(t, func(c *Config) {
				c.ClientMetadataURL = docURL
				c.OpenURL = func(string) error { t.Error("browser opened"); return nil }
			})
			var err error
			if tt.login {
				err = c.Login(ctxT(t))
			} else {
				_, err = c.Tools(ctxT(t))
			}
			for _, want := range []string{
				"the authorization server at " + e.as.Issuer + " does not support client metadata documents",
				"client_id_metadata_document_supported", "-client-id", "drop -client-metadata-url",
			} {
				mustContain(t, err, want)
			}
			if e.as.RegisterHits() != regs || len(e.as.Authorizes()) != authz {
				t.Errorf("requests made: %d registrations, %d authorizations (before: %d, %d)", e.as.RegisterHits(), len(e.as.Authorizes()), regs, authz)
			}
			if docHits.Load() != 0 {
				t.Errorf("document fetched %d times", docHits.Load())
			}
			if tt.login {
				if n := len(e.as.Revoked()); n != 0 {
					t.Errorf("%d revocations before the refusal", n)
				}
				if st, _ := c.Status(); !st.LoggedIn {
					t.Error("the cached token was dropped")
				}
			}
		})
	}
}
