package jwtverify

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for KeySetConfig.
const (
	DefaultFetchTimeout    = 5 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	DefaultRefreshInterval = 15 * time.Minute
	DefaultRefetchCooldown = 30 * time.Second
	// UnloadedRetryBackoff replaces RefetchCooldown (when shorter) while an
	// issuer's keys have never loaded: until then every token of the issuer
	// fails with ErrKeysUnavailable, so waiting the full cooldown after the
	// JWKS recovers would lock valid users out for no reason.
	UnloadedRetryBackoff = time.Second
	// DefaultEarlyRefetchBurst is KeySetConfig.EarlyRefetchBurst's default.
	DefaultEarlyRefetchBurst = 2
	// EarlyRefetchMinGap is the least time between an early refetch and
	// the fetch before it (or RefetchCooldown, when shorter), so a burst of
	// new kids cannot spend the whole budget at once.
	EarlyRefetchMinGap = time.Second
)

// KeySetConfig configures a RemoteKeySet. Zero values take the stated
// defaults.
type KeySetConfig struct {
	Issuer          string        // exact issuer; required
	JWKSURI         string        // if empty, discovered lazily (on first fetch) from RFC 8414 metadata, then OIDC discovery
	HTTPClient      *http.Client  // default: a client with FetchTimeout
	FetchTimeout    time.Duration // default 5s, per fetch (discovery + JWKS together)
	MaxBodyBytes    int64         // default 1 MiB; larger JWKS documents fail the fetch
	RefreshInterval time.Duration // default 15m; periodic background refresh once Start is called
	RefetchCooldown time.Duration // default 30s; min gap between fetches triggered by unknown kids
	// EarlyRefetchBurst sizes the early-refetch budget, default 2; negative
	// turns early refetch off. A kid lookup through CheckedKey (a token
	// whose claims already passed the Verifier) may fetch before the
	// cooldown is over when the budget holds a whole token: a bucket of
	// EarlyRefetchBurst tokens, refilled at one per RefetchCooldown, from
	// which every fetch started by a kid lookup takes one (a fetch through
	// Key even when the bucket is empty). Early fetches are at least
	// EarlyRefetchMinGap (1s) apart; fetches before any keys have loaded
	// follow UnloadedRetryBackoff and are not charged. A key rotation is
	// therefore picked up within a second or two unless the budget was
	// spent, and, once keys have loaded, a flood of tokens with
	// valid-looking claims and random kids causes at most
	// EarlyRefetchBurst + W/RefetchCooldown fetches in any window W: after
	// the burst, one per cooldown, as without early refetch. Key (a kid of
	// a token nobody checked) never fetches early.
	EarlyRefetchBurst int
	Now               func() time.Time
	Observer          Observer
	Logger            *slog.Logger // optional; nil = discard
}

