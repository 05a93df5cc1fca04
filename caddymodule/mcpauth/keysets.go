package mcpauth

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// keySets holds one jwtverify.RemoteKeySet per issuer configuration, shared by
// every mcp_auth handler and across config reloads: a reload provisions the
// new handlers (reference count 2) before cleaning up the old ones (back to
// 1), so the cached keys survive and no JWKS is refetched.
var keySets = caddy.NewUsagePool()

// keySetEntry is a pooled key set. It owns the context that runs the key
// set's periodic refresh; Destruct (last user gone) stops it.
//
// The key set outlives any one config, but its metrics and logs belong to a
// live config: every config that uses it registers as a user (Provision) and
// unregisters (Cleanup), and the key set reports to the most recently
// provisioned user still registered. So after a reload the new config gets
// them, and after a failed reload (new config provisioned, then cleaned up)
// the old one gets them back instead of a discarded registry.
type keySetEntry struct {
	ks       *jwtverify.RemoteKeySet
	observer *observerSwitch
	log      *slogSwitch
	cancel   context.CancelFunc
	client   *http.Client // set when tls_trust_pool built a transport of its own

	mu    sync.Mutex
	users []*keySetUser // registration order; the last one receives reports
	cur   atomic.Pointer[keySetUser]
}

// now is the key set's clock: the current user's (the handler's replaceable
// clock), else time.Now.
func (e *keySetEntry) now() time.Time {
	if u := e.cur.Load(); u != nil && u.now != nil {
		return u.now()
	}
	return time.Now()
}

// keySetUser is one config's registration with pooled key sets: where their
// metrics and logs go while it is the latest registered user.
type keySetUser struct {
	m   *metrics
	log slog.Handler
	now func() time.Time // nil: time.Now
}

func newKeySetUser(logger *zap.Logger, m *metrics, now func() time.Time) *keySetUser {
	// The core alone would lose the logger's name (http.handlers.mcp_auth).
	return &keySetUser{m: m, log: zapslog.NewHandler(logger.Core(), zapslog.WithName(logger.Name())), now: now}
}

// addUser registers u and makes it the receiver of reports.
func (e *keySetEntry) addUser(u *keySetUser) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users = append(e.users, u)
	e.switchLocked()
}

// removeUser unregisters u; reports go back to the latest remaining user.
func (e *keySetEntry) removeUser(u *keySetUser) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.users) - 1; i >= 0; i-- {
		if e.users[i] == u {
			e.users = append(e.users[:i], e.users[i+1:]...)
			break
		}
	}
	e.switchLocked()
}

func (e *keySetEntry) switchLocked() {
	if len(e.users) == 0 {
		e.cur.Store(nil)
		e.observer.cur.Store(nil)
		e.log.set(nil)
		return
	}
	u := e.users[len(e.users)-1]
	e.cur.Store(u)
	e.observer.cur.Store(u.m)
	e.log.set(u.log)
}

// Destruct implements caddy.Destructor: stop the refresh goroutine and wait.
func (e *keySetEntry) Destruct() error {
	e.cancel()
	e.ks.Close()
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	return nil
}

// keySetParams is everything that shapes a RemoteKeySet; it is the pool key,
// so a config change that alters any of it builds a fresh key set.
type keySetParams struct {
	Issuer          string
	JWKSURI         string
	RefreshInterval time.Duration
	RefetchCooldown time.Duration
	FetchTimeout    time.Duration
	TrustPool       string // trustPoolID of the tls_trust_pool config; "" for the system roots

	roots *x509.CertPool // the pool TrustPool names; not part of the key
}

func (p keySetParams) poolKey() string {
	return fmt.Sprintf("mcp_auth.keyset|%s|%s|%d|%d|%d|%s", p.Issuer, p.JWKSURI, p.RefreshInterval, p.RefetchCooldown, p.FetchTimeout, p.TrustPool)
}

// loadKeySet returns the pooled key set for p, creating and starting it on
// first use, and registers u as its user. The caller must call releaseKeySet
// with the same arguments in Cleanup.
func loadKeySet(p keySetParams, u *keySetUser) (*keySetEntry, string, error) {
	key := p.poolKey()
	val, _, err := keySets.LoadOrNew(key, func() (caddy.Destructor, error) {
		e := &keySetEntry{observer: &observerSwitch{}, log: newSlogSwitch()}
		var hc *http.Client // nil: jwtverify's default client, with the system roots
		if p.roots != nil {
			hc = &http.Client{Transport: outboundTransport(p.roots)}
		}
		ks, err := jwtverify.NewRemoteKeySet(jwtverify.KeySetConfig{
			HTTPClient:      hc,
			Issuer:          p.Issuer,
			JWKSURI:         p.JWKSURI,
			FetchTimeout:    p.FetchTimeout,
			RefreshInterval: p.RefreshInterval,
			RefetchCooldown: p.RefetchCooldown,
			Observer:        e.observer,
			Logger:          slog.New(e.log),
			Now:             e.now,
		})
		if err != nil {
			return nil, err
		}
		// The entry, not any one config, owns the refresh goroutine.
		ctx, cancel := context.WithCancel(context.Background())
		ks.Start(ctx)
		e.ks, e.cancel, e.client = ks, cancel, hc
		return e, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("key set for issuer %q: %w", p.Issuer, err)
	}
	e := val.(*keySetEntry)
	e.addUser(u)
	return e, key, nil
}

// releaseKeySet unregisters u from e and drops one reference to key; the
// last reference destroys the key set.
func releaseKeySet(key string, e *keySetEntry, u *keySetUser) error {
	e.removeUser(u)
	_, err := keySets.Delete(key)
	return err
}

// slogSwitch is the slog.Handler given to a pooled RemoteKeySet: it forwards
// to the current user's handler (nothing while there is none). Attributes
// and groups added with WithAttrs/WithGroup are applied to whichever handler
// is current when a record is handled.
type slogSwitch struct {
	cur *atomic.Pointer[slogBox]
	ops []func(slog.Handler) slog.Handler
}

type slogBox struct{ h slog.Handler }

func newSlogSwitch() *slogSwitch { return &slogSwitch{cur: new(atomic.Pointer[slogBox])} }

func (s *slogSwitch) set(h slog.Handler) {
	if h == nil {
		s.cur.Store(nil)
		return
	}
	s.cur.Store(&slogBox{h})
}

func (s *slogSwitch) inner() slog.Handler {
	b := s.cur.Load()
	if b == nil {
		return slog.DiscardHandler
	}
	h := b.h
	for _, op := range s.ops {
		h = op(h)
	}
	return h
}

// Enabled implements slog.Handler.
func (s *slogSwitch) Enabled(ctx context.Context, l slog.Level) bool {
	return s.inner().Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (s *slogSwitch) Handle(ctx context.Context, r slog.Record) error {
	return s.inner().Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (s *slogSwitch) WithAttrs(as []slog.Attr) slog.Handler {
	return &slogSwitch{cur: s.cur, ops: append(slices.Clip(s.ops), func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })}
}

// WithGroup implements slog.Handler.
func (s *slogSwitch) WithGroup(name string) slog.Handler {
	return &slogSwitch{cur: s.cur, ops: append(slices.Clip(s.ops), func(h slog.Handler) slog.Handler { return h.WithGroup(name) })}
}

// Interface guards
var (
	_ caddy.Destructor = (*keySetEntry)(nil)
	_ slog.Handler     = (*slogSwitch)(nil)
)
