package mcpbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file is the GitHub REST client: request construction, pagination and error mapping.
// It knows nothing about MCP.

const (
	githubAPIVersion = "2022-11-28"
	maxErrorBody     = 64 << 10
)

// errKind classifies a failed GitHub call; each kind becomes its own tool error text.
type errKind int

const (
	errUnknown      errKind = iota
	errRateLimited          // 403/429 with X-RateLimit-Remaining: 0, or a secondary limit with Retry-After
	errUnauthorized         // 401
	errForbidden            // other 403
	errNotFound             // 404
	errValidation           // 422 and other 4xx
	errServer               // 5xx
	errTimeout              // no answer in time
	errNetwork              // connection failure
	errMalformed            // not the JSON we expect
	errTooLarge             // response above the size bound
)

// String returns a short fixed label for logs.
func (k errKind) String() string {
	return [...]string{"unknown", "rate_limited", "unauthorized", "forbidden", "not_found", "invalid_request",
		"server_error", "timeout", "network", "malformed_response", "too_large"}[k]
}

// githubError is a failed GitHub call. Its text is meant for the user (it becomes the tool error)
// and never contains the token: it is built only from the status, GitHub's "message" field and
// rate-limit headers, and redact removes the token should GitHub ever echo it.
type githubError struct {
	kind       errKind
	status     int
	message    string // GitHub's "message", if any
	reset      time.Time
	retryAfter time.Duration
	timeout    time.Duration
	cause      error
	now        time.Time
}

func (e *githubError) Error() string {
	msg := ""
	if e.message != "" {
		msg = ": " + e.message
	}
	switch e.kind {
	case errRateLimited:
		if !e.reset.IsZero() {
			return fmt.Sprintf("GitHub API rate limit exhausted for this token; it resets at %s (in %s)",
				e.reset.UTC().Format(time.RFC3339), max(e.reset.Sub(e.now), 0).Round(time.Second))
		}
		if e.retryAfter > 0 {
			return fmt.Sprintf("GitHub secondary rate limit hit; retry after %s", e.retryAfter)
		}
		return "GitHub API rate limit exhausted for this token; retry later"
	case errUnauthorized:
		return "GitHub rejected the token (HTTP 401" + msg + "): it is invalid, expired or revoked; link your GitHub account again"
	case errForbidden:
		return "GitHub refused access (HTTP 403" + msg + "): the token lacks the permission for this resource"
	case errNotFound:
		return "not found on GitHub (HTTP 404" + msg + "): it does not exist or this token cannot see it"
	case errValidation:
		return fmt.Sprintf("GitHub rejected the request (HTTP %d%s)", e.status, msg)
	case errServer:
		return fmt.Sprintf("GitHub had a server error (HTTP %d); try again later", e.status)
	case errTimeout:
		if e.timeout > 0 {
			return fmt.Sprintf("GitHub did not answer within %s; try again later", e.timeout)
		}
		return "GitHub did not answer in time; try again later"
	case errNetwork:
		return fmt.Sprintf("cannot reach the GitHub API: %v", e.cause)
	case errMalformed:
		return fmt.Sprintf("GitHub sent a malformed response (HTTP %d): %v", e.status, e.cause)
	case errTooLarge:
		return "GitHub's response is larger than the server's limit"
	}
	return fmt.Sprintf("GitHub answered HTTP %d%s", e.status, msg)
}

func (e *githubError) Unwrap() error { return e.cause }

// pageInfo is what a list response's Link header says about neighbouring pages (0: none).
type pageInfo struct {
	next, last int
	nextURL    string
}

// githubClient calls the GitHub REST API. Safe for concurrent use; the token is per call.
type githubClient struct {
	base      *url.URL // no trailing slash in Path
	http      *http.Client
	userAgent string
	timeout   time.Duration // per call, covering all pages
	maxBody   int64
	maxPages  int
	now       func() time.Time
}

