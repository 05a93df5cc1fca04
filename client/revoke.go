package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// revokeAll revokes the refresh token, then the access token (RFC 7009 §2.1). Revoking the
// refresh token first matters: servers revoke the access tokens of its grant with it, while
// the reverse order would leave a refresh token able to mint new ones.
func (c *Client) revokeAll(ctx context.Context, rec *tokenRecord) error {
	md, err := c.asMetadata(ctx, rec.Issuer)
	if err != nil {
		return err
	}
	if md.RevocationEndpoint == "" {
		return fmt.Errorf("the authorization server at %s has no revocation endpoint", rec.Issuer)
	}
	cc := c.credsFor(rec.Issuer, md, rec.ClientID)
	var errs []error
	if rec.RefreshToken != "" {
		errs = append(errs, c.revoke(ctx, md.RevocationEndpoint, rec.RefreshToken, "refresh_token", cc))
	}
	errs = append(errs, c.revoke(ctx, md.RevocationEndpoint, rec.AccessToken, "access_token", cc))
	return errors.Join(errs...)
}

// replacedRevokeTimeout bounds the best-effort revocation before a new login.
const replacedRevokeTimeout = 10 * time.Second

// revokeReplaced revokes the cached tokens a login is about to replace, as best effort: a
// server without a revocation endpoint, or a failing one, only costs a debug line, and the old
// tokens then stay cached until the new ones replace them. On success the old tokens are
// deleted from the cache at once. It runs before the new authorization, not after it: servers
// that revoke the whole grant with a refresh token (Auth0) or drop the client's session
// (Keycloak) would otherwise revoke the new tokens too.
func (c *Client) revokeReplaced(ctx context.Context, old *tokenRecord) {
	ctx, cancel := context.WithTimeout(ctx, replacedRevokeTimeout)
	defer cancel()
	md, err := c.asMetadata(ctx, old.Issuer)
	if err != nil {
		c.cfg.Logger.Debug("not revoking the replaced tokens", "issuer", old.Issuer, "err", err)
		return
	}
	if md.RevocationEndpoint == "" {
		c.cfg.Logger.Debug("not revoking the replaced tokens: no revocation endpoint", "issuer", old.Issuer)
		return
	}
	if err := c.revokeAll(ctx, old); err != nil {
		c.cfg.Logger.Debug("revoking the replaced tokens failed", "issuer", old.Issuer, "err", err)
		return
	}
	if err := c.store.deleteToken(old); err == nil {
		c.mu.Lock()
		if c.tok == old {
			c.tok = nil
		}
		c.mu.Unlock()
	}
	fmt.Fprintf(c.cfg.Stderr, "Revoked the previous tokens at %s\n", old.Issuer)
}

func (c *Client) revoke(ctx context.Context, endpoint, token, hint string, cc clientCreds) error {
	form := url.Values{}
	form.Set("token", token)
	form.Set("token_type_hint", hint)
	body, status, err := c.postForm(ctx, endpoint, form, cc)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		oe := oauthErrorFrom(endpoint, status, body)
		if hint == "access_token" && oe.Code == "unsupported_token_type" {
			return nil // RFC 7009 §2.2.1: the server cannot revoke access tokens; they expire
		}
		return fmt.Errorf("revoking the %s failed: %w", hintName(hint), oe)
	}
	return nil
}

func hintName(hint string) string {
	if hint == "refresh_token" {
		return "refresh token"
	}
	return "access token"
}
