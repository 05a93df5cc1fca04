package mcpauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

func init() {
	caddy.RegisterModule(Keycloak{})
}

// Keycloak retrieval methods.
const (
	// KeycloakMethodGet is the broker token endpoint's GET with the user's own access token,
	// which needs the broker client's read-token role in that token. It works on every
	// Keycloak 26 without a preview feature.
	KeycloakMethodGet = "get"
	// KeycloakMethodPost is the identity brokering API v2 (Keycloak 26.7 and later, preview
	// feature identity-brokering-api:v2): a POST authenticated by the gateway's confidential
	// client, with the user's access token as token=.
	KeycloakMethodPost = "post"
)

// DefaultKeycloakTimeout bounds one call to Keycloak.
const DefaultKeycloakTimeout = 5 * time.Second

// Keycloak is the upstream token source http.mcp_auth.token_sources.keycloak: it obtains the
// GitHub token that Keycloak stored when the user signed in through its GitHub identity
// provider with "Store tokens" on, from the realm's broker token endpoint
// {realm}/broker/{alias}/token.
//
// Two request forms, both checked against a real Keycloak (internal/keycloaktest):
//
//   - "get" (the default): GET with the user's access token as bearer. Keycloak answers with
//     the token response GitHub gave it at sign-in, form-encoded or JSON. The user's token
//     must carry the broker client's read-token role (the identity provider's "Add read token
//     role on creation", or a default role). It needs no preview feature, and it is the only
//     form Keycloak 26.5 has.
//   - "post": the identity brokering API v2 of Keycloak 26.7 (preview feature
//     identity-brokering-api:v2, which turns the GET form off): POST token=<user's access
//     token> authenticated with the gateway's confidential client (ClientID, ClientSecret),
//     which needs the client attributes external.token.enabled and external.token.idp, and
//     must be in the token's aud. No per-user role is needed.
//
// Keycloak's answers map as follows: "not associated with identity provider" means the user
// has no GitHub link (ErrNoUpstreamToken, a 403 telling the user to link the account); an
// invalid token means Keycloak refused the user's token (ErrSubjectTokenRejected, a 401 so the
// client signs in again); a missing read-token role, refused client credentials, a disabled
// API, 5xx and transport failures mean the source is unavailable (a 503, logged as a fault
// naming the setting to fix).
//
// The stored token's expires_in is not used: Keycloak returns what GitHub said at sign-in, not
// the time left. The gateway's upstream cache TTL bounds how long a token is reused.
type Keycloak struct {
	// Realm is the realm's URL, e.g. "https://sso.example.com/realms/mcp". Default: Issuer.
	Realm string `json:"realm,omitempty"`

	// Alias is the identity provider's alias in the realm. Default "github".
	Alias string `json:"alias,omitempty"`

	// Method is "get" or "post" (see the type's documentation). Default "get".
	Method string `json:"method,omitempty"`

	// ClientID and ClientSecret are the gateway's confidential client, for "post".
	// Placeholders are resolved once at provisioning. Required with "post".
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`

	// Issuer is the issuer whose access tokens are sent to Keycloak; it must be one of the
	// mcp_auth handler's issuers. Default: the handler's issuer if it has exactly one.
	Issuer string `json:"issuer,omitempty"`

	// Timeout bounds one call to Keycloak. Default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// TrustPoolRaw is the CA pool trusted for the calls to Keycloak. Default: the system roots.
	TrustPoolRaw json.RawMessage `json:"tls_trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`

	endpoint string
	secret   string
	out      outbound
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Keycloak) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.mcp_auth.token_sources.keycloak",
		New: func() caddy.Module { return new(Keycloak) },
	}
}

// Provision resolves placeholders and sets defaults. The endpoint is derived in bindIssuers,
// once the issuer is known.
func (k *Keycloak) Provision(ctx caddy.Context) error {
	k.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	k.secret = repl.ReplaceAll(k.ClientSecret, "")
	k.ClientID = repl.ReplaceAll(k.ClientID, "")
	k.Realm = repl.ReplaceAll(k.Realm, "")
	if k.Alias == "" {
		k.Alias = "github"
	}
	if k.Method == "" {
		k.Method = KeycloakMethodGet
	}
	if k.Timeout == 0 {
		k.Timeout = caddy.Duration(DefaultKeycloakTimeout)
	}
	if k.out.now == nil {
		k.out.now = time.Now
	}
	if k.out.client == nil {
		roots, err := loadTrustPool(ctx, k, "TrustPoolRaw", k.TrustPoolRaw)
		if err != nil {
			return fmt.Errorf("mcp_auth: keycloak: %w", err)
		}
		k.out.client = newOutboundClient(outboundTransport(roots), time.Duration(k.Timeout))
	}
	k.setEndpoint()
	return nil
}

// setEndpoint derives the broker token endpoint from Realm (or Issuer).
func (k *Keycloak) setEndpoint() {
	realm := k.Realm
	if realm == "" {
		realm = k.Issuer
	}
	if realm != "" {
		k.endpoint = strings.TrimRight(realm, "/") + "/broker/" + url.PathEscape(k.Alias) + "/token"
	}
}

// Validate checks the configuration without revealing the secret.
func (k *Keycloak) Validate() error {
	if k.Realm != "" {
		if err := checkURL("keycloak realm", k.Realm); err != nil {
			return err
		}
	}
	switch k.Method {
	case KeycloakMethodGet:
	case KeycloakMethodPost:
		if k.ClientID == "" || k.secret == "" {
			return fmt.Errorf("mcp_auth: keycloak method post needs client_id and client_secret (is its environment variable set?)")
		}
	default:
		return fmt.Errorf("mcp_auth: keycloak method must be get or post, not %q", k.Method)
	}
	if strings.ContainsAny(k.Alias, "/?#") {
		return fmt.Errorf("mcp_auth: keycloak alias %q is not an identity provider alias", k.Alias)
	}
	if k.Timeout < 0 {
		return fmt.Errorf("mcp_auth: keycloak timeout must not be negative")
	}
	return nil
}

