package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// authorize runs the authorization code flow with PKCE through the browser and the loopback
// redirect, exchanges the code and returns the new token record (not yet saved).
func (c *Client) authorize(ctx context.Context, d *Discovery, scopes []string) (*tokenRecord, error) {
	scopes, offline := withOfflineAccess(scopes, &d.AS)
	ln, creds, redirectURI, cached, err := c.prepareClient(ctx, d, scopes)
	if err != nil {
		return nil, err
	}
	verifier, challenge := newPKCE()
	state := randomString(32)

	q := url.Values{}
	q.Set("response_type", "code")
	q.Set("client_id", creds.ID)
	q.Set("redirect_uri", redirectURI)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("state", state)
	q.Set("resource", d.PRM.Resource)
	if len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, " "))
	}
	if offline {
		q.Set("prompt", "consent") // OpenID Connect Core §11 asks for it with offline_access
	}
	authURL, err := url.Parse(d.AS.AuthorizationEndpoint)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("bad authorization endpoint: %w", err)
	}
	merged := authURL.Query() // keep parameters the endpoint URL already carries
	for k, v := range c.cfg.AuthParams {
		if !q.Has(k) {
			merged.Set(k, v)
		}
	}
	for k, v := range q {
		merged[k] = v
	}
	authURL.RawQuery = merged.Encode()

	srv := startCallbackServer(ln, state, d.Issuer, d.AS.AuthorizationResponseIssParameterSupported)
	defer srv.Close()

	u := authURL.String()
	if c.cfg.NoBrowser {
		fmt.Fprintf(c.cfg.Stderr, "Open this URL in a browser to log in at %s:\n  %s\n", d.Issuer, u)
	} else {
		fmt.Fprintf(c.cfg.Stderr, "Opening the browser to log in at %s. If it does not open, visit:\n  %s\n", d.Issuer, u)
		open := c.cfg.OpenURL
		if open == nil {
			open = OpenBrowser
		}
		if err := open(u); err != nil {
			fmt.Fprintf(c.cfg.Stderr, "Could not open a browser (%v); open the URL above yourself.\n", err)
		}
	}
	fmt.Fprintf(c.cfg.Stderr, "Waiting up to %s for the browser login...\n", fmtDuration(c.cfg.LoginTimeout))

	timer := time.NewTimer(c.cfg.LoginTimeout)
	defer timer.Stop()
	var res callbackResult
	select {
	case res = <-srv.results:
	case <-timer.C:
		msg := fmt.Sprintf("timed out after %s waiting for the browser login", fmtDuration(c.cfg.LoginTimeout))
		var notes []string
		if n := srv.ignored(); n > 0 {
			notes = append(notes, fmt.Sprintf("%d request(s) to the callback without this login's state were ignored", n))
		}
		if cached {
			notes = append(notes, "if the browser showed an unknown-client error, run again with -reregister")
		}
		if len(notes) > 0 {
			msg += " (" + strings.Join(notes, "; ") + ")"
		}
		return nil, errors.New(msg)
	case <-ctx.Done():
		return nil, fmt.Errorf("login interrupted: %w", ctx.Err())
	}
	if res.err != nil {
		return nil, res.err
	}

	form := url.Values{}
	form.Set("grant_type", "authorization_code")
	form.Set("code", res.code)
	form.Set("redirect_uri", redirectURI)
	form.Set("code_verifier", verifier)
	form.Set("resource", d.PRM.Resource)
	tr, err := c.tokenRequest(ctx, d.AS.TokenEndpoint, form, creds)
	if err != nil {
		var oe *OAuthError
		if cached && errors.As(err, &oe) && oe.Code == "invalid_client" {
			_ = c.store.deleteRegistration(d.Issuer) // forgotten by the server: register next time
			return nil, fmt.Errorf("the code exchange failed: %w; the cached registration was dropped, log in again", err)
		}
		return nil, fmt.Errorf("the code exchange failed: %w", err)
	}
	return c.recordFrom(d, creds.ID, tr, scopes, nil), nil
}

