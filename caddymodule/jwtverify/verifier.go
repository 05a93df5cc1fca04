package jwtverify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults for Config.
const (
	DefaultLeeway        = 30 * time.Second
	DefaultMaxTokenBytes = 8192
)

// defaultAlgorithms is the algorithm allowlist used when Config.Algorithms is
// empty.
var defaultAlgorithms = []string{"RS256", "ES256"}

// Preallocated errors for the checks that run before any parsing, so that a
// flood of junk costs no allocation.
var (
	errEmptyToken       = invalid(reasonEmpty, "empty token")
	errTokenTooLarge    = invalid(reasonTooLarge, "token is larger than the configured maximum")
	errNotThreeSegments = invalid(reasonMalformed, "token is not a compact JWS with three segments")
)

// maxKidLen bounds the kid header; longer values are rejected as malformed
// before any lookup.
const maxKidLen = 256

// Config configures a Verifier. Zero values take the stated defaults.
type Config struct {
	Audience      string        // the canonical resource; required; compared with SameResource
	Algorithms    []string      // allowlist; default ["RS256","ES256"]; never taken from the token; HS* and none are refused
	Leeway        time.Duration // default 30s, applied to exp, nbf and iat (negative: 0)
	MaxTokenBytes int           // default 8192; longer bearer values are rejected before parsing
	CacheSize     int           // verified-token LRU entries; default 10000; negative disables
	// AccessTokenTypes lists the JOSE "typ" header values accepted on an
	// access token. Default ["at+jwt"], as RFC 9068 §4 requires. Entries
	// compare case-insensitively, with or without the "application/"
	// prefix (RFC 7515 §4.1.9). The empty string "" in the list means
	// "no typ header at all"; a typ header that is present but empty is
	// never accepted. Set it for issuers whose access tokens are typed
	// otherwise, e.g. ["at+jwt", "JWT", ""] for Keycloak or for Auth0
	// without its RFC 9068 profile. Types that mark another kind of token
	// (id+jwt, logout+jwt, dpop+jwt, secevent+jwt, …) are refused by
	// NewVerifier, so they stay rejected whatever the list says.
	AccessTokenTypes []string
	// IssuerAccessTokenTypes replaces AccessTokenTypes for the issuers it
	// names (same rules), so that one issuer's JWT-typed tokens need not be
	// accepted from the others. Default: none.
	IssuerAccessTokenTypes map[string][]string
	Now                    func() time.Time
	Observer               Observer
}

// Verifier verifies bearer JWTs against per-issuer key sources. It is safe
// for concurrent use.
type Verifier struct {
	audience string
	algs     []string
	leeway   time.Duration
	maxBytes int
	now      func() time.Time
	obs      Observer
	keys     map[string]KeySource
	cache    *tokenCache
	// methods are golang-jwt's signature methods for algs; validator is
	// golang-jwt's exp/nbf/iat check, run after the signature.
	methods   map[string]jwt.SigningMethod
	validator *jwt.Validator
	// types are the accepted access token types; issuerTypes override them
	// per issuer.
	types       typeSet
	issuerTypes map[string]*typeSet
}

