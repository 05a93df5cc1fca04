package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Explaining a token the MCP server refuses right after it was issued. The usual cause is an
// authorization server that ignores the RFC 8707 resource parameter and issues tokens for an
// audience of its own: the server's challenge says so only in words, so the client also reads
// the token's own aud (without verifying it: it is used for this message only, never trusted).
// The token itself is never printed.

// tokenAudience returns the aud claim of a JWT access token, unverified. isJWT is false for an
// opaque token (or anything that is not a three-part JWS with a JSON payload); aud is nil when
// the token is a JWT without a usable aud.
func tokenAudience(tok string) (aud []string, isJWT bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil, false
	}
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil {
		if one == "" {
			return nil, true
		}
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(claims.Aud, &many) == nil {
		return many, true
	}
	return nil, true
}

// sameResource compares two resource URLs after canonicalResource (case of scheme and host,
// default port, one trailing slash), as mcpgate's gateway compares aud with its resource.
func sameResource(a, b string) bool {
	ca, err1 := canonicalResource(a)
	cb, err2 := canonicalResource(b)
	return err1 == nil && err2 == nil && ca.String() == cb.String()
}

// mentionsAudience reports whether a server's error description blames the audience.
func mentionsAudience(detail string) bool {
	d := strings.ToLower(detail)
	return strings.Contains(d, "audience") || strings.Contains(d, "aud ") || strings.Contains(d, "(aud)")
}

// freshTokenRefused explains why the MCP server refused tok, an access token issuer issued
// moments ago for resource (the protected resource metadata's resource). detail is the server's
// error and error_description ("" if it gave none).
func (c *Client) freshTokenRefused(tok, issuer, resource, detail string) error {
	said := detail
	if said == "" {
		said = "no reason given"
	}
	aud, isJWT := tokenAudience(tok)
	matched := false
	for _, a := range aud {
		if sameResource(a, resource) {
			matched = true
		}
	}
	switch {
	case isJWT && len(aud) > 0 && !matched:
		q := make([]string, len(aud))
		for i, a := range aud {
			q[i] = fmt.Sprintf("%q", sanitize(a))
		}
		return fmt.Errorf("the MCP server at %s refuses the token %s just issued because of its audience: "+
			"the token is for %s, the server wants %q (the resource of its protected resource metadata); "+
			"the authorization server ignored the resource parameter (RFC 8707), configure it to issue tokens "+
			"with that audience (server said: %s)", c.cfg.MCPURL, issuer, strings.Join(q, ", "), resource, said)
	case isJWT && len(aud) == 0:
		return fmt.Errorf("the MCP server at %s refuses the token %s just issued, which names no audience (aud); "+
			"the server wants %q (the resource of its protected resource metadata): configure the authorization "+
			"server to issue tokens with that audience (server said: %s)", c.cfg.MCPURL, issuer, resource, said)
	case !isJWT && mentionsAudience(detail):
		return fmt.Errorf("the MCP server at %s refuses the token %s just issued because of its audience "+
			"(the token is opaque, so its audience cannot be read here); the server wants %q (the resource of "+
			"its protected resource metadata): the authorization server may ignore the resource parameter "+
			"(RFC 8707) (server said: %s)", c.cfg.MCPURL, issuer, resource, said)
	}
	return fmt.Errorf("the MCP server at %s refuses the token %s just issued (%s); the server may not trust "+
		"that issuer or its keys", c.cfg.MCPURL, issuer, said)
}
