package jwtverify

import "time"

// Claims is a verified access token's identity. Returned values are shared
// (cached): treat them as read-only.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ClientID  string // "client_id", else "azp"
	Scope     string // space-separated; from "scope" (string) or "scp" (array of strings)
	Scopes    []string
	Expiry    time.Time
	IssuedAt  time.Time // zero if absent
	NotBefore time.Time // zero if absent
	ID        string    // jti
}

// MissingScopes returns the entries of required that are not among c.Scopes,
// in the order given, or nil when all are present.
func (c *Claims) MissingScopes(required []string) []string {
	var missing []string
	for _, r := range required {
		found := false
		for _, s := range c.Scopes {
			if s == r {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, r)
		}
	}
	return missing
}
