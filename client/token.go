package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// OAuthError is an RFC 6749 §5.2 error answer from an authorization server endpoint (or a
// non-JSON failure there). Its message never contains a token or secret.
type OAuthError struct {
	// Endpoint is the URL that answered.
	Endpoint string
	// Status is the HTTP status.
	Status int
	// Code is the "error" value, e.g. "invalid_grant"; empty when the body was not JSON.
	Code string
	// Description is the sanitized error_description (at most 200 characters).
	Description string
}

// Error returns "ENDPOINT answered STATUS CODE: DESCRIPTION".
func (e *OAuthError) Error() string {
	msg := fmt.Sprintf("%s answered %d", e.Endpoint, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// clientCreds is how the client authenticates at the token and revocation endpoints.
type clientCreds struct {
	ID     string
	Secret string
	// Method is "none", "client_secret_basic" or "client_secret_post".
	Method string
}

func (cc clientCreds) apply(req *http.Request, form url.Values) {
	switch {
	case cc.Secret == "" || cc.Method == "none":
		form.Set("client_id", cc.ID)
	case cc.Method == "client_secret_post":
		form.Set("client_id", cc.ID)
		form.Set("client_secret", cc.Secret)
	default: // client_secret_basic, with the RFC 6749 §2.3.1 form-encoding
		req.SetBasicAuth(url.QueryEscape(cc.ID), url.QueryEscape(cc.Secret))
	}
}

// secretMethod picks the token endpoint authentication for a confidential client from the
// metadata: client_secret_basic (the RFC 8414 default) unless only client_secret_post is listed.
func secretMethod(md *AuthServerMetadata) string {
	m := md.TokenEndpointAuthMethodsSupported
	if len(m) == 0 {
		return "client_secret_basic"
	}
	for _, x := range m {
		if x == "client_secret_basic" {
			return x
		}
	}
	for _, x := range m {
		if x == "client_secret_post" {
			return x
		}
	}
	return "client_secret_basic"
}

// tokenResponse is the RFC 6749 §5.1 answer.
type tokenResponse struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	RefreshToken string  `json:"refresh_token"`
	Scope        string  `json:"scope"`
	ExpiresIn    flexInt `json:"expires_in"`
}

// flexInt accepts a JSON number or a numeric string (some servers send "3600").
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("expires_in %s is not a number", s)
	}
	*f = flexInt(n)
	return nil
}

// tokenRequest posts form to the token endpoint and returns a checked token response.
func (c *Client) tokenRequest(ctx context.Context, endpoint string, form url.Values, cc clientCreds) (*tokenResponse, error) {
	body, status, err := c.postForm(ctx, endpoint, form, cc)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, oauthErrorFrom(endpoint, status, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("the token endpoint %s sent an unreadable answer: %v", endpoint, err)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("the token endpoint %s sent no access_token", endpoint)
	}
	if !strings.EqualFold(tr.TokenType, "Bearer") {
		return nil, fmt.Errorf("the token endpoint %s issued a %q token; only Bearer is supported", endpoint, sanitize(tr.TokenType))
	}
	return &tr, nil
}

func (c *Client) postForm(ctx context.Context, endpoint string, form url.Values, cc clientCreds) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, 0, err
	}
	cc.apply(req, form)
	enc := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(enc))
	req.ContentLength = int64(len(enc))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.oauthHTTP.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot reach %s: %w", endpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read the answer of %s: %w", endpoint, err)
	}
	return body, resp.StatusCode, nil
}

func oauthErrorFrom(endpoint string, status int, body []byte) *OAuthError {
	e := &OAuthError{Endpoint: endpoint, Status: status}
	var v struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &v) == nil {
		e.Code, e.Description = sanitize(v.Error), sanitize(v.Description)
	}
	return e
}

// sanitize makes server-provided text safe for one terminal line: no control characters, at
// most 200 runes.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "..."
	}
	return s
}

// recordFrom builds a cache record from a token response. requested are the scopes asked for,
// used when the server does not echo scope (RFC 6749 §5.1).
func (c *Client) recordFrom(d *Discovery, clientID string, tr *tokenResponse, requested []string, old *tokenRecord) *tokenRecord {
	now := c.cfg.Now()
	rec := &tokenRecord{
		Issuer:       d.Issuer,
		Resource:     d.PRM.Resource,
		MCPURL:       c.cfg.MCPURL,
		ClientID:     clientID,
		AccessToken:  tr.AccessToken,
		TokenType:    "Bearer",
		RefreshToken: tr.RefreshToken,
		ObtainedAt:   now,
	}
	if tr.ExpiresIn > 0 {
		rec.Expiry = now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	switch {
	case tr.Scope != "":
		rec.Scopes = strings.Fields(tr.Scope)
	case old != nil && len(requested) == 0:
		rec.Scopes = old.Scopes
	default:
		rec.Scopes = requested
	}
	if rec.RefreshToken == "" && old != nil {
		rec.RefreshToken = old.RefreshToken // no rotation: the old refresh token stays valid
	}
	return rec
}