// NewVerifier returns a Verifier. keys maps each trusted issuer, spelled
// exactly as in the tokens' "iss", to its KeySource; at least one is needed.
func NewVerifier(cfg Config, keys map[string]KeySource) (*Verifier, error) {
	aud, err := CanonicalResource(cfg.Audience)
	if err != nil {
		return nil, fmt.Errorf("jwtverify: Config.Audience: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwtverify: at least one issuer is required")
	}
	v := &Verifier{
		audience: aud,
		algs:     slices.Clone(cfg.Algorithms),
		leeway:   cfg.Leeway,
		maxBytes: cfg.MaxTokenBytes,
		now:      cfg.Now,
		obs:      cfg.Observer,
		keys:     make(map[string]KeySource, len(keys)),
	}
	if len(v.algs) == 0 {
		v.algs = slices.Clone(defaultAlgorithms)
	}
	for _, a := range v.algs {
		if !slices.Contains(supportedAlgorithms, a) {
			return nil, fmt.Errorf("jwtverify: algorithm %q is not supported (allowed: %s)", a, strings.Join(supportedAlgorithms, ", "))
		}
	}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	} else if v.leeway < 0 {
		v.leeway = 0
	}
	if v.maxBytes <= 0 {
		v.maxBytes = DefaultMaxTokenBytes
	}
	if v.now == nil {
		v.now = time.Now
	}
	if err := v.types.set(cfg.AccessTokenTypes, "Config.AccessTokenTypes"); err != nil {
		return nil, err
	}
	for iss, list := range cfg.IssuerAccessTokenTypes {
		if _, ok := keys[iss]; !ok {
			return nil, fmt.Errorf("jwtverify: Config.IssuerAccessTokenTypes names %q, which is not a configured issuer", iss)
		}
		ts := new(typeSet)
		if err := ts.set(list, "Config.IssuerAccessTokenTypes["+iss+"]"); err != nil {
			return nil, err
		}
		if v.issuerTypes == nil {
			v.issuerTypes = make(map[string]*typeSet)
		}
		v.issuerTypes[iss] = ts
	}
	for iss, ks := range keys {
		if iss == "" || ks == nil {
			return nil, errors.New("jwtverify: empty issuer or nil KeySource")
		}
		v.keys[iss] = ks
	}
	switch size := cfg.CacheSize; {
	case size == 0:
		v.cache, err = newTokenCache(DefaultCacheSize)
	case size > 0:
		v.cache, err = newTokenCache(size)
	}
	if err != nil {
		return nil, err
	}
	v.methods = make(map[string]jwt.SigningMethod, len(v.algs))
	for _, a := range v.algs {
		m := jwt.GetSigningMethod(a)
		if m == nil {
			return nil, fmt.Errorf("jwtverify: golang-jwt has no signing method %q", a)
		}
		v.methods[a] = m
	}
	v.validator = jwt.NewValidator(
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	return v, nil
}

// Verify checks a bearer token and returns its claims. Every failure wraps
// ErrInvalidToken, except ErrKeysUnavailable when the issuer's keys cannot be
// had (never loaded, or the KeySource failed); Reason(err) labels both.
// Checks, cheapest first:
//
//  1. size (MaxTokenBytes) and shape (three segments);
//  2. the verified-token cache (a hit skips everything below);
//  3. header: alg in the allowlist (never "none" or HS*), no crit, kid a
//     short string;
//  4. iss is a configured issuer (exact match), then the typ header is one
//     of that issuer's access token types (IssuerAccessTokenTypes, else
//     AccessTokenTypes, default at+jwt only) — before any key work;
//  5. typ claim not "ID", exp present and numeric, nbf, iat, aud contains
//     Config.Audience (SameResource);
//  6. the key for (iss, kid, alg) from that issuer's KeySource only, of the
//     type alg requires (CheckedKey when the source is a CheckedKeySource:
//     checks 3 to 5 have passed); jku, x5u, jwk and x5c are never looked
//     at;
//  7. the signature, then golang-jwt's own exp/nbf/iat validation.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) == 0 {
		return nil, errEmptyToken
	}
	if len(raw) > v.maxBytes {
		return nil, errTokenTooLarge
	}
	if strings.Count(raw, ".") != 2 {
		return nil, errNotThreeSegments
	}
	var key [32]byte
	if v.cache != nil {
		key = tokenKey(raw)
		c, hit := v.cache.get(key, v.now())
		if v.obs != nil {
			v.obs.VerifyCache(hit)
		}
		if hit {
			return c, nil
		}
	}

	claims, err := v.verifyJWS(ctx, raw)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.add(key, claims, v.now())
	}
	return claims, nil
}

