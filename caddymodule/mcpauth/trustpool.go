package mcpauth

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// The gateway's own outbound HTTPS calls (issuer discovery, JWKS, token exchange) trust the
// system roots by default. A `tls_trust_pool` (any tls.ca_pool.source module, as in
// reverse_proxy's transport) replaces them: `tls_trust_pool pki_root local` trusts Caddy's
// internal CA, so a gateway can reach an IdP that the same Caddy serves with `local_certs`.

// loadTrustPool loads the tls.ca_pool.source module in owner's field (a json.RawMessage tagged
// with that namespace) and returns its pool; nil when the field is empty.
func loadTrustPool(ctx caddy.Context, owner any, field string, raw json.RawMessage) (*x509.CertPool, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	mod, err := ctx.LoadModule(owner, field)
	if err != nil {
		return nil, fmt.Errorf("loading tls_trust_pool: %w", err)
	}
	ca, ok := mod.(caddytls.CA)
	if !ok {
		return nil, fmt.Errorf("tls_trust_pool: module %T is not a caddytls.CA", mod)
	}
	return ca.CertPool(), nil
}

// outboundTransport returns http.DefaultTransport when roots is nil, else a copy of its
// configuration that trusts roots. Whoever gets a copy must CloseIdleConnections when done,
// or every config reload leaves its idle connections (and their goroutines) behind.
func outboundTransport(roots *x509.CertPool) http.RoundTripper {
	if roots == nil {
		return http.DefaultTransport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return t
}

// trustPoolID identifies a trust pool configuration, so that pooled key sets built with
// different roots are never shared.
func trustPoolID(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
