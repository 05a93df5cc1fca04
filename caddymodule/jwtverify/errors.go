package jwtverify

import "errors"

// ErrInvalidToken is wrapped by every verification failure returned by
// Verifier.Verify (and by the key lookup failures of the KeySource
// implementations in this package). Use errors.Is(err, ErrInvalidToken) to
// detect a bad token and Reason(err) for a short label for metrics and logs.
var ErrInvalidToken = errors.New("jwtverify: invalid token")

// ErrKeysUnavailable is returned by Verifier.Verify (and RemoteKeySet.Key)
// when the token's issuer has no usable signing keys because its key set
// has never been loaded successfully (the JWKS or discovery is down or
// answers nonsense), or when a KeySource fails with an error of its own. It
// does NOT wrap ErrInvalidToken: the token may well be valid, and the caller
// should answer "temporarily unavailable" (503 with Retry-After), not ask
// the client to sign in again. Reason(err) is "keys_unavailable".
var ErrKeysUnavailable = errors.New("jwtverify: the issuer's signing keys are unavailable")

// Reason labels. They are fixed strings and never contain token material.
const (
	reasonMalformed       = "malformed"
	reasonTooLarge        = "too_large"
	reasonAlgorithm       = "algorithm"
	reasonSignature       = "signature"
	reasonUnknownKid      = "unknown_kid"
	reasonExpired         = "expired"
	reasonNotYetValid     = "not_yet_valid"
	reasonIssuer          = "issuer"
	reasonAudience        = "audience"
	reasonType            = "type"
	reasonCrit            = "crit"
	reasonMissingClaim    = "missing_claim"
	reasonKeysUnavailable = "keys_unavailable"
	reasonEmpty           = "empty"
)

// tokenError is a verification failure: a fixed reason label plus a
// human-readable detail written by this package. The detail is fixed text,
// except that a refused typ header is quoted (escaped, at most 40 bytes): a
// media type, never a signature, claim value or key, so the message can be
// logged safely.
type tokenError struct {
	reason string
	detail string
}

func (e *tokenError) Error() string {
	return "jwtverify: invalid token: " + e.reason + ": " + e.detail
}

func (e *tokenError) Unwrap() error { return ErrInvalidToken }

func invalid(reason, detail string) error { return &tokenError{reason: reason, detail: detail} }

// Detail returns the human-readable explanation of a verification failure,
// for the log line of a rejection, e.g. `typ "JWT" is not an accepted access
// token type` or "aud does not contain this resource". It is safe to log
// (see Reason) and returns "" for nil or an error not from this package.
func Detail(err error) string {
	var te *tokenError
	if errors.As(err, &te) {
		return te.detail
	}
	if errors.Is(err, ErrKeysUnavailable) {
		return "the issuer's signing keys are unavailable"
	}
	return ""
}

// Reason returns a short fixed label for metrics/logs: "empty", "malformed",
// "too_large", "algorithm", "signature", "unknown_kid", "expired",
// "not_yet_valid", "issuer", "audience", "type", "crit", "missing_claim" or
// "keys_unavailable". It never contains token material. It returns "" for a
// nil error, "invalid" for an ErrInvalidToken without a more specific label
// and "other" for an error that did not come from this package.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var te *tokenError
	if errors.As(err, &te) {
		return te.reason
	}
	if errors.Is(err, ErrKeysUnavailable) {
		return reasonKeysUnavailable
	}
	if errors.Is(err, ErrInvalidToken) {
		return "invalid"
	}
	return "other"
}
