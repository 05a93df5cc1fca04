package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/sync/singleflight"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
	"github.com/mcpgate/mcpgate/internal/expirylru"
)

// Token is an upstream credential for one user, such as a GitHub access
// token. Its String and GoString methods never reveal Value.
type Token struct {
	// Value is the credential itself. Never log it.
	Value string
	// Expiry is when Value stops working; zero if unknown or never. The
	// gateway never serves a cached token past Expiry.
	Expiry time.Time
}

// String implements fmt.Stringer without revealing the token.
func (t Token) String() string { return "caddymodule.Token{redacted}" }

// GoString implements fmt.GoStringer without revealing the token.
func (t Token) GoString() string { return t.String() }

// TokenSource yields the upstream token for a verified user. Implementations
// are Caddy modules in the namespace http.mcp_auth.token_sources (for example
// token_exchange and static) and must be safe for concurrent use. The gateway
// caches results per user (issuer and subject) and collapses concurrent
// misses for one user into one call, so implementations need no cache.
//
// Errors: ErrNoUpstreamToken when the user has no upstream token (the user
// must link an account); ErrSubjectTokenRejected when the source refuses the
// user's own access token (revoked, say); ErrSourceUnavailable (wrapped, with
// a cause free of secrets) for anything the user cannot fix: the source is
// down, slow, misconfigured or answered nonsense. Any other error is treated
// like ErrSourceUnavailable.
type TokenSource interface {
	UpstreamToken(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (Token, error)
}

// issuerBinder is implemented by token sources that must know the handler's
// trusted issuers (token_exchange sends tokens of one issuer only). The
// handler calls bindIssuers in Provision, after loading the source; an error
// fails the configuration.
type issuerBinder interface {
	bindIssuers(issuers []string) error
}

var (
	// ErrNoUpstreamToken means the user has no upstream token at the source:
	// the user must link the upstream account first.
	ErrNoUpstreamToken = errors.New("mcp_auth: no upstream token for this user")
	// ErrSourceUnavailable means the token source could not answer; the
	// gateway responds 503 with Retry-After.
	ErrSourceUnavailable = errors.New("mcp_auth: upstream token source unavailable")
	// ErrSubjectTokenRejected means the source refused the user's access
	// token although the gateway accepted it (revoked at the IdP, for
	// example); the gateway responds 401 invalid_token so the client signs in
	// again.
	ErrSubjectTokenRejected = errors.New("mcp_auth: token source rejected the subject token")
)

// upstreamCache caches upstream tokens per user and collapses concurrent
// misses for one user into a single source call. Its cache is an
// internal/expirylru LRU, shared in design with jwtverify's verified-token
// cache: entries carry their own deadline (min(now+ttl, token expiry-skew)),
// checked with the replaceable clock on every hit; hits do not wait for each
// other; there is no background goroutine to leak on config reloads.
type upstreamCache struct {
	source TokenSource
	lru    *expirylru.Cache[upstreamKey, upstreamEntry] // nil when caching is off
	ttl    time.Duration
	// headerPrefix is put before the token in the header value the
	// gateway injects ("Bearer " for upstream_header Authorization, else
	// ""). The cache keeps the whole value, so a hit builds no string.
	headerPrefix string
	group        singleflight.Group
	now          func() time.Time
	timeout      time.Duration // bound for one shared source call
	// expirySkew: tokens are dropped this long before their expiry so a
	// request never reaches the backend with a token about to die.
	expirySkew time.Duration
	observe    func(hit bool)
	latency    func(d time.Duration, err error)
	// onPanic, if set, reports a panic of the source (recovered into
	// ErrSourceUnavailable). It gets the panic value's type and the stack,
	// never the value itself, which could hold a token.
	onPanic func(valueType string, stack []byte)
}

// upstreamKey is the per-user cache key: issuer and subject, so two issuers'
// identical subjects never share a token.
//
// The cache is keyed by the pair itself, so a hit allocates nothing (the
// profile of the cached path showed the concatenated key as one of its
// allocations); the concatenation is only built on a miss, for the
// singleflight group.
type upstreamKey struct{ iss, sub string }

func (k upstreamKey) String() string { return k.iss + "\x00" + k.sub }

// upstreamEntry is a cached upstream token with the header value the
// gateway injects for it.
type upstreamEntry struct {
	tok    Token
	header string // headerPrefix + tok.Value
}

// Get returns the user's upstream token from the cache or the source. If ctx
// ends while waiting it returns ctx.Err() (not ErrSourceUnavailable).
func (u *upstreamCache) Get(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (Token, error) {
	e, err := u.get(ctx, claims, subjectToken)
	return e.tok, err
}

// HeaderValue is Get, returning the value of the header to inject instead:
// headerPrefix and the token, built once per cached token rather than on
// every request.
func (u *upstreamCache) HeaderValue(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (string, error) {
	e, err := u.get(ctx, claims, subjectToken)
	return e.header, err
}

func (u *upstreamCache) get(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (upstreamEntry, error) {
	if claims.Subject == "" {
		// No user to key on (jwtverify rejects such tokens; this guards
		// other callers): never cache or share, so two subject-less
		// tokens can never get each other's upstream token.
		tok, err := u.fetchUnshared(ctx, claims, subjectToken)
		if err != nil {
			return upstreamEntry{}, err
		}
		return u.entry(tok), nil
	}
	key := upstreamKey{claims.Issuer, claims.Subject}
	if e, ok := u.cached(key); ok {
		u.hit(true)
		return e, nil
	}
	u.hit(false)
	ch := u.group.DoChan(key.String(), func() (any, error) {
		// A call for this user that finished between our cache miss and
		// DoChan has filled the cache: use it rather than asking the source
		// again.
		if e, ok := u.cached(key); ok {
			return e, nil
		}
		// The shared call outlives any one waiter's cancellation but not
		// the timeout.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.timeout)
		defer cancel()
		tok, err := u.call(cctx, claims, subjectToken)
		if err != nil {
			return upstreamEntry{}, err
		}
		if tok.Value == "" {
			return upstreamEntry{}, ErrNoUpstreamToken
		}
		if !httpguts.ValidHeaderFieldValue(tok.Value) {
			return upstreamEntry{}, fmt.Errorf("%w: the source returned a token that is not a valid header value", ErrSourceUnavailable)
		}
		e := u.entry(tok)
		if u.lru != nil {
			now := u.now()
			deadline := now.Add(u.ttl)
			if !tok.Expiry.IsZero() {
				if d := tok.Expiry.Add(-u.expirySkew); d.Before(deadline) {
					deadline = d
				}
			}
			if now.Before(deadline) {
				u.lru.Add(key, e, deadline)
			}
		}
		return e, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return upstreamEntry{}, res.Err
		}
		return res.Val.(upstreamEntry), nil
	case <-ctx.Done():
		// The caller left (client disconnect, server timeout): its own
		// event, not a source fault. The shared call goes on for others.
		return upstreamEntry{}, ctx.Err()
	}
}

// entry pairs tok with the header value to inject.
func (u *upstreamCache) entry(tok Token) upstreamEntry {
	return upstreamEntry{tok: tok, header: u.headerPrefix + tok.Value}
}

// call asks the source, timing the call, and turns a panic into
// ErrSourceUnavailable. Without the recover a buggy source would crash the
// whole server: singleflight.DoChan re-panics in a goroutine of its own,
// where no HTTP recovery can catch it.
func (u *upstreamCache) call(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (tok Token, err error) {
	start := u.now()
	defer func() {
		if v := recover(); v != nil {
			tok, err = Token{}, fmt.Errorf("%w: the token source panicked", ErrSourceUnavailable)
			if u.onPanic != nil {
				u.onPanic(fmt.Sprintf("%T", v), debug.Stack())
			}
		}
		if u.latency != nil {
			u.latency(u.now().Sub(start), err)
		}
	}()
	return u.source.UpstreamToken(ctx, claims, subjectToken)
}

// fetchUnshared asks the source once for this request alone: no cache, no
// singleflight.
func (u *upstreamCache) fetchUnshared(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (Token, error) {
	cctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	tok, err := u.call(cctx, claims, subjectToken)
	switch {
	case err != nil:
		return Token{}, err
	case tok.Value == "":
		return Token{}, ErrNoUpstreamToken
	case !httpguts.ValidHeaderFieldValue(tok.Value):
		return Token{}, fmt.Errorf("%w: the source returned a token that is not a valid header value", ErrSourceUnavailable)
	}
	return tok, nil
}

// cached returns the user's unexpired cached token, dropping an expired one.
func (u *upstreamCache) cached(key upstreamKey) (upstreamEntry, bool) {
	if u.lru == nil {
		return upstreamEntry{}, false
	}
	return u.lru.Get(key, u.now())
}

func (u *upstreamCache) hit(h bool) {
	if u.observe != nil {
		u.observe(h)
	}
}

// newUpstreamCache builds the cache; size <= 0 disables caching (every request
// asks the source, still collapsed per user). ttl bounds how long a token
// without expiry is kept.
func newUpstreamCache(src TokenSource, size int, ttl, timeout time.Duration, now func() time.Time) *upstreamCache {
	u := &upstreamCache{source: src, now: now, ttl: ttl, timeout: timeout, expirySkew: 10 * time.Second}
	if size > 0 && ttl > 0 {
		u.lru, _ = expirylru.New[upstreamKey, upstreamEntry](size) // error only for size <= 0
	}
	return u
}
