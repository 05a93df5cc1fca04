package mcpauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// outbound is the HTTP side that the token sources which call an authorization server or an
// identity provider's API share: a client that never follows redirects (a secret or a user's
// token goes only to the configured URL), bounded response bodies, and errors that name the
// status or transport failure but never a request's credentials.
type outbound struct {
	client *http.Client
	now    func() time.Time
}

// newOutboundClient returns the HTTP client of a token source: the given transport, an overall
// timeout, and no redirects.
func newOutboundClient(rt http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     rt,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// response is what do read: the status, the headers and at most maxTokenResponseBytes of body.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and reads the bounded response. what names the endpoint in errors ("token
// endpoint", "Management API"); every error wraps ErrSourceUnavailable.
func (o *outbound) do(req *http.Request, what string) (response, error) {
	start := o.now()
	resp, err := o.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%w: %s unreachable after %s: %s", ErrSourceUnavailable, what,
			o.now().Sub(start).Round(time.Millisecond), transportReason(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes+1))
	if err != nil {
		return response{}, fmt.Errorf("%w: reading the %s response failed", ErrSourceUnavailable, what)
	}
	if len(body) > maxTokenResponseBytes {
		return response{}, fmt.Errorf("%w: %s response larger than %d bytes", ErrSourceUnavailable, what, maxTokenResponseBytes)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// newFormRequest returns a POST of form to endpoint that asks for JSON.
func newFormRequest(ctx context.Context, endpoint string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: building the request failed", ErrSourceUnavailable)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// oauthErrorCode returns the RFC 6749 §5.2 error code of body, made safe for logs.
func oauthErrorCode(body []byte) string {
	var er errorResponse
	_ = json.Unmarshal(body, &er)
	return safeCode(er.Error)
}
