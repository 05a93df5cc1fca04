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
		// A response with a foreign state is ignored (anyone can request the loopback URL); the
		// login keeps waiting for the real one and finally says what it ignored.
		{name: "state mismatch", ao: oauthtest.ASOptions{WrongState: true}, mod: func(c *Config) { c.LoginTimeout = 1500 * time.Millisecond },
			want: "timed out after 1.5s waiting for the browser login (1 request(s) to the callback without this login's state were ignored"},
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

// TestOfflineAccess: offline_access is added (with prompt=consent) only when the authorization
// server lists it (SEP-2207), and never twice.
func TestOfflineAccess(t *testing.T) {
	tests := []struct {
		name       string
		supported  []string
		cfgScopes  []string
		wantScope  string
		wantPrompt bool
	}{
		{"advertised", []string{"openid", "mcp:read", "offline_access"}, nil, "mcp:read offline_access", true},
		{"not advertised", []string{"openid", "mcp:read"}, nil, "mcp:read", false},
		{"already requested", []string{"offline_access"}, []string{"mcp:read", "offline_access"}, "mcp:read offline_access", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.ASOptions{ScopesSupported: tt.supported}, oauthtest.ResourceOptions{})
			c, _ := e.client(t, func(c *Config) { c.Scopes = tt.cfgScopes })
			if err := c.Login(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			q := e.as.Authorizes()[0]
			if q.Get("scope") != tt.wantScope || (q.Get("prompt") == "consent") != tt.wantPrompt {
				t.Fatalf("scope %q prompt %q", q.Get("scope"), q.Get("prompt"))
			}
		})
	}
}
