// Package jwtverify verifies JWT access tokens (RFC 9068, and the JWT access
// tokens of common providers) for the mcp_auth gateway: it is the resource
// server half of OAuth 2.1. It is a plain library and does not import Caddy.
//
// # Which library does what, and why
//
//   - github.com/golang-jwt/jwt/v5 checks the signature (its SigningMethod
//     for each algorithm of Config.Algorithms) and then exp/nbf/iat (its
//     Validator with WithExpirationRequired, WithIssuedAt, WithLeeway and
//     WithTimeFunc). It is small and widely reviewed.
//   - The compact JWS is split and decoded here (jws.go), in the order and
//     with the meaning of golang-jwt's Parser (strict base64url; the header
//     read as a JSON object whose last duplicate key wins), so that every
//     cheap check (crit, typ, kid shape, exact iss, exp/nbf/iat, aud) runs
//     before any key is looked up. It is not golang-jwt's Parser because
//     that decodes every header into a map, a large share of a fresh
//     verification's cost besides the signature (docs/performance.md).
//     The header is read by a small scanner when it is a few plain ASCII
//     strings, else by encoding/json into a map, exactly as golang-jwt did;
//     FuzzHeaderDecode checks that both read the same.
//   - Claims whose JSON type matters ("exp" must be a number, "aud" a string
//     or array of strings) are decoded by this package, because golang-jwt's
//     NumericDate also accepts a quoted number. The claims object itself is
//     decoded by a small scanner when it has the common shape
//     (claimsjson.go), else by encoding/json, with identical results either
//     way, because encoding/json's reflective decode was the largest
//     non-signature cost (docs/performance.md).
//   - JWKS parsing and the per-issuer key cache (RemoteKeySet) are our own.
//     go-oidc's RemoteKeySet has no cooldown between refetches triggered by
//     unknown kids and reads the JWKS body unbounded; go-jose, which it uses
//     to parse keys, is not needed for plain RSA/EC/Ed25519 keys. Our parser
//     validates EC points (crypto/ecdsa.ParseUncompressedPublicKey), refuses
//     RSA keys under 2048 bits and skips keys not meant for signatures.
//   - github.com/coreos/go-oidc/v3 is not used. Its discovery
//     (oidc.NewProvider) knows only the OIDC well-known URL, not RFC 8414's
//     path-aware one, and fetches eagerly; DiscoverJWKSURI here does both in
//     the RFC 8414-first order and checks the issuer exactly, like go-oidc.
//   - github.com/hashicorp/golang-lru/v2 (plain lru.Cache) holds verified
//     tokens, keyed by their SHA-256, with an expiry check on every hit.
//
// # Security properties
//
//   - The algorithm comes from Config.Algorithms, never from the token; HMAC
//     and "none" cannot be configured, and a key is only used with an
//     algorithm of its own type and size (no key confusion).
//   - Keys come only from the KeySource of the token's exact "iss"; an unknown
//     issuer is rejected before any fetch. jku, x5u, jwk and x5c headers are
//     ignored, so no URL from a token is ever fetched. kid is only a map key.
//   - Errors wrap ErrInvalidToken with a fixed reason (see Reason), except
//     ErrKeysUnavailable (the issuer's keys never loaded: a service fault,
//     not a bad token), and never contain token material; nothing here logs
//     a token.
//
// # Leeway
//
// Config.Leeway (default 30s) applies to exp, nbf and iat alike: a token is
// accepted while now < exp+leeway, now >= nbf-leeway and now >= iat-leeway.
// The verified-token cache is stricter: an entry is used only while now < exp.
// A cached token stays valid until then even if its key is later removed
// from the JWKS; the cache is bounded by Config.CacheSize.
//
// # Discovery order
//
// For an issuer https://host/path, DiscoverJWKSURI tries
// https://host/.well-known/oauth-authorization-server/path (RFC 8414),
// https://host/path/.well-known/openid-configuration (OIDC Discovery) and
// https://host/.well-known/openid-configuration/path, and accepts the first
// document whose "issuer" equals the issuer exactly and that has a jwks_uri.
package jwtverify