// bindIssuers implements issuerBinder: Issuer defaults to the handler's only issuer, and
// Realm to Issuer (a Keycloak issuer is its realm's URL).
func (k *Keycloak) bindIssuers(issuers []string) error {
	if k.Issuer == "" {
		if len(issuers) != 1 {
			return fmt.Errorf("keycloak issuer is required when mcp_auth has several issuers")
		}
		k.Issuer = issuers[0]
	} else if !containsString(issuers, k.Issuer) {
		return fmt.Errorf("keycloak issuer %q is not one of mcp_auth's issuers", k.Issuer)
	}
	k.setEndpoint()
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Cleanup closes idle connections.
func (k *Keycloak) Cleanup() error {
	if k.out.client != nil {
		k.out.client.CloseIdleConnections()
	}
	return nil
}

// UpstreamToken implements TokenSource.
func (k *Keycloak) UpstreamToken(ctx context.Context, claims *jwtverify.Claims, subjectToken string) (Token, error) {
	if claims == nil || claims.Issuer != k.Issuer {
		return Token{}, ErrNoUpstreamToken
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(k.Timeout))
	defer cancel()
	var req *http.Request
	var err error
	if k.Method == KeycloakMethodPost {
		req, err = newFormRequest(ctx, k.endpoint, url.Values{"token": {subjectToken}})
		if err == nil {
			req.SetBasicAuth(url.QueryEscape(k.ClientID), url.QueryEscape(k.secret))
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, k.endpoint, nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+subjectToken)
			req.Header.Set("Accept", "application/json")
		}
	}
	if err != nil {
		return Token{}, fmt.Errorf("%w: building the Keycloak request failed", ErrSourceUnavailable)
	}
	resp, err := k.out.do(req, "Keycloak broker token endpoint")
	if err != nil {
		return Token{}, err
	}
	if resp.status == http.StatusOK {
		tok := brokeredAccessToken(resp.body)
		if tok == "" {
			return Token{}, fmt.Errorf("%w: Keycloak returned 200 without an access_token", ErrSourceUnavailable)
		}
		return Token{Value: tok}, nil
	}
	return Token{}, k.classify(resp)
}

// brokeredAccessToken reads access_token from the stored token response, which Keycloak
// returns as GitHub gave it: form-encoded (GitHub's default) or JSON, whatever the
// Content-Type says.
func brokeredAccessToken(body []byte) string {
	if b := strings.TrimSpace(string(body)); strings.HasPrefix(b, "{") {
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(body, &tr) == nil {
			return tr.AccessToken
		}
		return ""
	}
	v, err := url.ParseQuery(strings.TrimSpace(string(body)))
	if err != nil {
		return ""
	}
	return v.Get("access_token")
}

// keycloakError is Keycloak's error body: errorMessage (the GET form) or RFC 6749's error and
// error_description (the POST form).
type keycloakError struct {
	ErrorMessage     string `json:"errorMessage"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// classify maps a non-200 answer to the TokenSource errors. The messages matched are the ones
// the real server gives (pinned in internal/keycloaktest).
func (k *Keycloak) classify(resp response) error {
	var e keycloakError
	_ = json.Unmarshal(resp.body, &e)
	text := e.ErrorMessage + " " + e.ErrorDescription
	code := safeCode(e.Error)
	switch {
	case resp.status == http.StatusBadRequest && strings.Contains(text, "not associated"):
		return ErrNoUpstreamToken
	case resp.status == http.StatusUnauthorized && k.Method == KeycloakMethodGet,
		resp.status == http.StatusBadRequest && (strings.Contains(text, "Invalid token") || code == "invalid_token"):
		return ErrSubjectTokenRejected
	case resp.status == http.StatusBadRequest && strings.Contains(text, "Identity Brokering API feature not enabled"):
		return fmt.Errorf("%w: Keycloak has the identity brokering API v2 on, which turns the GET form off: set method post", ErrSourceUnavailable)
	case resp.status == http.StatusForbidden && k.Method == KeycloakMethodGet:
		return fmt.Errorf("%w: Keycloak refused to hand out the stored token (403): the user's access token needs the broker client's read-token role (identity provider setting \"Add read token role on creation\")", ErrSourceUnavailable)
	case resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden:
		return fmt.Errorf("%w: Keycloak refused the gateway's client (%d %s): check client_id, client_secret and the client's external.token.enabled and external.token.idp attributes", ErrSourceUnavailable, resp.status, code)
	case resp.status == http.StatusNotFound:
		return fmt.Errorf("%w: Keycloak has no broker token endpoint at the configured realm and alias (404), or this version lacks method %s", ErrSourceUnavailable, k.Method)
	default:
		return fmt.Errorf("%w: Keycloak answered %d %s", ErrSourceUnavailable, resp.status, code)
	}
}

// Interface guards
var (
	_ TokenSource           = (*Keycloak)(nil)
	_ issuerBinder          = (*Keycloak)(nil)
	_ caddy.CleanerUpper    = (*Keycloak)(nil)
	_ caddy.Provisioner     = (*Keycloak)(nil)
	_ caddy.Validator       = (*Keycloak)(nil)
	_ caddyfile.Unmarshaler = (*Keycloak)(nil)
)
