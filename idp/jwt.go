package idp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// accessClaims are the RFC 9068 access token claims (what the gateway verifies).
type accessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	identityClaims
}

// identityClaims are the upstream user's claims copied into access tokens when configured
// (UpstreamOIDC.TokenClaims).
type identityClaims struct {
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// mintAccessToken signs an RFC 9068 JWT access token with the current key. jti is random; the
// caller records it for revocation and introspection.
func (s *Server) mintAccessToken(sub, clientID, scope, resource string, now time.Time) (raw, jti string, exp time.Time, err error) {
	return s.mintAccessTokenWith(sub, clientID, scope, resource, now, nil)
}

// mintAccessTokenWith is mintAccessToken with the user's identity claims (nil: none).
func (s *Server) mintAccessTokenWith(sub, clientID, scope, resource string, now time.Time, id *identityClaims) (raw, jti string, exp time.Time, err error) {
	key, err := s.keys.current()
	if err != nil {
		return "", "", time.Time{}, err
	}
	jti = randomToken()
	exp = now.Add(s.opts.AccessTokenTTL)
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.opts.Issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{resource},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
		ClientID: clientID,
		Scope:    scope,
	}
	if id != nil {
		claims.identityClaims = *id
	}
	method := jwt.SigningMethod(jwt.SigningMethodRS256)
	if key.alg == "ES256" {
		method = jwt.SigningMethodES256
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["typ"] = "at+jwt"
	t.Header["kid"] = key.kid
	raw, err = t.SignedString(key.priv)
	return raw, jti, exp, err
}

var (
	errBadAccessToken = errors.New("idp: invalid access token")
	// errStoreFault means the token could not be checked because the store failed: a transient
	// server fault (503), not a bad token.
	errStoreFault = errors.New("idp: token store unavailable")
)

// verifyAccessToken checks one of our own access tokens: signature by a published key, algorithm
// from the key (never the token), typ at+jwt, exact issuer, expiry, that it was not revoked and
// that its client still exists.
func (s *Server) verifyAccessToken(ctx context.Context, raw string) (*accessClaims, error) {
	if len(raw) == 0 || len(raw) > 8192 {
		return nil, errBadAccessToken
	}
	var claims accessClaims
	t, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, alg, ok := s.keys.publicKey(ctx, kid)
		if !ok || t.Method.Alg() != alg {
			return nil, errBadAccessToken
		}
		return pub, nil
	},
		jwt.WithValidMethods([]string{"RS256", "ES256"}),
		jwt.WithIssuer(s.opts.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.opts.Now),
	)
	if err != nil || !t.Valid {
		return nil, errBadAccessToken
	}
	if typ, _ := t.Header["typ"].(string); typ != "at+jwt" && typ != "application/at+jwt" {
		return nil, errBadAccessToken
	}
	if claims.ID == "" || claims.Subject == "" {
		return nil, errBadAccessToken
	}
	revoked, err := s.accessRevoked(ctx, claims.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errStoreFault, err)
	}
	if revoked {
		return nil, errBadAccessToken
	}
	// A token of a client deleted through RFC 7592 is dead even if a family was created while
	// the deletion ran.
	exists, err := s.clientExists(ctx, claims.ClientID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errStoreFault, err)
	}
	if !exists {
		return nil, errBadAccessToken
	}
	return &claims, nil
}
