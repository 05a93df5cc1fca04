package jwtverify

import "errors"

// ErrInvalidToken is wrapped by every verification failure returned by
// Verifier.Verify. Use errors.Is(err, ErrInvalidToken) to detect a bad token
// and Reason(err) to get a short label for metrics and logs.
var ErrInvalidToken = errors.New("jwtverify: invalid token")

// Reason returns a short fixed label for metrics/logs ("malformed", "too_large",
// "algorithm", "signature", "unknown_kid", "expired", "not_yet_valid", "issuer",
// "audience", "type", "crit", "missing_claim", "keys_unavailable", ...). It
// never contains token material. It returns "" for a nil error and "other"
// for an error that did not come from this package.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	return "other"
}
