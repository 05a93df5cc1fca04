package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
