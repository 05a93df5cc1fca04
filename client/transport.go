package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// transportError carries a failure of the bearer transport through mcp-go's wrapping, so the
// public methods can return it as one clear line.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// clean returns the transport's own error when err wraps one.
func clean(err error) error {
	var te *transportError
	if errors.As(err, &te) {
		return te.err
	}
	return err
}

// bearerTransport adds the access token to requests for the MCP server's origin (never to
// anything else) and recovers from authorization failures of POSTs (MCP messages):
//   - 401: refresh once (when a refresh token exists), else or then log in again, retry;
//   - 403 with error="insufficient_scope": log in again once with the union of the granted and
//     the challenged scopes (step-up), retry.
//
// Other requests (DELETE at session end) are sent with the token but never start a login. A
// final 401/403, and other HTTP errors whose body is not a JSON-RPC message, become errors.
//
// A failure is sticky for the rest of the Client's operation (see fail), unless perRequest is
// set: the proxy's requests are independent, and one failed request must not fail the next.
type bearerTransport struct {
	c          *Client
	base       http.RoundTripper
	perRequest bool
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	if !sameOrigin(req.URL, c.mcpURL) {
		return t.base.RoundTrip(req)
	}
	if !t.perRequest {
		c.mu.Lock()
		sticky := c.authErr
		c.mu.Unlock()
		if sticky != nil {
			return nil, &transportError{sticky}
		}
	}
	ctx := req.Context()
	tok, err := c.accessToken(ctx)
	if err != nil {
		return nil, &transportError{err}
	}
	resp, err := t.send(req, tok)
	if err != nil {
		return nil, err
	}
	recoverable := req.Method == http.MethodPost && (req.Body == nil || req.GetBody != nil)
	if !recoverable {
		return resp, nil
	}

	if resp.StatusCode == http.StatusUnauthorized {
		ch, _ := BearerChallenge(resp.Header.Values("WWW-Authenticate"))
		drain(resp)
		refreshed := false
		if tok != "" {
			if rec, err := c.refresh(ctx, tok); err == nil {
				tok, refreshed = rec.AccessToken, true
			} else {
				c.cfg.Logger.Debug("refresh after 401 failed", "err", err)
			}
		}
		if refreshed {
			if resp, err = t.send(req, tok); err != nil || resp.StatusCode != http.StatusUnauthorized {
				return t.finish(resp, err)
			}
			ch, _ = BearerChallenge(resp.Header.Values("WWW-Authenticate"))
			drain(resp)
		}
		rec, err := c.login(ctx, &ch, nil, staleMarker(tok), "The MCP server needs a new login")
		if err != nil {
			return nil, t.fail(err)
		}
		resp, err = t.send(req, rec.AccessToken)
		if err == nil && resp.StatusCode == http.StatusUnauthorized {
			// A token issued seconds ago is refused: say why rather than a bare 401.
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			detail := errorDetail(resp.Header.Values("WWW-Authenticate"), body)
			drain(resp)
			return nil, t.fail(c.freshTokenRefused(rec.AccessToken, rec.Issuer, rec.Resource, detail))
		}
		return t.finish(resp, err)
	}

	if resp.StatusCode == http.StatusForbidden {
		ch, ok := BearerChallenge(resp.Header.Values("WWW-Authenticate"))
		if ok && ch.Param("error") == "insufficient_scope" {
			drain(resp)
			rec, _ := c.cachedToken()
			var have []string
			if rec != nil {
				have = rec.Scopes
			}
			want := unionScopes(have, strings.Fields(ch.Param("scope")))
			rec, err := c.login(ctx, &ch, want, staleMarker(tok),
				fmt.Sprintf("The MCP server needs more scopes (%s); logging in again", strings.Join(want, " ")))
			if err != nil {
				return nil, t.fail(err)
			}
			resp, err = t.send(req, rec.AccessToken)
			return t.finish(resp, err)
		}
	}
	return t.finish(resp, nil)
}

// staleMarker names the token a failed request used; "" (no token) still needs a marker so
// that a login finished meanwhile by a concurrent request is reused.
func staleMarker(tok string) string {
	if tok == "" {
		return "\x00none"
	}
	return tok
}

// send clones req with a fresh body and the bearer token (if any) and sends it.
func (t *bearerTransport) send(req *http.Request, tok string) (*http.Response, error) {
	r := req.Clone(req.Context())
	if req.Body != nil && req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	r.Header.Del("Authorization")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, &transportError{fmt.Errorf("cannot reach the MCP server at %s: %w", t.c.cfg.MCPURL, err)}
	}
	return resp, nil
}

// fail records a login failure for the rest of the operation: mcp-go may retry a request
// (initialize after server/discover), which must not open the browser again.
func (t *bearerTransport) fail(err error) error {
	if t.perRequest {
		return &transportError{err}
	}
	t.c.mu.Lock()
	t.c.authErr = err
	t.c.mu.Unlock()
	return &transportError{err}
}

// finish turns authorization failures, and HTTP errors without a JSON-RPC body, into errors.
// 404 and 405 pass through: mcp-go reads them as session end and "no GET stream".
func (t *bearerTransport) finish(resp *http.Response, err error) (*http.Response, error) {
	if err != nil {
		return nil, err
	}
	s := resp.StatusCode
	if s < 400 || s == http.StatusNotFound || s == http.StatusMethodNotAllowed {
		return resp, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if s != http.StatusUnauthorized && s != http.StatusForbidden && isJSONRPC(body) {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	msg := fmt.Sprintf("the MCP server at %s answered %d %s", t.c.cfg.MCPURL, s, http.StatusText(s))
	if d := errorDetail(resp.Header.Values("WWW-Authenticate"), body); d != "" {
		msg += ": " + d
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		msg += " (retry after " + sanitize(ra) + ")"
	}
	return nil, t.fail(errors.New(msg))
}

func isJSONRPC(body []byte) bool {
	var v struct {
		JSONRPC string `json:"jsonrpc"`
	}
	return json.Unmarshal(body, &v) == nil && v.JSONRPC != ""
}

// errorDetail picks the most telling description: the challenge's error and
// error_description, else an error_description/message/error field of a JSON body, else a
// short plain-text body.
func errorDetail(wwwAuth []string, body []byte) string {
	if ch, ok := BearerChallenge(wwwAuth); ok && ch.Param("error") != "" {
		d := sanitize(ch.Param("error"))
		if desc := ch.Param("error_description"); desc != "" {
			d += ": " + sanitize(desc)
		}
		return d
	}
	var v map[string]any
	if json.Unmarshal(body, &v) == nil {
		for _, k := range []string{"error_description", "message", "error"} {
			if s, ok := v[k].(string); ok && s != "" {
				return sanitize(s)
			}
		}
		return ""
	}
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")) {
		return "" // an HTML error page says nothing useful on one line
	}
	return sanitize(string(body))
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// sameOrigin compares scheme, host and port (default ports made explicit).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// unionScopes returns a followed by the scopes of b not in a.
func unionScopes(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var _ http.RoundTripper = (*bearerTransport)(nil)