// endpoint joins escaped path segments to the base URL's path.
func endpoint(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// filePath escapes a slash-separated repository path segment by segment, keeping the slashes.
func filePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// get fetches one resource (path already escaped, starting with "/") and decodes the JSON into out.
func (c *githubClient) get(ctx context.Context, token, path string, query url.Values, out any) (pageInfo, error) {
	u := c.base.Scheme + "://" + c.base.Host + c.base.EscapedPath() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.do(ctx, token, u, out)
}

// getPages fetches up to pages pages (bounded by maxPages) following the Link header's rel="next",
// calling add for each page's body. It stops early when there is no next page.
func (c *githubClient) getPages(ctx context.Context, token, path string, query url.Values, pages int,
	add func(raw json.RawMessage) error) (pageInfo, error) {
	pages = min(max(pages, 1), c.maxPages)
	u := c.base.Scheme + "://" + c.base.Host + c.base.EscapedPath() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var info pageInfo
	for i := 0; i < pages; i++ {
		var raw json.RawMessage
		var err error
		info, err = c.do(ctx, token, u, &raw)
		if err != nil {
			return info, err
		}
		if err := add(raw); err != nil {
			return info, &githubError{kind: errMalformed, status: http.StatusOK, cause: err}
		}
		if info.nextURL == "" {
			break
		}
		u = info.nextURL
	}
	return info, nil
}

func (c *githubClient) do(ctx context.Context, token, rawURL string, out any) (pageInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return pageInfo{}, &githubError{kind: errUnknown, cause: errors.New("cannot build the request")}
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", githubAPIVersion)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return pageInfo{}, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return pageInfo{}, c.statusError(resp, body, token)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return pageInfo{}, c.transportError(ctx, err)
	}
	if int64(len(body)) > c.maxBody {
		return pageInfo{}, &githubError{kind: errTooLarge, status: resp.StatusCode}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return pageInfo{}, &githubError{kind: errMalformed, status: resp.StatusCode, cause: errors.New("invalid JSON")}
	}
	return c.parseLink(resp.Header.Get("Link")), nil
}

func (c *githubClient) transportError(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &githubError{kind: errTimeout, timeout: c.effectiveTimeout(), cause: err}
	}
	if ctx.Err() != nil {
		return &githubError{kind: errNetwork, cause: errors.New("the request was cancelled")}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the URL: it adds nothing for the user
	}
	return &githubError{kind: errNetwork, cause: err}
}

func (c *githubClient) effectiveTimeout() time.Duration {
	if c.http.Timeout > 0 && c.http.Timeout < c.timeout {
		return c.http.Timeout
	}
	return c.timeout
}

func (c *githubClient) statusError(resp *http.Response, body []byte, token string) error {
	var m struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &m)
	msg := redact(truncate(m.Message, 200), token)
	e := &githubError{status: resp.StatusCode, message: msg, now: c.now()}
	switch st := resp.StatusCode; {
	case (st == http.StatusForbidden || st == http.StatusTooManyRequests) && resp.Header.Get("X-RateLimit-Remaining") == "0":
		e.kind = errRateLimited
		if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			e.reset = time.Unix(s, 0)
		}
	case (st == http.StatusForbidden || st == http.StatusTooManyRequests) && resp.Header.Get("Retry-After") != "":
		e.kind = errRateLimited
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.retryAfter = time.Duration(s) * time.Second
		}
	case st == http.StatusTooManyRequests:
		e.kind = errRateLimited
	case st == http.StatusUnauthorized:
		e.kind = errUnauthorized
	case st == http.StatusForbidden:
		e.kind = errForbidden
	case st == http.StatusNotFound:
		e.kind = errNotFound
	case st >= 500:
		e.kind = errServer
	case st >= 400:
		e.kind = errValidation
	case st >= 300:
		e.message = "a redirect outside the API was not followed"
	}
	return e
}

// parseLink reads rel="next" and rel="last" from a Link header. A next URL is followed only if it
// points at the configured API origin and path: following it elsewhere would send the token there.
func (c *githubClient) parseLink(h string) pageInfo {
	var info pageInfo
	for part := range strings.SplitSeq(h, ",") {
		segs := strings.Split(part, ";")
		raw := strings.TrimSpace(segs[0])
		if len(raw) < 2 || raw[0] != '<' || raw[len(raw)-1] != '>' {
			continue
		}
		raw = raw[1 : len(raw)-1]
		var rel string
		for _, p := range segs[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(k, "rel") {
				rel = strings.Trim(v, `"`)
			}
		}
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		page, _ := strconv.Atoi(u.Query().Get("page"))
		switch rel {
		case "next":
			info.next = page
			if c.sameAPI(u) {
				info.nextURL = u.String()
			}
		case "last":
			info.last = page
		}
	}
	return info
}

func (c *githubClient) sameAPI(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.base.Scheme) && strings.EqualFold(u.Host, c.base.Host) &&
		strings.HasPrefix(u.EscapedPath(), c.base.EscapedPath()+"/") && u.User == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// redact removes the token from text that came from elsewhere (defence in depth).
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[redacted]")
}
