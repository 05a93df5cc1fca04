package jwtverify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxMetadataBytes bounds an authorization server metadata document.
const maxMetadataBytes = 1 << 20

// metadataURLs returns the discovery URLs for issuer, in the order tried:
//
//  1. RFC 8414 §3.1, path-aware: https://host/.well-known/oauth-authorization-server{path}
//  2. OpenID Connect Discovery 1.0 §4: https://host{path}/.well-known/openid-configuration
//  3. RFC 8414 §5 applied to OIDC: https://host/.well-known/openid-configuration{path}
//
// Duplicates (3 equals 2 when the issuer has no path) are dropped.
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, errors.New("jwtverify: issuer must be an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.Contains(issuer, "#") {
		return nil, errors.New("jwtverify: issuer must not have a query or fragment")
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	urls := []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + path + "/.well-known/openid-configuration",
	}
	if path != "" {
		urls = append(urls, origin+"/.well-known/openid-configuration"+path)
	}
	return urls, nil
}

// DiscoverJWKSURI finds the issuer's jwks_uri from its metadata: path-aware
// RFC 8414 first, then OpenID Connect discovery (see the order in the package
// documentation). A document is accepted only if its "issuer" equals issuer
// exactly (RFC 8414 §3.3, OIDC Discovery §4.3) and it names an absolute
// http(s) jwks_uri; otherwise the next URL is tried. A nil client means
// http.DefaultClient; the caller bounds the time through ctx. Bodies over
// 1 MiB are rejected.
func DiscoverJWKSURI(ctx context.Context, c *http.Client, issuer string) (string, error) {
	urls, err := metadataURLs(issuer)
	if err != nil {
		return "", err
	}
	if c == nil {
		c = http.DefaultClient
	}
	var errs []error
	for _, mu := range urls {
		jwksURI, err := fetchMetadata(ctx, c, mu, issuer)
		if err == nil {
			return jwksURI, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", mu, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("jwtverify: discovery for issuer %q failed: %w", issuer, errors.Join(errs...))
}

func fetchMetadata(ctx context.Context, c *http.Client, metadataURL, issuer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metadataURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := readBounded(resp.Body, maxMetadataBytes)
	if err != nil {
		return "", err
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return "", errors.New("metadata is not a JSON object")
	}
	if md.Issuer != issuer {
		got := md.Issuer
		if len(got) > 200 {
			got = got[:200] + "..."
		}
		return "", fmt.Errorf("metadata issuer %q does not equal the configured issuer", got)
	}
	if md.JWKSURI == "" {
		return "", errors.New("metadata has no jwks_uri")
	}
	ju, err := url.Parse(md.JWKSURI)
	if err != nil || (ju.Scheme != "https" && ju.Scheme != "http") || ju.Host == "" {
		return "", errors.New("metadata jwks_uri is not an absolute http(s) URL")
	}
	return md.JWKSURI, nil
}

// errTooLarge is returned by readBounded when the body exceeds its limit.
var errTooLarge = errors.New("response body too large")

// readBounded reads at most limit bytes and fails if r has more.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
