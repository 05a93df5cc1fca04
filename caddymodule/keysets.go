package caddymodule

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
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
type keySetEntry struct {
	ks       *jwtverify.RemoteKeySet
	observer *observerSwitch
	cancel   context.CancelFunc
	client   *http.Client // set when tls_trust_pool built a transport of its own
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
// first use. The caller must release the key with keySets.Delete in Cleanup.
func loadKeySet(p keySetParams, logger *zap.Logger, m *metrics) (*keySetEntry, string, error) {
	key := p.poolKey()
	val, _, err := keySets.LoadOrNew(key, func() (caddy.Destructor, error) {
		obs := &observerSwitch{}
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
			Observer:        obs,
			Logger:          slog.New(zapslog.NewHandler(logger.Core())),
		})
		if err != nil {
			return nil, err
		}
		// The entry, not any one config, owns the refresh goroutine.
		ctx, cancel := context.WithCancel(context.Background())
		ks.Start(ctx)
		return &keySetEntry{ks: ks, observer: obs, cancel: cancel, client: hc}, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("key set for issuer %q: %w", p.Issuer, err)
	}
	e := val.(*keySetEntry)
	e.observer.cur.Store(m)
	return e, key, nil
}

// Interface guards
var _ caddy.Destructor = (*keySetEntry)(nil)
