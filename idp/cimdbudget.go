package idp

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// errCIMDBusy marks a metadata document that was not fetched because the outbound fetch budget
// (see fetchBudget) is spent. It is not errCIMD: the document may be fine, so the failure is
// never cached and the client is told to retry (503 temporarily_unavailable with Retry-After at
// the token, revocation and introspection endpoints, a 503 page at /authorize and /consent).
var errCIMDBusy = errors.New("idp: client metadata fetch budget exhausted")

// cimdBusyError is errCIMDBusy with the time after which a fetch may succeed.
type cimdBusyError struct {
	retryAfter time.Duration
	scope      string // "concurrent", "address", "host" or "global", for logs
}

func (e *cimdBusyError) Error() string {
	return fmt.Sprintf("%v (%s limit)", errCIMDBusy, e.scope)
}

func (e *cimdBusyError) Unwrap() error { return errCIMDBusy }

// retryAfterSeconds is the Retry-After value for err: its wait rounded up to whole seconds, at
// least 1; 5 when err carries no wait.
func retryAfterSeconds(err error) int {
	var be *cimdBusyError
	if errors.As(err, &be) && be.retryAfter > 0 {
		return retryAfterSecs(be.retryAfter)
	}
	return 5
}

// fetchBudget bounds outbound Client ID Metadata Document fetches, which unauthenticated requests
// can trigger by naming a new https client_id: at most maxConcurrent at a time, and token buckets
// (each holding limit tokens, refilled continuously at limit per window) per remote address, per
// document host and for the whole server. A fetch takes one token from each of its three buckets,
// all or none. A limit < 0 disables that bucket.
//
// Only fetches that take a token create bucket entries, so with the global bucket on the maps gain
// at most its size in keys per window; prune drops entries that have refilled completely.
type fetchBudget struct {
	now                      func() time.Time
	window                   time.Duration
	global, perHost, perAddr int

	sem chan struct{}

	mu      sync.Mutex
	globalB bucket
	hosts   map[string]*bucket
	addrs   map[string]*bucket
}

// bucket is a token bucket's state: tokens at time at.
type bucket struct {
	tokens float64
	at     time.Time
}

func newFetchBudget(o *Options) *fetchBudget {
	b := &fetchBudget{
		now: o.Now, window: o.CIMDFetchWindow,
		global: o.CIMDFetchLimit, perHost: o.CIMDFetchLimitPerHost, perAddr: o.CIMDFetchLimitPerAddress,
		hosts: map[string]*bucket{}, addrs: map[string]*bucket{},
	}
	if o.CIMDMaxConcurrentFetches > 0 {
		b.sem = make(chan struct{}, o.CIMDMaxConcurrentFetches)
	}
	b.globalB = bucket{tokens: float64(b.global), at: b.now()}
	return b
}

// level is the number of tokens bk holds at now for a bucket of size limit (nil: a new, full one).
func (b *fetchBudget) level(bk *bucket, limit int, now time.Time) float64 {
	if bk == nil {
		return float64(limit)
	}
	t := bk.tokens + float64(limit)*now.Sub(bk.at).Seconds()/b.window.Seconds()
	return math.Min(t, float64(limit))
}

// wait is how long a bucket of size limit holding level tokens needs to reach one token.
func (b *fetchBudget) wait(level float64, limit int) time.Duration {
	return time.Duration((1 - level) / float64(limit) * float64(b.window))
}

// acquire takes a fetch slot and one token from each bucket of addr and host. On success the
// caller must call release when the fetch is over; otherwise the error is a *cimdBusyError.
func (b *fetchBudget) acquire(addr, host string) error {
	if b.sem != nil {
		select {
		case b.sem <- struct{}{}:
		default:
			return &cimdBusyError{retryAfter: time.Second, scope: "concurrent"}
		}
	}
	if err := b.take(addr, host); err != nil {
		b.release()
		return err
	}
	return nil
}

func (b *fetchBudget) release() {
	if b.sem != nil {
		<-b.sem
	}
}

func (b *fetchBudget) take(addr, host string) error {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	type check struct {
		scope string
		limit int
		bk    *bucket
		m     map[string]*bucket
		key   string
	}
	checks := []check{
		{"address", b.perAddr, b.addrs[addr], b.addrs, addr},
		{"host", b.perHost, b.hosts[host], b.hosts, host},
		{"global", b.global, &b.globalB, nil, ""},
	}
	for _, c := range checks {
		if c.limit < 0 {
			continue
		}
		if l := b.level(c.bk, c.limit, now); l < 1 {
			return &cimdBusyError{retryAfter: b.wait(l, c.limit), scope: c.scope}
		}
	}
	for _, c := range checks {
		if c.limit < 0 {
			continue
		}
		l := b.level(c.bk, c.limit, now)
		if c.bk == nil {
			c.bk = &bucket{}
			c.m[c.key] = c.bk
		}
		c.bk.tokens, c.bk.at = l-1, now
	}
	return nil
}

// prune forgets per-host and per-address buckets that have refilled completely (a new bucket
// starts full, so forgetting them changes nothing).
func (b *fetchBudget) prune() {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range []struct {
		m     map[string]*bucket
		limit int
	}{{b.hosts, b.perHost}, {b.addrs, b.perAddr}} {
		for k, bk := range m.m {
			if b.level(bk, m.limit, now) >= float64(m.limit) {
				delete(m.m, k)
			}
		}
	}
}