// RemoteKeySet is a KeySource backed by one issuer's JWKS document, fetched
// over HTTP. It closes the gaps of go-oidc's RemoteKeySet:
//
//   - The first fetch is lazy (first Key call). A kid that is not cached
//     triggers a refetch at most once per RefetchCooldown, or earlier, within
//     a small budget, for a token the Verifier has checked (CheckedKey, see
//     KeySetConfig.EarlyRefetchBurst), so a key rotation inside the
//     cooldown does not lock users out for its rest; concurrent callers
//     share a single in-flight fetch (single-flight), and a caller that
//     arrives after a fetch completed sees its keys before any new fetch is
//     considered, so a rotation causes exactly one fetch and no false
//     rejections.
//   - Fetches are bounded: FetchTimeout per fetch (including discovery), body
//     at most MaxBodyBytes. A failed fetch keeps the previous keys, so known
//     kids keep verifying during a JWKS outage.
//   - Cached keys are read lock-free, and never wait for a fetch.
//   - Start runs a periodic refresh until its context ends or Close.
//
// The zero value is not usable; call NewRemoteKeySet.
type RemoteKeySet struct {
	cfg    KeySetConfig
	client *http.Client
	log    *slog.Logger

	keys    atomic.Pointer[keyMap]
	fetches atomic.Int64

	ctx    context.Context // canceled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	jwksURI     string     // configured or discovered
	lastAttempt time.Time  // start of the last fetch (zero: never)
	budget      float64    // early-refetch tokens at budgetAt
	budgetAt    time.Time  // zero: budget not yet initialised (full)
	inflight    *fetchCall // non-nil while a fetch runs
	started     bool
	closed      bool

	// afterMiss, if set (tests only), runs between the lock-free miss and
	// taking mu in Key.
	afterMiss func()
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// NewRemoteKeySet validates cfg, applies defaults and returns a key set. No
// network access happens until the first Key call or the first periodic
// refresh.
func NewRemoteKeySet(cfg KeySetConfig) (*RemoteKeySet, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("jwtverify: KeySetConfig.Issuer is required")
	}
	if _, err := metadataURLs(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.RefetchCooldown <= 0 {
		cfg.RefetchCooldown = DefaultRefetchCooldown
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EarlyRefetchBurst == 0 {
		cfg.EarlyRefetchBurst = DefaultEarlyRefetchBurst
	}
	ks := &RemoteKeySet{cfg: cfg, client: cfg.HTTPClient, log: cfg.Logger, jwksURI: cfg.JWKSURI}
	if ks.client == nil {
		ks.client = &http.Client{Timeout: cfg.FetchTimeout}
	}
	if ks.log == nil {
		ks.log = slog.New(slog.DiscardHandler)
	}
	ks.ctx, ks.cancel = context.WithCancel(context.Background())
	return ks, nil
}

// Issuer returns the issuer this key set serves.
func (ks *RemoteKeySet) Issuer() string { return ks.cfg.Issuer }

// Key implements KeySource. A cached key is returned at once. For an unknown
// kid it joins or starts a fetch (at most one per RefetchCooldown, or per
// UnloadedRetryBackoff while no keys have ever loaded) and waits for it, or
// until ctx is done. Errors wrap ErrInvalidToken with reason "unknown_kid" or
// "algorithm" (the kid's key does not fit alg), or are ErrKeysUnavailable
// (no keys could be loaded yet; not an invalid token).
func (ks *RemoteKeySet) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	return ks.key(ctx, kid, alg, false)
}

// CheckedKey implements CheckedKeySource: Key, except that an unknown kid
// may also fetch before the cooldown is over, within the early-refetch
// budget (see KeySetConfig.EarlyRefetchBurst). Verifier calls it only for
// tokens whose other checks passed; it trusts nothing else about them.
func (ks *RemoteKeySet) CheckedKey(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	return ks.key(ctx, kid, alg, true)
}

func (ks *RemoteKeySet) key(ctx context.Context, kid, alg string, checked bool) (crypto.PublicKey, error) {
	if key, found, ok := ks.keys.Load().lookup(kid, alg); ok {
		return key, nil
	} else if found && kid != "" {
		// The kid is known but its key is of another type: refetching
		// cannot make an RS256 token verify with an EC key.
		return nil, lookupError(kid, true)
	}

	if ks.afterMiss != nil {
		ks.afterMiss()
	}
	ks.mu.Lock()
	// A fetch may have finished since the lock-free read above.
	if key, _, ok := ks.keys.Load().lookup(kid, alg); ok {
		ks.mu.Unlock()
		return key, nil
	}
	call := ks.inflight
	if call == nil {
		if ks.closed {
			ks.mu.Unlock()
			return nil, ks.missError(kid, alg)
		}
		now := ks.cfg.Now()
		if !ks.mayFetchLocked(now, checked) {
			ks.mu.Unlock()
			return nil, ks.missError(kid, alg)
		}
		if ks.keys.Load() != nil { // loading the first keys is not a refetch
			ks.takeBudgetLocked(now)
		}
		call = ks.startFetchLocked(now)
	}
	ks.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ks.missError(kid, alg)
	}
	if key, _, ok := ks.keys.Load().lookup(kid, alg); ok {
		return key, nil
	}
	return nil, ks.missError(kid, alg)
}

// mayFetchLocked decides whether a kid lookup may start a fetch at now;
// ks.mu must be held. The rule of Key: the first fetch, then one per
// RefetchCooldown (UnloadedRetryBackoff while no keys ever loaded). A
// checked lookup may also fetch when the early-refetch budget holds a whole
// token and the last fetch is EarlyRefetchMinGap old.
func (ks *RemoteKeySet) mayFetchLocked(now time.Time, checked bool) bool {
	if ks.lastAttempt.IsZero() {
		return true
	}
	since := now.Sub(ks.lastAttempt)
	cooldown := ks.cfg.RefetchCooldown
	if ks.keys.Load() == nil && cooldown > UnloadedRetryBackoff {
		cooldown = UnloadedRetryBackoff
	}
	if since >= cooldown {
		return true
	}
	if !checked || ks.cfg.EarlyRefetchBurst < 0 {
		return false
	}
	return since >= min(EarlyRefetchMinGap, ks.cfg.RefetchCooldown) && ks.budgetLocked(now) >= 1
}

// budgetLocked returns the early-refetch budget at now (refilled at one
// token per RefetchCooldown, up to EarlyRefetchBurst) and records it;
// ks.mu must be held.
func (ks *RemoteKeySet) budgetLocked(now time.Time) float64 {
	burst := float64(max(ks.cfg.EarlyRefetchBurst, 0))
	if ks.budgetAt.IsZero() {
		ks.budget, ks.budgetAt = burst, now
		return ks.budget
	}
	if d := now.Sub(ks.budgetAt); d > 0 {
		ks.budget = min(burst, ks.budget+float64(d)/float64(ks.cfg.RefetchCooldown))
		ks.budgetAt = now
	}
	return ks.budget
}

