package client

import (
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

// TestLoginThroughOpenURL drives the whole login through the OpenURL hook with the in-test
// browser and checks every parameter the RFCs require.
func TestLoginThroughOpenURL(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, stderr := e.client(t, func(c *Config) {
		c.AuthParams = map[string]string{"audience": "https://api.example", "state": "attacker-chosen"}
	})
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if e.browser.count() != 1 {
		t.Fatalf("browser opened %d times", e.browser.count())
	}
	opened := e.browser.opened[0]
	if !strings.Contains(stderr.String(), opened) {
		t.Error("the authorization URL was not printed to stderr")
	}
	az := e.as.Authorizes()
	if len(az) != 1 {
		t.Fatalf("%d authorization requests", len(az))
	}
	q := az[0]
	redirect := q.Get("redirect_uri")
	ru, _ := url.Parse(redirect)
	checks := map[string]bool{
		"response_type=code":           q.Get("response_type") == "code",
		"S256":                         q.Get("code_challenge_method") == "S256" && len(q.Get("code_challenge")) == 43,
		"state >= 32 chars":            len(q.Get("state")) >= 32,
		"resource = MCP URL":           q.Get("resource") == e.res.URL,
		"scope from the challenge":     q.Get("scope") == "mcp:read",
		"loopback 127.0.0.1 /callback": ru != nil && ru.Scheme == "http" && ru.Hostname() == "127.0.0.1" && ru.Path == "/callback" && ru.Port() != "",
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("authorization request: %s failed: %v", name, q)
		}
	}
	forms := e.as.TokenForms()
	if len(forms) != 1 {
		t.Fatalf("%d token requests", len(forms))
	}
	f := forms[0]
	if f.Get("grant_type") != "authorization_code" || f.Get("resource") != e.res.URL || f.Get("redirect_uri") != redirect || len(f.Get("code_verifier")) != 43 {
		t.Errorf("token request: %v", f)
	}
	// The browser got the friendly success page.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.browser.mu.Lock()
		n := len(e.browser.pages)
		e.browser.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.browser.mu.Lock()
	pages := append([]string(nil), e.browser.pages...)
	e.browser.mu.Unlock()
	if len(pages) != 1 || !strings.Contains(pages[0], "Login complete") {
		t.Errorf("browser pages: %q", pages)
	}
	st, _ := c.Status()
	if !st.LoggedIn || st.Issuer != e.as.Issuer || st.Resource != e.res.URL || strings.Join(st.Scopes, " ") != "mcp:read" || !st.Refreshable {
		t.Errorf("status %+v", st)
	}
}

func TestLoginFailures(t *testing.T) {
	tests := []struct {
		name      string
		ao        oauthtest.ASOptions
		mod       func(*Config)
		noBrowser bool
		want      string
	}{
		{name: "registration refused", ao: oauthtest.ASOptions{RefuseRegistration: true}, want: "refused the registration: invalid_client_metadata: registration is closed <b>here</b>"},
		{name: "no registration endpoint", ao: oauthtest.ASOptions{NoRegistration: true}, want: "has no registration endpoint; pass -client-id"},
		{name: "initial access token missing", ao: oauthtest.ASOptions{RegistrationToken: "iat-1"}, want: "may need an initial access token (-registration-token)"},
		{name: "wrong initial access token", ao: oauthtest.ASOptions{RegistrationToken: "iat-1"}, mod: func(c *Config) { c.RegistrationToken = "nope" }, want: "check -registration-token"},
		{name: "wrong iss in the response", ao: oauthtest.ASOptions{WrongIss: true}, want: "the authorization response names issuer https://attacker.example, expected"},
		{name: "state mismatch", ao: oauthtest.ASOptions{WrongState: true}, want: "state does not match this login; aborted"},
		{name: "timeout", noBrowser: true, mod: func(c *Config) { c.LoginTimeout = 300 * time.Millisecond }, want: "timed out after 300ms waiting for the browser login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.ao, oauthtest.ResourceOptions{})
			c, stderr := e.client(t, func(c *Config) {
				c.NoBrowser = tt.noBrowser
				if tt.mod != nil {
					tt.mod(c)
				}
			})
			err := c.Login(ctxT(t))
			mustContain(t, err, tt.want)
			for _, f := range e.as.TokenForms() {
				if f.Get("grant_type") == "authorization_code" {
					t.Fatal("a code was exchanged after a failed check")
				}
			}
			if st, _ := c.Status(); st.LoggedIn {
				t.Fatal("a token was cached")
			}
			if tt.noBrowser && !strings.Contains(stderr.String(), "Open this URL in a browser") {
				t.Errorf("no URL printed with -no-browser: %s", stderr)
			}
			// Tools report the same single line.
			_, err = c.Tools(ctxT(t))
			mustContain(t, err, tt.want)
		})
	}
}

