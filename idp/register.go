package idp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/loopback"
)

const maxRegistrationBody = 16 << 10

// handleRegister is RFC 7591 dynamic client registration. The per-address limiter runs first and
// counts every attempt, failed ones included, so initial access token guesses are rate-limited too.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.regLimiter.allow(remoteIP(r)); !ok {
		s.log.Info("registration rate limited", "remote", remoteIP(r))
		// 429 with Retry-After: the seconds until this address's window ends.
		e := errTooManyRequests("too many registration attempts from this address; see Retry-After")
		e.retryAfter = retryAfterSecs(wait)
		writeOAuthError(w, e)
		return
	}
	if tok := s.opts.RegistrationInitialToken; tok != "" {
		if !constantTimeEqual(bearerToken(r), tok) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeOAuthError(w, errInvalidToken("a valid initial access token is required"))
			return
		}
	}
	md, oerr := s.readClientMetadata(w, r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	rec := clientRecord{
		ClientID: base64.RawURLEncoding.EncodeToString(randomBytes(16)),
		IssuedAt: s.opts.Now().Unix(),
		Metadata: *md,
	}
	var secret string
	if md.TokenEndpointAuthMethod != "none" {
		secret = randomToken()
		rec.SecretHash = hashSecret(secret)
	}
	rat := randomToken()
	rec.RegTokenHash = hashSecret(rat)
	if err := s.db.CreateClient(r.Context(), rec, s.opts.MaxClients); err != nil {
		if errors.Is(err, ErrLimitReached) {
			s.log.Error("client cap reached", "max_clients", s.opts.MaxClients)
			writeOAuthError(w, newOAuthError(http.StatusForbidden, "access_denied", "the server accepts no more client registrations"))
			return
		}
		s.log.Error("store client", "error", err)
		writeOAuthError(w, errStorage(err))
		return
	}
	s.log.Info("client registered", "client_id", rec.ClientID, "client_name", md.ClientName)
	writeJSON(w, http.StatusCreated, s.clientResponse(&rec, secret, rat))
}

// clientResponseBody is the RFC 7591 §3.2.1 client information response: the registered
// metadata plus the issued identifiers. It is a struct, not a map, so the answer is encoded once,
// without a round trip through a map.
type clientResponseBody struct {
	clientMetadata
	ClientID                string `json:"client_id"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"` // 0 (never) when a secret is sent
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
}

func (s *Server) clientResponse(rec *clientRecord, secret, rat string) *clientResponseBody {
	out := &clientResponseBody{
		clientMetadata:          rec.Metadata,
		ClientID:                rec.ClientID,
		ClientIDIssuedAt:        rec.IssuedAt,
		RegistrationAccessToken: rat,
		RegistrationClientURI:   s.endpoint("/register/" + url.PathEscape(rec.ClientID)),
	}
	if secret != "" {
		out.ClientSecret = secret
		out.ClientSecretExpiresAt = new(int64)
	}
	return out
}

// readClientMetadata reads and validates a registration body: size, redirect URIs, grant types,
// auth method.
func (s *Server) readClientMetadata(w http.ResponseWriter, r *http.Request) (*clientMetadata, *oauthError) {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return nil, errInvalidClientMetadata("Content-Type must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
	if err != nil {
		return nil, errInvalidClientMetadata("request body too large or unreadable")
	}
	var md clientMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, errInvalidClientMetadata("request body is not a JSON client metadata object")
	}
	if oerr := validateClientMetadata(&s.opts, &md); oerr != nil {
		return nil, oerr
	}
	return &md, nil
}