// takeBudgetLocked charges a fetch started by a kid lookup to the
// early-refetch budget (never below zero); ks.mu must be held.
func (ks *RemoteKeySet) takeBudgetLocked(now time.Time) {
	ks.budget = max(ks.budgetLocked(now)-1, 0)
}

// missError explains a failed lookup: ErrKeysUnavailable if no key set was
// ever loaded, otherwise the lookup's own error.
func (ks *RemoteKeySet) missError(kid, alg string) error {
	m := ks.keys.Load()
	if m == nil {
		return ErrKeysUnavailable
	}
	_, found, _ := m.lookup(kid, alg)
	return lookupError(kid, found)
}

// startFetchLocked starts a fetch goroutine; ks.mu must be held.
func (ks *RemoteKeySet) startFetchLocked(now time.Time) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	ks.inflight = call
	ks.lastAttempt = now
	ks.wg.Add(1)
	go func() {
		defer ks.wg.Done()
		err := ks.fetch()
		ks.mu.Lock()
		ks.inflight = nil
		call.err = err
		ks.mu.Unlock()
		close(call.done)
	}()
	return call
}

// Refresh fetches the JWKS now (joining a fetch already in flight, ignoring
// the cooldown) and waits for it or ctx. It returns the fetch error; the
// previous keys are kept on failure.
func (ks *RemoteKeySet) Refresh(ctx context.Context) error {
	ks.mu.Lock()
	if ks.closed {
		ks.mu.Unlock()
		return errClosed
	}
	call := ks.inflight
	if call == nil {
		call = ks.startFetchLocked(ks.cfg.Now())
	}
	ks.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start runs the periodic refresh (every RefreshInterval) until ctx is done
// or Close is called. Calling it more than once, or after Close, does
// nothing.
func (ks *RemoteKeySet) Start(ctx context.Context) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.started || ks.closed {
		return
	}
	ks.started = true
	ks.wg.Add(1)
	go func() {
		defer ks.wg.Done()
		t := time.NewTicker(ks.cfg.RefreshInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ks.ctx.Done():
				return
			case <-t.C:
				// Errors are logged and observed in fetch.
				_ = ks.Refresh(ks.ctx)
			}
		}
	}()
}

// Close stops the refresh goroutine and any fetch in flight and waits for
// them; idempotent. Key keeps serving cached keys afterwards but never
// fetches again.
func (ks *RemoteKeySet) Close() {
	ks.mu.Lock()
	ks.closed = true
	ks.mu.Unlock()
	ks.cancel()
	ks.wg.Wait()
}

// Fetches returns the number of JWKS HTTP fetches made so far (discovery
// requests are not counted).
func (ks *RemoteKeySet) Fetches() int64 { return ks.fetches.Load() }

// fetch loads the JWKS (discovering its URL first if needed) and installs it.
func (ks *RemoteKeySet) fetch() (err error) {
	ctx, cancel := context.WithTimeout(ks.ctx, ks.cfg.FetchTimeout)
	defer cancel()
	start := time.Now()
	n := 0
	defer func() {
		d := time.Since(start)
		if ks.cfg.Observer != nil {
			ks.cfg.Observer.JWKSFetch(ks.cfg.Issuer, d, err)
		}
		switch {
		case err != nil && ks.keys.Load() == nil:
			// Nothing to verify with: every token of this issuer gets a 503.
			ks.log.Error("jwks fetch failed; no keys for this issuer yet",
				slog.String("issuer", ks.cfg.Issuer), slog.Duration("duration", d), slog.Any("error", err))
		case err != nil:
			// Tokens signed with the cached keys still verify.
			ks.log.Warn("jwks fetch failed; keeping cached keys",
				slog.String("issuer", ks.cfg.Issuer), slog.Duration("duration", d), slog.Any("error", err))
		default:
			ks.log.Debug("jwks fetched", slog.String("issuer", ks.cfg.Issuer),
				slog.Duration("duration", d), slog.Int("keys", n))
		}
	}()

	ks.mu.Lock()
	uri := ks.jwksURI
	ks.mu.Unlock()
	if uri == "" {
		uri, err = DiscoverJWKSURI(ctx, ks.client, ks.cfg.Issuer)
		if err != nil {
			return err
		}
		ks.mu.Lock()
		ks.jwksURI = uri
		ks.mu.Unlock()
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	ks.fetches.Add(1)
	resp, err := ks.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("jwks: %s answered status %d", uri, resp.StatusCode)
	}
	body, err := readBounded(resp.Body, ks.cfg.MaxBodyBytes)
	if err != nil {
		return fmt.Errorf("jwks: %s: %w", uri, err)
	}
	m, skipped, err := parseJWKS(body)
	if err != nil {
		return err
	}
	if skipped > 0 {
		ks.log.Debug("jwks keys skipped", slog.String("issuer", ks.cfg.Issuer), slog.Int("skipped", skipped))
	}
	n = len(m.all)
	ks.keys.Store(m)
	return nil
}
