package idp

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// errCIMD marks a Client ID Metadata Document that could not be fetched or is invalid.
var errCIMD = errors.New("idp: client metadata document unavailable or invalid")

// cimdFetcher fetches Client ID Metadata Documents (client_id is an https URL) with SSRF
// protection: the dialer refuses private, loopback, link-local and other special addresses at
// connect time (after DNS resolution, so rebinding cannot slip through), no proxies, no redirects,
// a size and a time limit, only the default https port, a cache of valid documents, a negative
// cache of failures, and a budget on fetches (fetchBudget: concurrency, per remote address, per
// host, global) checked before any fetch. The shared fetch runs on a context owned by the server (bounded by
// CIMDTimeout), not on the first caller's, so one caller giving up does not fail the others.
type cimdFetcher struct {
	opts     *Options
	ctx      context.Context // the server's: cancelled by Close
	client   *http.Client
	cache    *expirable.LRU[string, *client]
	failures *expirable.LRU[string, error]
	flight   flightGroup
	budget   *fetchBudget
}

func newCIMDFetcher(ctx context.Context, opts *Options) *cimdFetcher {
	dialer := &net.Dialer{Timeout: opts.CIMDTimeout}
	if !opts.AllowPrivateCIMD {
		dialer.Control = refusePrivateAddress
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: opts.CIMDRootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   opts.CIMDTimeout,
		ResponseHeaderTimeout: opts.CIMDTimeout,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
	}
	return &cimdFetcher{
		opts: opts,
		ctx:  ctx,
		client: &http.Client{
			Transport: tr,
			Timeout:   opts.CIMDTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("redirects are not followed")
			},
		},
		cache:    expirable.NewLRU[string, *client](1000, nil, opts.CIMDCacheTTL),
		failures: expirable.NewLRU[string, error](1000, nil, opts.CIMDFailureCacheTTL),
		budget:   newFetchBudget(opts),
	}
}

var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// refusePrivateAddress is a net.Dialer Control func refusing non-public destinations.
func refusePrivateAddress(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("idp: refusing non-IP dial address")
	}
	if !publicAddr(ip) {
		return fmt.Errorf("idp: refusing to fetch client metadata from non-public address %s", ip)
	}
	return nil
}

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsValid() {
		return false
	}
	for _, p := range specialPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// validCIMDURL checks the client_id URL shape: https, a host, a path, no userinfo, fragment,
// dot segments or query, and no port other than 443 unless anyPort (AllowPrivateCIMD, for
// development and tests), so a client_id cannot aim the server at arbitrary services.
func validCIMDURL(id string, anyPort bool) bool {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(id, "#") {
		return false
	}
	if p := u.Port(); p != "" && p != "443" && !anyPort {
		return false
	}
	if u.Path == "" || u.Path == "/" || u.RawQuery != "" {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// fetch resolves a metadata document client_id for a request from remote (its address, for the
// per-address fetch budget). ctx is the caller's and only bounds its wait; the shared fetch itself
// runs on the fetcher's own context, bounded by CIMDTimeout. Errors: errUnknownClient (not a
// valid client_id URL), errCIMDBusy (over the fetch budget, nothing fetched), else errCIMD.
func (f *cimdFetcher) fetch(ctx context.Context, id, remote string) (*client, error) {
	if !validCIMDURL(id, f.opts.AllowPrivateCIMD) {
		return nil, errUnknownClient
	}
	if c, ok := f.cache.Get(id); ok {
		return c, nil
	}
	// A recent failure is answered from the negative cache: unauthenticated /authorize and /token
	// requests naming a bad document must not each cause an outbound fetch.
	if err, ok := f.failures.Get(id); ok {
		return nil, err
	}
	v, err := f.flight.DoContext(ctx, id, func() (any, error) {
		// Only the caller that leads a fetch pays for it; callers joining a fetch in flight and
		// answers from the caches are free.
		u, _ := url.Parse(id) // validCIMDURL parsed it
		if err := f.budget.acquire(remote, strings.ToLower(u.Hostname())); err != nil {
			f.opts.Logger.Debug("client metadata fetch refused", "client_id", id, "remote", remote, "reason", err)
			return nil, err // not cached: the document may be fine
		}
		defer f.budget.release()
		c, err := f.fetchUncached(f.ctx, id)
		if err != nil {
			if f.ctx.Err() == nil {
				f.failures.Add(id, err)
			}
			return nil, err
		}
		f.cache.Add(id, c)
		return c, nil
	})
	if err != nil {
		if !errors.Is(err, errCIMD) && !errors.Is(err, errCIMDBusy) {
			err = fmt.Errorf("%w: %v", errCIMD, err) // the caller gave up waiting
		}
		return nil, err
	}
	return v.(*client), nil
}

func (f *cimdFetcher) fetchUncached(ctx context.Context, id string) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.CIMDTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCIMD, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		f.opts.Logger.Info("client metadata fetch failed", "client_id", id, "error", err)
		return nil, fmt.Errorf("%w: fetch failed", errCIMD)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: status %d", errCIMD, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.CIMDMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read failed", errCIMD)
	}
	if int64(len(body)) > f.opts.CIMDMaxBytes {
		return nil, fmt.Errorf("%w: document too large", errCIMD)
	}
	var doc struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		clientMetadata
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: not JSON", errCIMD)
	}
	if doc.ClientID != id {
		return nil, fmt.Errorf("%w: client_id in the document differs from its URL", errCIMD)
	}
	if doc.ClientSecret != "" {
		return nil, fmt.Errorf("%w: document must not contain a client_secret", errCIMD)
	}
	md := doc.clientMetadata
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = "none"
	}
	if md.TokenEndpointAuthMethod != "none" {
		return nil, fmt.Errorf("%w: only token_endpoint_auth_method none is supported", errCIMD)
	}
	if len(md.GrantTypes) == 0 {
		md.GrantTypes = []string{grantAuthorizationCode, grantRefreshToken}
	}
	// Reuse registration validation (redirect URIs, grant types, URLs).
	if oerr := validateClientMetadata(f.opts, &md); oerr != nil {
		return nil, fmt.Errorf("%w: %s", errCIMD, oerr.Description)
	}
	return &client{ID: id, Meta: md, cimd: true}, nil
}
