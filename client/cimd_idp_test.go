package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/idp"
	"github.com/mcpgate/mcpgate/internal/testutil"
)

// TestCIMDAgainstMcpgateIdP logs in against mcpgate's real IdP with the document that
// NewClientMetadataDocument (the client-metadata command) prints, hosted on an https test
// server: the IdP must fetch and accept it, match the port-less loopback redirect URI against
// the client's http://127.0.0.1:PORT/callback, and issue, refresh and revoke tokens for the
// URL as client_id.
func TestCIMDAgainstMcpgateIdP(t *testing.T) {
	var docURL string
	var docHits atomic.Int32
	docSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/clients/mcpgate-client.json" {
			http.NotFound(w, r)
			return
		}
		docHits.Add(1)
		doc, err := NewClientMetadataDocument(docURL, "mcpgate-client e2e")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	docSrv.StartTLS()
	t.Cleanup(docSrv.Close)
	docURL = docSrv.URL + "/clients/mcpgate-client.json"
	roots := docSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	var idpHandler http.Handler
	idpSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idpHandler.ServeHTTP(w, r)
	}))
	issuer := "http://" + idpSrv.Listener.Addr().String()
	clock := &fakeClock{now: time.Now()}
	ip, err := idp.New(idp.Options{
		Issuer:           issuer,
		DevLogin:         true,
		AllowPrivateCIMD: true,
		CIMDRootCAs:      roots,
		Now:              clock.Now,
	})
	if err != nil {
		t.Fatalf("idp.New: %v", err)
	}
	t.Cleanup(func() { _ = ip.Close() })
	idpHandler = ip
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	mcpURL := startChallengingResource(t, issuer)
	b := newIdPBrowser(t, issuer, "octocat")
	errOut := &testutil.SyncBuffer{}
	cfg := Config{
		MCPURL:            mcpURL,
		ClientMetadataURL: docURL,
		CacheDir:          t.TempDir(),
		OpenURL:           b.open,
		Stderr:            errOut,
		Stdout:            &testutil.SyncBuffer{},
		LoginTimeout:      15 * time.Second,
		Now:               clock.Now,
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v\nstderr: %s\nbrowser: %s", err, errOut, b.trail())
	}
	if got := b.trail(); got != "authorize>consent>login>dev-login>consent>approve>callback 200" {
		t.Errorf("browser went %s", got)
	}
	st, _ := c.Status()
	if !st.LoggedIn || st.ClientID != docURL || st.Issuer != issuer || !st.Refreshable || strings.Join(st.Scopes, " ") != "mcp" {
		t.Fatalf("status %+v", st)
	}
	if docHits.Load() == 0 {
		t.Error("the IdP never fetched the document")
	}
	if strings.Contains(errOut.String(), "Registering") {
		t.Errorf("registered: %s", errOut)
	}
	first, _ := c.cachedToken()

	// Expired (by the shared clock): the refresh goes to the IdP with the URL as client_id.
	clock.Advance(2 * time.Hour)
	tok, err := c.accessToken(ctxT(t))
	if err != nil || tok == "" || tok == first.AccessToken {
		t.Fatalf("refresh: token changed %v, err %v\nstderr: %s", tok != first.AccessToken, err, errOut)
	}
	refreshed, _ := c.cachedToken()
	if refreshed.ClientID != docURL || refreshed.RefreshToken == first.RefreshToken {
		t.Errorf("refreshed record: client %s, rotated %v", refreshed.ClientID, refreshed.RefreshToken != first.RefreshToken)
	}

	// Logout revokes at the IdP as the URL client: the refresh token is dead afterwards.
	if err := c.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errOut.String(), "Warning") {
		t.Errorf("revocation failed: %s", errOut)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}, "client_id": {docURL}, "resource": {refreshed.Resource}}
	resp, err := http.PostForm(issuer+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_grant") {
		t.Errorf("refresh after logout: %d %s, want 400 invalid_grant", resp.StatusCode, body)
	}
}

// startChallengingResource serves a protected resource's metadata naming issuer and answers
// every MCP request with a 401 challenge: enough for discovery and login.
func startChallengingResource(t *testing.T, issuer string) string {
	t.Helper()
	var origin string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/mcp":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"resource": origin + "/mcp", "authorization_servers": []string{issuer},
				"scopes_supported": []string{"mcp"}, "bearer_methods_supported": []string{"header"},
			})
		case "/mcp":
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata="%s/.well-known/oauth-protected-resource/mcp", scope="mcp"`, origin))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		default:
			http.NotFound(w, r)
		}
	}))
	origin = "http://" + srv.Listener.Addr().String()
	srv.Start()
	t.Cleanup(srv.Close)
	return origin + "/mcp"
}

// idpBrowser clicks through mcpgate's IdP as a person would: the dev login form, then the
// consent page, then the redirect to the client's loopback callback.
type idpBrowser struct {
	t        *testing.T
	issuer   string
	username string
	hc       *http.Client
	steps    atomic.Value // string: the pages visited, for failure messages
}

func newIdPBrowser(t *testing.T, issuer, username string) *idpBrowser {
	jar, _ := cookiejar.New(nil)
	b := &idpBrowser{t: t, issuer: issuer, username: username, hc: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	b.steps.Store("")
	return b
}

func (b *idpBrowser) trail() string { return b.steps.Load().(string) }

func (b *idpBrowser) step(s string) {
	if old := b.trail(); old != "" {
		s = old + ">" + s
	}
	b.steps.Store(s)
}

var (
	idpCSRFRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	idpReqRe  = regexp.MustCompile(`name="req" value="([^"]*)"`)
)

func (b *idpBrowser) open(u string) error {
	go func() {
		if err := b.run(u); err != nil {
			b.step("error: " + err.Error())
		}
	}()
	return nil
}

func (b *idpBrowser) run(u string) error {
	b.step("authorize")
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for range 10 {
		resp, err := b.hc.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		page := string(body)
		if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:") && req.URL.Path == callbackPath {
			b.step(fmt.Sprintf("callback %d", resp.StatusCode))
			return nil
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return err
			}
			req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
			if strings.HasPrefix(next.String(), b.issuer+"/") {
				b.step(strings.TrimPrefix(next.Path, "/"))
			}
		case resp.StatusCode == http.StatusOK && strings.Contains(page, `name="username"`):
			b.step("dev-login")
			req = b.form("/login", page, url.Values{"username": {b.username}})
		case resp.StatusCode == http.StatusOK && strings.Contains(page, `value="approve"`):
			b.step("approve")
			req = b.form("/consent", page, url.Values{"action": {"approve"}})
		default:
			return fmt.Errorf("%s answered %d: %.300s", req.URL.Path, resp.StatusCode, page)
		}
		if req == nil {
			return fmt.Errorf("no form fields on %s", resp.Request.URL.Path)
		}
	}
	return fmt.Errorf("too many steps")
}

// form builds the POST of a page's form (its csrf_token and req fields plus v) to the issuer path.
func (b *idpBrowser) form(path, page string, v url.Values) *http.Request {
	csrf, reqID := idpCSRFRe.FindStringSubmatch(page), idpReqRe.FindStringSubmatch(page)
	if csrf == nil || reqID == nil {
		return nil
	}
	v.Set("csrf_token", csrf[1])
	v.Set("req", reqID[1])
	req, _ := http.NewRequest(http.MethodPost, b.issuer+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
