package idp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"
)

// keyRecord is a signing key as stored: the PKCS#8 private key sealed with AES-256-GCM, the kid as
// associated data.
type keyRecord struct {
	Kid        string    `json:"kid"`
	Alg        string    `json:"alg"`
	Sealed     []byte    `json:"sealed"`
	Created    time.Time `json:"created"`
	ActivateAt time.Time `json:"activate_at"` // published from Created, signs from ActivateAt
}

type signingKey struct {
	kid        string
	alg        string
	priv       crypto.Signer
	activateAt time.Time
	created    time.Time
}

// keyManager owns the signing keys: a key is published in the JWKS from creation, signs only from
// activateAt (KeyPrePublish later), and stays published until every token it signed has expired.
type keyManager struct {
	store  KeyStorage
	sealer *sealer
	opts   *Options

	mu         sync.RWMutex
	keys       []*signingKey // sorted by activateAt ascending
	lastReload time.Time     // of a reload triggered by an unknown kid
}

// jwk is the public JSON Web Key form (RFC 7517) we publish.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func publicJWK(pub crypto.PublicKey, alg string) (jwk, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return jwk{Kty: "RSA", Use: "sig", Alg: alg, N: b64(k.N.Bytes()), E: b64(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil || len(raw) != 65 || k.Curve != elliptic.P256() {
			return jwk{}, errors.New("idp: unsupported EC key")
		}
		return jwk{Kty: "EC", Use: "sig", Alg: alg, Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:65])}, nil
	}
	return jwk{}, errors.New("idp: unsupported key type")
}

// thumbprint is the RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic
// order with no whitespace, base64url.
func thumbprint(k jwk) string {
	var s string
	switch k.Kty {
	case "RSA":
		s = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, k.E, k.N)
	case "EC":
		s = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, k.Crv, k.X, k.Y)
	}
	h := sha256.Sum256([]byte(s))
	return b64(h[:])
}

func generateKey(alg string) (crypto.Signer, error) {
	if alg == "ES256" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

func (m *keyManager) load(ctx context.Context) error {
	recs, err := m.store.ListKeys(ctx)
	if err != nil {
		return err
	}
	keys := make([]*signingKey, 0, len(recs))
	for _, rec := range recs {
		der, err := m.sealer.open(rec.Sealed, rec.Kid)
		if err != nil {
			return fmt.Errorf("idp: signing key %s: %w (wrong encryption key?)", rec.Kid, err)
		}
		p, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("idp: parse signing key: %w", err)
		}
		signer, ok := p.(crypto.Signer)
		if !ok {
			return errors.New("idp: stored key is not a signer")
		}
		keys = append(keys, &signingKey{kid: rec.Kid, alg: rec.Alg, priv: signer, activateAt: rec.ActivateAt, created: rec.Created})
	}
	sortKeys(keys)
	m.mu.Lock()
	m.keys = keys
	m.mu.Unlock()
	return nil
}

// sortKeys sorts keys oldest first in KeyStorage's order (ActivateAt, then kid), so the last one
// is the newestKid that AddKey compares.
func sortKeys(keys []*signingKey) {
	slices.SortFunc(keys, func(a, b *signingKey) int {
		if c := a.activateAt.Compare(b.activateAt); c != 0 {
			return c
		}
		return strings.Compare(a.kid, b.kid)
	})
}

// create generates a key and stores it if the newest stored key is still newest ("" = none), else
// returns ErrChanged: another Server sharing the Storage added one first.
func (m *keyManager) create(ctx context.Context, now, activateAt time.Time, newest string) (*signingKey, error) {
	alg := m.opts.SigningAlgorithm
	priv, err := generateKey(alg)
	if err != nil {
		return nil, err
	}
	j, err := publicJWK(priv.Public(), alg)
	if err != nil {
		return nil, err
	}
	kid := thumbprint(j)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	rec := keyRecord{Kid: kid, Alg: alg, Sealed: m.sealer.seal(der, kid), Created: now, ActivateAt: activateAt}
	if err := m.store.AddKey(ctx, rec, newest); err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, alg: alg, priv: priv, activateAt: activateAt, created: now}, nil
}