func TestRegistrationToken(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{RegistrationToken: "iat-1"}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, func(c *Config) { c.RegistrationToken = "iat-1" })
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
}

func TestRegistrationRequestAndCache(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	regs := e.as.Registrations()
	if len(regs) != 1 {
		t.Fatalf("%d registrations", len(regs))
	}
	r := regs[0]
	want := map[string]string{
		"client_name": "mcpgate-client", "token_endpoint_auth_method": "none", "application_type": "native", "scope": "mcp:read",
		"grant_types": "[authorization_code refresh_token]", "response_types": "[code]",
	}
	for k, v := range want {
		if got := strings.Trim(strings.ReplaceAll(toString(r[k]), "\"", ""), " "); got != v {
			t.Errorf("registration %s = %q, want %q", k, got, v)
		}
	}
	uris, _ := r["redirect_uris"].([]any)
	if len(uris) != 1 || !strings.HasPrefix(uris[0].(string), "http://127.0.0.1:") || !strings.HasSuffix(uris[0].(string), "/callback") {
		t.Errorf("redirect_uris %v", r["redirect_uris"])
	}
	first := e.as.Authorizes()[0].Get("redirect_uri")

	// A second login reuses the cached registration and its port.
	c2, _ := e.client(t, nil)
	if err := c2.Login(ctxT(t)); err != nil {
		t.Fatalf("second Login: %v", err)
	}
	if n := len(e.as.Registrations()); n != 1 {
		t.Fatalf("%d registrations after the second login, want 1", n)
	}
	if got := e.as.Authorizes()[1].Get("redirect_uri"); got != first {
		t.Errorf("second login used %s, want the registered %s", got, first)
	}

	// With the registered port taken, the client registers again on another port.
	ln, err := net.Listen("tcp", strings.TrimPrefix(strings.TrimSuffix(first, "/callback"), "http://"))
	if err != nil {
		t.Fatalf("occupying the port: %v", err)
	}
	defer ln.Close()
	c3, stderr := e.client(t, nil)
	if err := c3.Login(ctxT(t)); err != nil {
		t.Fatalf("third Login: %v", err)
	}
	if n := len(e.as.Registrations()); n != 2 {
		t.Fatalf("%d registrations after the port was taken, want 2", n)
	}
	if !strings.Contains(stderr.String(), "busy; registering with a new port") {
		t.Errorf("stderr: %s", stderr)
	}
}

// TestExactRedirectServer: a server comparing redirect URIs exactly still works because the
// registered port is reused.
func TestExactRedirectServer(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{ExactRedirect: true}, oauthtest.ResourceOptions{})
	for i := range 2 {
		c, _ := e.client(t, nil)
		if err := c.Login(ctxT(t)); err != nil {
			t.Fatalf("Login %d: %v", i, err)
		}
	}
	if n := len(e.as.Registrations()); n != 1 {
		t.Fatalf("%d registrations", n)
	}
}

func TestPreRegisteredClient(t *testing.T) {
	tests := []struct {
		name, secret string
	}{{"public", ""}, {"confidential", "s3cr&t=1"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.ASOptions{NoRegistration: true}, oauthtest.ResourceOptions{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			e.as.AddClient("cli", tt.secret, redirectURIFor(port))
			c, stderr := e.client(t, func(c *Config) { c.ClientID, c.ClientSecret, c.CallbackPort = "cli", tt.secret, port })
			if _, err := c.Tools(ctxT(t)); err != nil {
				t.Fatalf("Tools: %v", err)
			}
			if len(e.as.Registrations()) != 0 {
				t.Fatal("registered although a client ID was given")
			}
			f := e.as.TokenForms()[0]
			if f.Has("client_secret") {
				t.Error("secret sent in the form; client_secret_basic expected")
			}
			if tt.secret != "" && strings.Contains(stderr.String(), tt.secret) {
				t.Error("secret printed")
			}
			if got := e.as.Authorizes()[0].Get("redirect_uri"); got != redirectURIFor(port) {
				t.Errorf("redirect_uri %s", got)
			}
		})
	}
}

func TestCallbackPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, func(c *Config) { c.CallbackPort = ln.Addr().(*net.TCPAddr).Port })
	mustContain(t, c.Login(ctxT(t)), "cannot listen on 127.0.0.1:")
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", 90 * time.Second: "1m30s", 10 * time.Second: "10s", 300 * time.Millisecond: "300ms"} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var parts []string
		for _, p := range x {
			parts = append(parts, toString(p))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return ""
}

// TestScopeChoice: the challenge's scope, else the PRM's scopes_supported, else no scope
// parameter at all (never an empty one); Config.Scopes overrides.
func TestScopeChoice(t *testing.T) {
	tests := []struct {
		name      string
		ro        oauthtest.ResourceOptions
		cfgScopes []string
		want      string // "" = no scope parameter
	}{
		{"challenge", oauthtest.ResourceOptions{ChallengeScope: "mcp:read"}, nil, "mcp:read"},
		{"PRM scopes_supported", oauthtest.ResourceOptions{NoChallengeScope: true}, nil, "mcp:read mcp:admin"},
		{"none at all", oauthtest.ResourceOptions{NoChallengeScope: true, ScopesSupported: []string{"", " "}, RequiredScope: "-"}, nil, ""},
		{"configured", oauthtest.ResourceOptions{}, []string{"mcp:read  mcp:admin", "x"}, "mcp:read mcp:admin x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.ASOptions{}, tt.ro)
			c, _ := e.client(t, func(c *Config) { c.Scopes = tt.cfgScopes })
			if _, err := c.Tools(ctxT(t)); err != nil {
				t.Fatalf("Tools: %v", err)
			}
			q := e.as.Authorizes()[0]
			if tt.want == "" {
				if q.Has("scope") {
					t.Fatalf("scope parameter sent: %q", q.Get("scope"))
				}
				if _, ok := e.as.Registrations()[0]["scope"]; ok {
					t.Fatal("scope sent at registration")
				}
				return
			}
			if q.Get("scope") != tt.want || e.as.Registrations()[0]["scope"] != tt.want {
				t.Fatalf("scope %q, registered %v, want %q", q.Get("scope"), e.as.Registrations()[0]["scope"], tt.want)
			}
		})
	}
}

// TestOpenServer: a server that asks for no authorization is used without a token or login.
func TestOpenServer(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{Open: true})
	c, _ := e.client(t, nil)
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatalf("Tools: %v", err)
	}
	if e.browser.count() != 0 || len(e.as.Registrations()) != 0 {
		t.Fatal("logged in to an open server")
	}
}

// TestForgottenRegistration: when the server no longer knows the cached client, the timeout
// message points at -reregister, and ForceRegister registers anew.
func TestForgottenRegistration(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.as.ForgetClients()
	c2, _ := e.client(t, func(c *Config) { c.LoginTimeout = 500 * time.Millisecond })
	mustContain(t, c2.Login(ctxT(t)), "run again with -reregister")
	c3, _ := e.client(t, func(c *Config) { c.ForceRegister = true })
	if err := c3.Login(ctxT(t)); err != nil {
		t.Fatalf("Login with ForceRegister: %v", err)
	}
	if n := len(e.as.Registrations()); n != 2 {
		t.Fatalf("%d registrations, want 2", n)
	}
}

func TestCodeExchangeInvalidClientDropsRegistration(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.as.RejectClientsAtToken()
	c2, _ := e.client(t, nil)
	mustContain(t, c2.Login(ctxT(t)), "invalid_client: client authentication failed; the cached registration was dropped")
	if reg, _ := c2.store.loadRegistration(e.as.Issuer); reg != nil {
		t.Fatal("registration still cached")
	}
}