func validateClientMetadata(opts *Options, md *clientMetadata) *oauthError {
	if len(md.GrantTypes) == 0 {
		md.GrantTypes = []string{grantAuthorizationCode}
	}
	for _, g := range md.GrantTypes {
		if g != grantAuthorizationCode && g != grantRefreshToken {
			return errInvalidClientMetadata("unsupported grant type " + quoteShort(g))
		}
	}
	if len(md.ResponseTypes) == 0 {
		md.ResponseTypes = []string{"code"}
	}
	for _, rt := range md.ResponseTypes {
		if rt != "code" {
			return errInvalidClientMetadata("unsupported response type " + quoteShort(rt))
		}
	}
	if !slices.Contains(md.GrantTypes, grantAuthorizationCode) {
		return errInvalidClientMetadata("grant_types must include authorization_code")
	}
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = "client_secret_basic" // RFC 7591 §2 default
	}
	switch md.TokenEndpointAuthMethod {
	case "none", "client_secret_basic", "client_secret_post":
	default:
		return errInvalidClientMetadata("unsupported token_endpoint_auth_method " + quoteShort(md.TokenEndpointAuthMethod))
	}
	switch md.ApplicationType {
	case "":
		md.ApplicationType = "web"
	case "web", "native":
	default:
		return errInvalidClientMetadata("application_type must be web or native")
	}
	if len(md.RedirectURIs) == 0 {
		return errInvalidRedirectURI("redirect_uris is required")
	}
	if len(md.RedirectURIs) > opts.MaxRedirectURIs {
		return errInvalidClientMetadata("too many redirect_uris")
	}
	for _, u := range md.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return errInvalidRedirectURI(err.Error())
		}
	}
	if len([]rune(md.ClientName)) > 200 {
		return errInvalidClientMetadata("client_name is too long")
	}
	if len(md.Contacts) > 10 {
		return errInvalidClientMetadata("too many contacts")
	}
	for name, v := range map[string]string{"client_uri": md.ClientURI, "logo_uri": md.LogoURI, "tos_uri": md.TOSURI, "policy_uri": md.PolicyURI} {
		if v == "" {
			continue
		}
		if len(v) > 2000 {
			return errInvalidClientMetadata(name + " is too long")
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname()))) || u.Host == "" {
			return errInvalidClientMetadata(name + " must be an https URL")
		}
	}
	// Scopes we do not offer are dropped (RFC 7591 §2: the server may replace requested values).
	var kept []string
	for _, sc := range strings.Fields(md.Scope) {
		if slices.Contains(opts.Scopes, sc) && !slices.Contains(kept, sc) {
			kept = append(kept, sc)
		}
	}
	md.Scope = strings.Join(kept, " ")
	return nil
}

// quoteShort quotes a client-supplied value for an error description, truncated.
func quoteShort(v string) string {
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

var errBadRegistrationToken = errors.New("bad registration access token")

// handleClientConfig is RFC 7592: read, update and delete with the registration access token.
func (s *Server) handleClientConfig(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("client_id")
	rec, err := s.db.GetClient(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("load client", "error", err)
		writeOAuthError(w, errStorage(err))
		return
	}
	tok := bearerToken(r)
	// Compare against a dummy hash for unknown clients so timing does not reveal existence.
	stored := rec.RegTokenHash
	if stored == "" {
		stored = hashSecret("unknown-client")
	}
	if tok == "" || !secretMatches(tok, stored) || errors.Is(err, ErrNotFound) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, errInvalidToken("invalid registration access token"))
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.clientResponse(&rec, "", ""))
	case http.MethodDelete:
		// Revoke every grant the client holds first: a deleted client's refresh tokens, and the
		// access tokens of those families, must stop working (exchange, introspection). If this
		// fails the client stays, so the deletion can be retried.
		if err := s.db.RevokeClientFamilies(ctx, id); err != nil {
			s.log.Error("revoke deleted client's grants", "error", err)
			writeOAuthError(w, errStorage(err))
			return
		}
		if existed, err := s.db.DeleteClient(ctx, id); err != nil {
			s.log.Error("delete client", "error", err)
			if !existed { // deleted but its place under the cap not given back: still deleted
				writeOAuthError(w, errStorage(err))
				return
			}
		}
		s.log.Info("client deleted", "client_id", id)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
		if err != nil {
			writeOAuthError(w, errInvalidClientMetadata("request body too large or unreadable"))
			return
		}
		var raw struct {
			ClientID string `json:"client_id"`
		}
		var md clientMetadata
		if json.Unmarshal(body, &raw) != nil || json.Unmarshal(body, &md) != nil {
			writeOAuthError(w, errInvalidClientMetadata("request body is not a JSON client metadata object"))
			return
		}
		if raw.ClientID != id {
			writeOAuthError(w, errInvalidClientMetadata("client_id in the body must match the URL"))
			return
		}
		if oerr := validateClientMetadata(&s.opts, &md); oerr != nil {
			writeOAuthError(w, oerr)
			return
		}
		// Apply the update to the record as it is now, in one atomic step: a client deleted since
		// it was read above must not be resurrected.
		var secret string
		rec, err = s.db.UpdateClient(ctx, id, func(c *clientRecord) error {
			secret = ""
			if md.TokenEndpointAuthMethod == "none" {
				c.SecretHash = ""
			} else if c.SecretHash == "" {
				secret = randomToken()
				c.SecretHash = hashSecret(secret)
			}
			c.Metadata = md
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeOAuthError(w, errInvalidToken("invalid registration access token"))
			return
		}
		if err != nil {
			s.log.Error("store client", "error", err)
			writeOAuthError(w, errStorage(err))
			return
		}
		writeJSON(w, http.StatusOK, s.clientResponse(&rec, secret, ""))
	}
}
