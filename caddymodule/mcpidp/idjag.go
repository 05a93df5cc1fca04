package mcpidp

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/mcpgate/idp"
)

// IDPIDJAGTrust is an enterprise IdP whose ID-JAGs (enterprise-managed authorization) the token
// endpoint accepts with the jwt-bearer grant (idp.IDJAGTrust).
type IDPIDJAGTrust struct {
	// Issuer is the IdP's issuer, compared exactly with the ID-JAG's iss. Required.
	Issuer string `json:"issuer,omitempty"`
	// JWKSURL is where the IdP publishes its signing keys. Required.
	JWKSURL string `json:"jwks_url,omitempty"`
	// ClientIDs are the clients of this server that may present this IdP's ID-JAGs. Required.
	ClientIDs []string `json:"client_ids,omitempty"`
	// Algorithms allowed for the signature. Default ["RS256", "ES256"].
	Algorithms []string `json:"algorithms,omitempty"`
	// MaxLifetime refuses ID-JAGs valid for longer from now. Default 1h.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
}

func (t IDPIDJAGTrust) validate() error {
	if t.Issuer == "" || t.JWKSURL == "" || len(t.ClientIDs) == 0 {
		return fmt.Errorf("mcp_idp: id_jag_trust %q needs an issuer, a jwks_url and client_ids", t.Issuer)
	}
	if t.MaxLifetime < 0 {
		return fmt.Errorf("mcp_idp: id_jag_trust %q: max_lifetime must not be negative", t.Issuer)
	}
	return nil
}

func (m *IDP) idjagOptions() ([]idp.IDJAGTrust, error) {
	out := make([]idp.IDJAGTrust, 0, len(m.IDJAGTrusts))
	for _, t := range m.IDJAGTrusts {
		if err := t.validate(); err != nil {
			return nil, err
		}
		out = append(out, idp.IDJAGTrust{
			Issuer: t.Issuer, JWKSURL: t.JWKSURL, ClientIDs: t.ClientIDs, Algorithms: t.Algorithms,
			MaxLifetime: time.Duration(t.MaxLifetime),
		})
	}
	return out, nil
}
