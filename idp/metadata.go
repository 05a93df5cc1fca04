package idp

import "net/http"

const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// handleMetadata serves RFC 8414 authorization server metadata (also at the OIDC discovery path).
// Every URL derives from Options.Issuer; Host and X-Forwarded-* headers are ignored.
func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	grants := []string{grantAuthorizationCode, grantRefreshToken}
	if len(s.opts.ExchangeClients) > 0 {
		grants = append(grants, grantTokenExchange)
	}
	if len(s.opts.IDJAGTrusts) > 0 {
		grants = append(grants, grantJWTBearer)
	}
	md := map[string]any{
		"issuer":                                           s.opts.Issuer,
		"authorization_endpoint":                           s.endpoint("/authorize"),
		"token_endpoint":                                   s.endpoint("/token"),
		"jwks_uri":                                         s.endpoint("/jwks.json"),
		"registration_endpoint":                            s.endpoint("/register"),
		"revocation_endpoint":                              s.endpoint("/revoke"),
		"introspection_endpoint":                           s.endpoint("/introspect"),
		"userinfo_endpoint":                                s.endpoint("/userinfo"),
		"scopes_supported":                                 s.opts.Scopes,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            grants,
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":       []string{"none", "client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"authorization_response_iss_parameter_supported":   true,
		"client_id_metadata_document_supported":            true,
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{s.opts.SigningAlgorithm},
		"token_endpoint_auth_signing_alg_values_supported": []string{s.opts.SigningAlgorithm},
	}
	if len(s.opts.IDJAGTrusts) > 0 {
		// draft-ietf-oauth-identity-assertion-authz-grant §7.2, as the MCP extension's §6 asks.
		md["authorization_grant_profiles_supported"] = []string{grantProfileIDJAG}
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSONNoCacheOverride(w, md)
}

// handleJWKS serves the public signing keys, including a successor that does not sign yet and
// predecessors whose tokens may still be valid.
func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSONNoCacheOverride(w, map[string]any{"keys": s.keys.jwks()})
}