// verifyJWS runs checks 3 to 7 of Verify on a token with two dots, in the
// order golang-jwt's Parser.ParseWithClaims runs its own, which it replaces:
// decode the header, the claims and the signature, look up the algorithm,
// check the claims that need no key, fetch the key, verify the signature
// with golang-jwt's SigningMethod, then golang-jwt's claims Validator.
// Parsing the compact form here, instead of in golang-jwt, spares a decode
// of the header into a map (see jws.go and docs/performance.md).
func (v *Verifier) verifyJWS(ctx context.Context, raw string) (*Claims, error) {
	// Go's base64 decoder skips CR and LF, even in strict mode, and the
	// signature covers only the first two segments, so without this an LF
	// in the signature or at the end would give one token many spellings
	// that all verify. With it, a token that verifies is base64url
	// segments and dots, an RFC 6750 b64token, which the gateway relies on
	// (it checks the b64token syntax only of tokens it refuses). Header
	// values from the wire cannot carry CR or LF, but one built by another
	// handler from decoded input can.
	if strings.ContainsAny(raw, "\r\n") {
		return nil, invalid(reasonMalformed, "token contains a line break")
	}
	parts := splitCompact(raw)
	hb, err := segmentEncoding.DecodeString(parts.header)
	if err != nil {
		return nil, errMalformedHeader
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return nil, err
	}
	cb, err := segmentEncoding.DecodeString(parts.payload)
	if err != nil {
		return nil, invalid(reasonMalformed, "token cannot be decoded")
	}
	tc := &tokenClaims{}
	if err := json.Unmarshal(cb, tc); err != nil {
		return nil, invalid(reasonMalformed, "token cannot be decoded")
	}
	method, allowed := v.methods[h.alg] // golang-jwt's registry is asked only for refused algs
	if !h.algStr || (!allowed && jwt.GetSigningMethod(h.alg) == nil) {
		return nil, invalid(reasonAlgorithm, "algorithm missing or unknown")
	}
	sig, err := segmentEncoding.DecodeString(parts.signature)
	if err != nil {
		return nil, invalid(reasonMalformed, "token cannot be decoded")
	}
	if !allowed {
		return nil, invalid(reasonAlgorithm, "algorithm not allowed")
	}
	pub, err := v.keyFor(ctx, &h, tc)
	if err != nil {
		return nil, err
	}
	if method.Verify(parts.signingInput, sig, pub) != nil {
		return nil, invalid(reasonSignature, "signature is invalid")
	}
	if err := v.validator.Validate(tc); err != nil {
		return nil, classifyClaimsError(err)
	}
	return tc.toClaims(), nil
}

// defaultAccessTokenTypes is Config.AccessTokenTypes when empty: RFC 9068
// §4 makes a resource server reject anything but at+jwt.
var defaultAccessTokenTypes = []string{"at+jwt"}

// otherTokenTypes are typ values that mark a token that is not an access
// token; NewVerifier refuses them in Config.AccessTokenTypes. Compared
// without "application/", case-insensitively.
var otherTokenTypes = []string{
	"id+jwt", "logout+jwt", "dpop+jwt", "secevent+jwt", "oauth-authz-req+jwt",
	"token-introspection+jwt", "client-authentication+jwt", "jwk-set+jwt",
	"entity-statement+jwt", "trust-mark+jwt", "kb+jwt", "jose", "jose+json",
}

// stripMediaPrefix drops a leading "application/" (any case) from a typ
// value (RFC 7515 §4.1.9: the prefix may be omitted).
func stripMediaPrefix(typ string) string {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		return typ[len(prefix):]
	}
	return typ
}

// typeSet is a list of accepted access token types: the typ values without
// "application/", lowercase, and whether a token without typ is accepted.
type typeSet struct {
	typs   []string
	absent bool
}

// set fills ts from a configured list (default: at+jwt); field names the
// configuration in errors.
func (ts *typeSet) set(list []string, field string) error {
	if len(list) == 0 {
		list = defaultAccessTokenTypes
	}
	for _, t := range list {
		if t == "" {
			ts.absent = true
			continue
		}
		n := strings.ToLower(stripMediaPrefix(t))
		if n == "" || n == "application/" || strings.ContainsAny(n, " \t/") {
			return fmt.Errorf("jwtverify: %s: %q is not a media type", field, t)
		}
		if slices.Contains(otherTokenTypes, n) {
			return fmt.Errorf("jwtverify: %s: %q marks a token that is not an access token", field, t)
		}
		if !slices.Contains(ts.typs, n) {
			ts.typs = append(ts.typs, n)
		}
	}
	return nil
}

