package client

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

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