// maintain creates the first key, pre-publishes a successor KeyPrePublish before the current key
// has signed for KeyRotationInterval, and deletes keys whose tokens have all expired.
//
// Several Servers may share the Storage (replicas, or a Caddy reload overlapping two instances).
// Each creates a key only through KeyStorage.AddKey, conditional on the newest key it read; the
// Servers that lose get ErrChanged, reload, and use the key that won, so all sign with one key.
// Every Server reloads here every CleanupInterval, and a successor is published KeyPrePublish
// before it signs; Options refuses KeyPrePublish <= CleanupInterval, so every Server has loaded
// (and publishes in its JWKS) a successor before any Server signs with it.
func (m *keyManager) maintain(ctx context.Context) error {
	// A loss means another Server just added a key: the next round reloads and finds it, and
	// then has nothing to add. A third loss in a row is not a race any more but a fault.
	for round := 0; ; round++ {
		err := m.maintainOnce(ctx)
		if !errors.Is(err, ErrChanged) || round == 2 {
			return err
		}
	}
}

func (m *keyManager) maintainOnce(ctx context.Context) error {
	// Re-read the store first: another Server on the same store may have added or removed keys.
	if err := m.load(ctx); err != nil {
		return err
	}
	now := m.opts.Now()
	m.mu.RLock()
	keys := slices.Clone(m.keys)
	m.mu.RUnlock()

	changed := false
	if len(keys) == 0 {
		k, err := m.create(ctx, now, now, "") // nobody can hold tokens yet: publish and sign at once
		if err != nil {
			return err
		}
		keys = append(keys, k)
		changed = true
	} else if m.opts.KeyRotationInterval > 0 {
		newest := keys[len(keys)-1]
		due := newest.activateAt.Add(m.opts.KeyRotationInterval)
		if !newest.activateAt.After(now) && !now.Before(due.Add(-m.opts.KeyPrePublish)) {
			act := due
			if pp := now.Add(m.opts.KeyPrePublish); pp.After(act) {
				act = pp
			}
			k, err := m.create(ctx, now, act, newest.kid)
			if err != nil {
				return err
			}
			keys = append(keys, k)
			changed = true
		}
	}
	// A key stops signing when its successor activates; it stays published until the last token it
	// signed has expired (plus a margin for clock skew).
	keep := keys[:0:0]
	var retire []string
	for i, k := range keys {
		if i+1 < len(keys) {
			succ := keys[i+1].activateAt
			if !succ.After(now) && now.After(succ.Add(m.opts.AccessTokenTTL+5*time.Minute)) {
				retire = append(retire, k.kid)
				continue
			}
		}
		keep = append(keep, k)
	}
	if len(retire) > 0 {
		if err := m.store.RetireKeys(ctx, retire); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		sortKeys(keep)
		m.mu.Lock()
		m.keys = keep
		m.mu.Unlock()
	}
	return nil
}

// current returns the key that signs now: the newest one already active.
func (m *keyManager) current() (*signingKey, error) {
	now := m.opts.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := len(m.keys) - 1; i >= 0; i-- {
		if !m.keys[i].activateAt.After(now) {
			return m.keys[i], nil
		}
	}
	return nil, errors.New("idp: no active signing key")
}

func (m *keyManager) publicKey(ctx context.Context, kid string) (crypto.PublicKey, string, bool) {
	if pub, alg, ok := m.lookup(kid); ok {
		return pub, alg, true
	}
	// Unknown kid: maybe another instance sharing the store created it. Reload at most every 10s.
	if kid == "" || len(kid) > 100 {
		return nil, "", false
	}
	m.mu.Lock()
	due := m.opts.Now().Sub(m.lastReload) >= 10*time.Second
	if due {
		m.lastReload = m.opts.Now()
	}
	m.mu.Unlock()
	if !due || m.load(ctx) != nil {
		return nil, "", false
	}
	return m.lookup(kid)
}

func (m *keyManager) lookup(kid string) (crypto.PublicKey, string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.keys {
		if k.kid == kid {
			return k.priv.Public(), k.alg, true
		}
	}
	return nil, "", false
}

func (m *keyManager) jwks() []jwk {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]jwk, 0, len(m.keys))
	for _, k := range m.keys {
		j, err := publicJWK(k.priv.Public(), k.alg)
		if err != nil {
			continue
		}
		j.Kid = k.kid
		out = append(out, j)
	}
	return out
}