// check accepts a header whose typ is one of the set, with or without the
// "application/" prefix, case-insensitively (RFC 7515 §4.1.9, RFC 9068 §4),
// or absent where the set allows that.
func (ts *typeSet) check(h *joseHeader) error {
	if !h.hasTyp {
		if ts.absent {
			return nil
		}
		return typError(h)
	}
	if h.typStr {
		t := stripMediaPrefix(h.typ)
		for _, a := range ts.typs {
			if strings.EqualFold(t, a) {
				return nil
			}
		}
	}
	return typError(h)
}

// maxQuotedTyp bounds how much of a refused typ header a rejection quotes.
const maxQuotedTyp = 40

// typError explains a refused typ header, naming the value (quoted and cut
// to maxQuotedTyp bytes) so an operator reading the gateway's log sees at
// once which type the issuer uses. A typ names a media type, not a secret.
func typError(h *joseHeader) error {
	switch {
	case !h.hasTyp:
		return invalid(reasonType, "typ header is absent; an access token must be typed at+jwt (Config.AccessTokenTypes)")
	case !h.typStr:
		return invalid(reasonType, "typ header is not a string")
	}
	t := h.typ
	if len(t) > maxQuotedTyp {
		t = t[:maxQuotedTyp] + "…"
	}
	return invalid(reasonType, fmt.Sprintf("typ %q is not an accepted access token type", t))
}

// keyFor runs the header and claim checks that need no key, then asks only
// the token's issuer's KeySource for the key of (kid, alg).
func (v *Verifier) keyFor(ctx context.Context, h *joseHeader, tc *tokenClaims) (any, error) {
	if h.crit {
		return nil, invalid(reasonCrit, "crit header names extensions this verifier does not understand")
	}
	alg := h.alg
	if !slices.Contains(v.algs, alg) { // verifyJWS checked it; keyFor must not depend on that
		return nil, invalid(reasonAlgorithm, "algorithm not allowed")
	}
	kid := ""
	if h.hasKid {
		if !h.kidStr || len(h.kid) > maxKidLen {
			return nil, invalid(reasonMalformed, "kid is not a short string")
		}
		kid = h.kid
	}
	if tc.Iss == "" {
		return nil, invalid(reasonIssuer, "iss is missing")
	}
	ks, ok := v.keys[tc.Iss]
	if !ok {
		return nil, invalid(reasonIssuer, "iss is not a trusted issuer")
	}
	types := &v.types
	if ts, ok := v.issuerTypes[tc.Iss]; ok {
		types = ts
	}
	if err := types.check(h); err != nil {
		return nil, err
	}
	if err := tc.check(v.now(), v.leeway, v.audience); err != nil {
		return nil, err
	}
	var pub any
	var err error
	if cks, ok := ks.(CheckedKeySource); ok {
		pub, err = cks.CheckedKey(ctx, kid, alg)
	} else {
		pub, err = ks.Key(ctx, kid, alg)
	}
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return nil, te
		}
		// Never loaded, or a KeySource's own failure: not the token's
		// fault, and the error is not passed on (it may name the kid).
		return nil, ErrKeysUnavailable
	}
	if !keyMatchesAlg(alg, pub) {
		return nil, invalid(reasonAlgorithm, "the key does not match the token's algorithm")
	}
	return pub, nil
}

// classifyClaimsError maps an error of golang-jwt's claims Validator to a
// tokenError. golang-jwt's own messages are never passed on.
func classifyClaimsError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid(reasonExpired, "token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid(reasonNotYetValid, "token is not valid yet")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid(reasonMissingClaim, "a required claim is missing")
	}
	return invalid(reasonMalformed, "token claims are invalid")
}