// withOfflineAccess adds offline_access when the authorization server lists it in
// scopes_supported (MCP SEP-2207): OIDC-flavoured servers such as Auth0 issue refresh tokens
// only for it. added reports whether it was added here.
func withOfflineAccess(scopes []string, md *AuthServerMetadata) (out []string, added bool) {
	const offline = "offline_access"
	if !slices.Contains(md.ScopesSupported, offline) || slices.Contains(scopes, offline) {
		return scopes, false
	}
	return append(slices.Clone(scopes), offline), true
}

// prepareClient chooses the OAuth client and opens the loopback listener its redirect URI
// names; cached reports a registration taken from the cache. See the comment at the top of
// registration.go for the port policy.
func (c *Client) prepareClient(ctx context.Context, d *Discovery, scopes []string) (ln net.Listener, cc clientCreds, redirectURI string, cached bool, err error) {
	if c.cfg.ClientMetadataURL != "" {
		if err := c.checkCIMDSupport(d); err != nil {
			return nil, clientCreds{}, "", false, err
		}
		ln, err := c.listen(c.cfg.CallbackPort)
		if err != nil {
			return nil, clientCreds{}, "", false, err
		}
		return ln, c.credsFor(d.Issuer, &d.AS, c.cfg.ClientMetadataURL), redirectURIFor(listenerPort(ln)), false, nil
	}
	if c.cfg.ClientID != "" {
		ln, err := c.listen(c.cfg.CallbackPort)
		if err != nil {
			return nil, clientCreds{}, "", false, err
		}
		return ln, c.credsFor(d.Issuer, &d.AS, c.cfg.ClientID), redirectURIFor(listenerPort(ln)), false, nil
	}
	var reg *registration
	if !c.cfg.ForceRegister {
		if reg, err = c.store.loadRegistration(d.Issuer); err != nil {
			return nil, clientCreds{}, "", false, err
		}
	}
	if reg != nil && reg.SecretExpiresAt > 0 && c.cfg.Now().Unix() >= reg.SecretExpiresAt {
		reg = nil // the registration's secret expired: register anew
	}
	if reg != nil {
		port := redirectPort(reg.RedirectURI)
		want := port
		if c.cfg.CallbackPort != 0 {
			want = c.cfg.CallbackPort
		}
		if port > 0 && want == port && coversScopes(reg.Scope, scopes) {
			ln, err := listenLoopback(port)
			if err == nil {
				return ln, c.credsFor(d.Issuer, &d.AS, reg.ClientID), reg.RedirectURI, true, nil
			}
			if c.cfg.CallbackPort != 0 {
				return nil, clientCreds{}, "", false, fmt.Errorf("cannot listen on 127.0.0.1:%d for the login callback: %v", port, err)
			}
			fmt.Fprintf(c.cfg.Stderr, "Callback port %d is busy; registering with a new port\n", port)
		}
	}
	ln, err = c.listen(c.cfg.CallbackPort)
	if err != nil {
		return nil, clientCreds{}, "", false, err
	}
	reg, err = c.register(ctx, d, redirectURIFor(listenerPort(ln)), scopes)
	if err != nil {
		ln.Close()
		return nil, clientCreds{}, "", false, err
	}
	return ln, c.credsFor(d.Issuer, &d.AS, reg.ClientID), reg.RedirectURI, false, nil
}

func (c *Client) listen(port int) (net.Listener, error) {
	ln, err := listenLoopback(port)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on 127.0.0.1:%d for the login callback: %v", port, err)
	}
	return ln, nil
}

func listenerPort(ln net.Listener) int {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// redirectPort returns the port of a loopback redirect URI, or 0.
func redirectPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// fmtDuration prints whole minutes as "5m" and anything else in Go's notation.
func fmtDuration(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
