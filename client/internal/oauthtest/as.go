// Package oauthtest provides in-process fakes for the client's tests: an OAuth 2.1
// authorization server (RFC 8414 / OIDC discovery, RFC 7591 registration, optional Client ID
// Metadata Documents, authorization code with PKCE S256, RFC 8707 resources, RFC 9207 iss,
// rotating refresh tokens, RFC 7009 revocation) and a protected MCP resource (RFC 9728
// metadata, RFC 6750 challenges) around an mcp-go server. They follow the RFC shapes, not any
// particular product.
package oauthtest

// The fake authorization server is one file so that a test reads its whole behaviour, every
// knob a client test turns, in one place; it is test code, which is why it passes 500 lines.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ASOptions shapes the fake authorization server. The zero value is a well-behaved server at
// the origin root with registration, iss support and RFC 8414 metadata.
type ASOptions struct {
	// IssuerPath gives the issuer a path, e.g. "/t1".
	IssuerPath string
	// OIDCOnly serves only OpenID Connect discovery documents (path-appended and, for an
	// issuer with a path, also the RFC 8414 §5-style inserted form).
	OIDCOnly bool
	// MetadataIssuer overrides the issuer named in the metadata (mismatch tests).
	MetadataIssuer string
	// MetadataIssuerSlash appends "/" to the issuer named in the metadata.
	MetadataIssuerSlash bool
	// NoS256 omits code_challenge_methods_supported.
	NoS256 bool
	// NoIssSupport does not advertise authorization_response_iss_parameter_supported and does
	// not send iss.
	NoIssSupport bool
	// WrongIss sends a foreign iss in the authorization response.
	WrongIss bool
	// WrongState sends a different state in the authorization response.
	WrongState bool
	// NoRegistration omits the registration endpoint.
	NoRegistration bool
	// RefuseRegistration answers every registration with 400 invalid_client_metadata.
	RefuseRegistration bool
	// RegistrationToken, when set, is required as the bearer of registration requests.
	RegistrationToken string
	// ExactRedirect compares redirect URIs exactly instead of RFC 8252 any-port loopback matching.
	ExactRedirect bool
	// ScopesSupported is the metadata's scopes_supported; default none listed.
	ScopesSupported []string
	// WithheldScopes are never granted, even when requested (step-up limit tests).
	WithheldScopes []string
	// NoRevocation omits the revocation endpoint from the metadata.
	NoRevocation bool
	// RevocationFails answers every revocation with 503.
	RevocationFails bool
	// RevokeGrant makes revoking a refresh token revoke every token of that client, as servers
	// that revoke the whole grant do (Auth0; Keycloak drops the client session).
	RevokeGrant bool
	// ClientIDMetadataDocuments advertises client_id_metadata_document_supported and accepts an
	// http(s) URL as client_id: the document there is fetched on every use (no cache) with
	// DocumentClient, must name that URL as client_id and carry no secret, and its
	// redirect_uris are matched like registered ones (any port for loopback).
	ClientIDMetadataDocuments bool
	// DocumentClient fetches client metadata documents; default a client with a 5s timeout.
	DocumentClient *http.Client
	// JWTAccessTokens issues access tokens shaped as RFC 9068 JWTs (header typ at+jwt; claims
	// iss, sub, aud, client_id, scope, iat, exp, jti), so a client can read their aud. The
	// signature is random bytes: the fake resource looks tokens up by value and verifies
	// nothing.
	JWTAccessTokens bool
	// IgnoreResource, when set, is the audience of every access token issued, whatever resource
	// the client asked for, as an authorization server that ignores RFC 8707 issues tokens for
	// its own default audience. Refresh tokens keep the requested resource.
	IgnoreResource string
	// AccessTTL is the access token lifetime; default 1h.
	AccessTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Grant is what an access or refresh token stands for.
type Grant struct {
	ClientID string
	Scopes   []string
	Resource string
	Expiry   time.Time
	Family   string
}

// ClientIDUse is a client_id the server saw at one of its endpoints.
type ClientIDUse struct {
	// Endpoint is "authorize", "token" or "revoke".
	Endpoint string
	// ClientID is the client_id sent (as a parameter or in Basic authentication).
	ClientID string
}

type regClient struct {
	id, secret   string
	redirectURIs []string
	scope        string
}

type code struct {
	grant       Grant
	redirectURI string
	challenge   string
	expiry      time.Time
}

// AS is the fake authorization server. Counters and records are safe to read after the
// requests that produce them have completed.
type AS struct {
	Server *httptest.Server
	Issuer string
	opts   ASOptions

	mu            sync.Mutex
	clients       map[string]*regClient
	codes         map[string]*code
	access        map[string]*Grant
	refresh       map[string]*Grant
	revoked       []string // token_type_hint of each revocation
	registrations []map[string]any
	authorizes    []url.Values
	tokenForms    []url.Values
	metadataHits  []string
	registerHits  int
	clientIDUses  []ClientIDUse
	docFetches    []string
	refuseNew     bool
	rejectAtToken bool
}

// NewAS starts a fake authorization server, stopped at the end of the test.
func NewAS(t testing.TB, opts ASOptions) *AS {
	t.Helper()
	if opts.AccessTTL == 0 {
		opts.AccessTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DocumentClient == nil {
		opts.DocumentClient = &http.Client{Timeout: 5 * time.Second}
	}
	a := &AS{
		opts: opts, clients: map[string]*regClient{}, codes: map[string]*code{},
		access: map[string]*Grant{}, refresh: map[string]*Grant{},
	}
	// Fields the handler reads are set before the server starts serving.
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.Issuer = "http://" + a.Server.Listener.Addr().String() + opts.IssuerPath
	a.Server.Start()
	t.Cleanup(a.Server.Close)
	return a
}

// AddClient pre-registers a client (secret "" for a public client) with redirect URIs.
func (a *AS) AddClient(id, secret string, redirectURIs ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clients[id] = &regClient{id: id, secret: secret, redirectURIs: redirectURIs}
}

// Validate returns the grant of a live access token.
func (a *AS) Validate(token string) (Grant, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.access[token]
	if !ok || !a.opts.Now().Before(g.Expiry) {
		return Grant{}, false
	}
	return *g, true
}

// ValidRefresh reports whether a refresh token is live (not rotated away or revoked).
func (a *AS) ValidRefresh(token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refresh[token] != nil
}

// InvalidateAccessTokens makes every issued access token invalid (refresh tokens stay).
func (a *AS) InvalidateAccessTokens() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.access)
}

// InvalidateAll makes every issued token invalid.
func (a *AS) InvalidateAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.access)
	clear(a.refresh)
}

// RefuseNewAccessTokens makes access tokens issued from now on invalid at once, as when the
// resource server cannot verify the issuer's tokens.
func (a *AS) RefuseNewAccessTokens() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refuseNew = true
}

// RejectClientsAtToken makes the token endpoint answer invalid_client from now on, as a server
// that forgot the client between the authorization and the code exchange.
func (a *AS) RejectClientsAtToken() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rejectAtToken = true
}

// ForgetClients drops every registered client, as an authorization server whose data was reset.
func (a *AS) ForgetClients() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.clients)
}

// Registrations returns the bodies of the registration requests received.
func (a *AS) Registrations() []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.registrations)
}

// Authorizes returns the query parameters of the authorization requests received.
func (a *AS) Authorizes() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.authorizes)
}

// TokenForms returns the forms posted to the token endpoint.
func (a *AS) TokenForms() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.tokenForms)
}

// Revoked returns the token_type_hint of each authenticated revocation request, in order.
func (a *AS) Revoked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.revoked)
}

// RegisterHits returns how many requests reached the registration endpoint, valid or not.
func (a *AS) RegisterHits() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registerHits
}

// ClientIDUses returns the client_id of each authorization, token and revocation request, in
// order.
func (a *AS) ClientIDUses() []ClientIDUse {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.clientIDUses)
}

// DocumentFetches returns the client metadata document URLs fetched, in order.
func (a *AS) DocumentFetches() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.docFetches)
}

// MetadataHits returns the metadata paths requested, in order.
func (a *AS) MetadataHits() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.metadataHits)
}

func (a *AS) metadataPaths() []string {
	p := a.opts.IssuerPath
	if a.opts.OIDCOnly {
		if p == "" {
			return []string{"/.well-known/openid-configuration"}
		}
		return []string{p + "/.well-known/openid-configuration"}
	}
	return []string{"/.well-known/oauth-authorization-server" + p}
}

func (a *AS) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.Contains(p, "/.well-known/") {
		a.mu.Lock()
		a.metadataHits = append(a.metadataHits, p)
		a.mu.Unlock()
		if slices.Contains(a.metadataPaths(), p) {
			a.metadata(w)
			return
		}
		http.NotFound(w, r)
		return
	}
	switch strings.TrimPrefix(p, a.opts.IssuerPath) {
	case "/register":
		a.register(w, r)
	case "/authorize":
		a.authorize(w, r)
	case "/token":
		a.token(w, r)
	case "/revoke":
		a.revoke(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (a *AS) metadata(w http.ResponseWriter) {
	iss := a.Issuer
	if a.opts.MetadataIssuer != "" {
		iss = a.opts.MetadataIssuer
	}
	if a.opts.MetadataIssuerSlash {
		iss += "/"
	}
	md := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                a.Issuer + "/authorize",
		"token_endpoint":                        a.Issuer + "/token",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_basic", "client_secret_post"},
	}
	if a.opts.ScopesSupported != nil {
		md["scopes_supported"] = a.opts.ScopesSupported
	}
	if !a.opts.NoS256 {
		md["code_challenge_methods_supported"] = []string{"S256"}
	}
	if !a.opts.NoIssSupport {
		md["authorization_response_iss_parameter_supported"] = true
	}
	if !a.opts.NoRegistration {
		md["registration_endpoint"] = a.Issuer + "/register"
	}
	if !a.opts.NoRevocation {
		md["revocation_endpoint"] = a.Issuer + "/revoke"
	}
	if a.opts.ClientIDMetadataDocuments {
		md["client_id_metadata_document_supported"] = true
	}
	writeJSON(w, http.StatusOK, md)
}

func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *AS) register(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.registerHits++
	a.mu.Unlock()
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if a.opts.RegistrationToken != "" && r.Header.Get("Authorization") != "Bearer "+a.opts.RegistrationToken {
		oauthErr(w, http.StatusUnauthorized, "invalid_token", "initial access token required")
		return
	}
	var body map[string]any
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		oauthErr(w, http.StatusBadRequest, "invalid_client_metadata", "bad JSON")
		return
	}
	a.mu.Lock()
	a.registrations = append(a.registrations, body)
	a.mu.Unlock()
	if a.opts.RefuseRegistration {
		oauthErr(w, http.StatusBadRequest, "invalid_client_metadata", "registration is closed <b>here</b>")
		return
	}
	var uris []string
	if list, ok := body["redirect_uris"].([]any); ok {
		for _, u := range list {
			if s, ok := u.(string); ok {
				uris = append(uris, s)
			}
		}
	}
	if len(uris) == 0 {
		oauthErr(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris required")
		return
	}
	if body["token_endpoint_auth_method"] != "none" {
		oauthErr(w, http.StatusBadRequest, "invalid_client_metadata", "only public clients")
		return
	}
	id := "client-" + random()
	scope, _ := body["scope"].(string)
	a.mu.Lock()
	a.clients[id] = &regClient{id: id, redirectURIs: uris, scope: scope}
	a.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"client_id": id, "redirect_uris": uris, "token_endpoint_auth_method": "none",
		"grant_types": body["grant_types"], "client_name": body["client_name"],
	})
}

// redirectAllowed applies RFC 8252 §7.3: a registered loopback IP redirect matches any port.
func (a *AS) redirectAllowed(c *regClient, got string) bool {
	if slices.Contains(c.redirectURIs, got) {
		return true
	}
	if a.opts.ExactRedirect {
		return false
	}
	gu, err := url.Parse(got)
	if err != nil || gu.Scheme != "http" || gu.Hostname() != "127.0.0.1" {
		return false
	}
	for _, reg := range c.redirectURIs {
		ru, err := url.Parse(reg)
		if err != nil || ru.Hostname() != "127.0.0.1" {
			continue
		}
		if ru.Scheme == gu.Scheme && ru.Path == gu.Path && ru.RawQuery == gu.RawQuery {
			return true
		}
	}
	return false
}

func (a *AS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	a.authorizes = append(a.authorizes, q)
	a.clientIDUses = append(a.clientIDUses, ClientIDUse{"authorize", q.Get("client_id")})
	a.mu.Unlock()
	c := a.lookupClient(q.Get("client_id"))
	if c == nil || !a.redirectAllowed(c, q.Get("redirect_uri")) {
		http.Error(w, "unknown client or redirect URI", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(q.Get("redirect_uri"))
	resp := url.Values{}
	state := q.Get("state")
	if a.opts.WrongState {
		state = "forged-" + state
	}
	resp.Set("state", state)
	switch {
	case a.opts.WrongIss:
		resp.Set("iss", "https://attacker.example")
	case !a.opts.NoIssSupport:
		resp.Set("iss", a.Issuer)
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		resp.Set("error", "invalid_request")
		resp.Set("error_description", "PKCE S256 and response_type=code required")
	} else if q.Has("scope") && strings.TrimSpace(q.Get("scope")) == "" {
		resp.Set("error", "invalid_scope")
		resp.Set("error_description", "empty scope")
	} else {
		cd := random()
		a.mu.Lock()
		a.codes[cd] = &code{
			grant:       Grant{ClientID: c.id, Scopes: a.grantable(strings.Fields(q.Get("scope"))), Resource: q.Get("resource")},
			redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
			expiry: a.opts.Now().Add(time.Minute),
		}
		a.mu.Unlock()
		resp.Set("code", cd)
	}
	back.RawQuery = resp.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (a *AS) grantable(scopes []string) []string {
	return slices.DeleteFunc(scopes, func(s string) bool { return slices.Contains(a.opts.WithheldScopes, s) })
}

// lookupClient returns a registered client or, with ClientIDMetadataDocuments, the client
// described by the document at an http(s) client_id; nil when there is none.
func (a *AS) lookupClient(id string) *regClient {
	a.mu.Lock()
	c := a.clients[id]
	a.mu.Unlock()
	if c != nil || !a.opts.ClientIDMetadataDocuments {
		return c
	}
	u, err := url.Parse(id)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path == "" {
		return nil
	}
	a.mu.Lock()
	a.docFetches = append(a.docFetches, id)
	a.mu.Unlock()
	resp, err := a.opts.DocumentClient.Get(id)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var doc struct {
		ClientID     string   `json:"client_id"`
		ClientSecret string   `json:"client_secret"`
		RedirectURIs []string `json:"redirect_uris"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc) != nil {
		return nil
	}
	if doc.ClientID != id || doc.ClientSecret != "" || (doc.AuthMethod != "" && doc.AuthMethod != "none") || len(doc.RedirectURIs) == 0 {
		return nil
	}
	return &regClient{id: id, redirectURIs: doc.RedirectURIs}
}

// clientAuth authenticates the client of a token or revocation request and records its
// client_id under endpoint.
func (a *AS) clientAuth(r *http.Request, endpoint string) (*regClient, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	a.mu.Lock()
	a.clientIDUses = append(a.clientIDUses, ClientIDUse{endpoint, id})
	a.mu.Unlock()
	c := a.lookupClient(id)
	if c == nil || c.secret != secret {
		return nil, false
	}
	return c, true
}

func (a *AS) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "POST form required")
		return
	}
	a.mu.Lock()
	a.tokenForms = append(a.tokenForms, r.PostForm)
	a.mu.Unlock()
	c, ok := a.clientAuth(r, "token")
	a.mu.Lock()
	reject := a.rejectAtToken
	a.mu.Unlock()
	if !ok || reject {
		oauthErr(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	f := r.PostForm
	var g Grant
	switch f.Get("grant_type") {
	case "authorization_code":
		a.mu.Lock()
		cd := a.codes[f.Get("code")]
		delete(a.codes, f.Get("code"))
		a.mu.Unlock()
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case cd == nil || cd.grant.ClientID != c.id || !a.opts.Now().Before(cd.expiry):
			oauthErr(w, http.StatusBadRequest, "invalid_grant", "bad code")
			return
		case cd.redirectURI != f.Get("redirect_uri"):
			oauthErr(w, http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != cd.challenge:
			oauthErr(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		case f.Get("resource") != cd.grant.Resource:
			oauthErr(w, http.StatusBadRequest, "invalid_target", "resource differs from the authorization request")
			return
		}
		g = cd.grant
		g.Family = random()
	case "refresh_token":
		a.mu.Lock()
		old := a.refresh[f.Get("refresh_token")]
		delete(a.refresh, f.Get("refresh_token")) // rotation
		a.mu.Unlock()
		if old == nil || old.ClientID != c.id {
			oauthErr(w, http.StatusBadRequest, "invalid_grant", "bad refresh token")
			return
		}
		if f.Get("resource") != old.Resource {
			oauthErr(w, http.StatusBadRequest, "invalid_target", "resource differs from the grant")
			return
		}
		g = *old
	default:
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	g.Expiry = a.opts.Now().Add(a.opts.AccessTTL)
	ag, rg := g, g
	if a.opts.IgnoreResource != "" {
		ag.Resource = a.opts.IgnoreResource
	}
	at, rt := "at-"+random(), "rt-"+random()
	if a.opts.JWTAccessTokens {
		at = a.jwtAccessToken(ag)
	}
	a.mu.Lock()
	if !a.refuseNew {
		a.access[at] = &ag
	}
	a.refresh[rt] = &rg
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "Bearer", "refresh_token": rt,
		"expires_in": int(a.opts.AccessTTL / time.Second), "scope": strings.Join(g.Scopes, " "),
	})
}

func (a *AS) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "POST form required")
		return
	}
	c, ok := a.clientAuth(r, "revoke")
	if !ok {
		oauthErr(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if a.opts.RevocationFails {
		http.Error(w, "revocation is down", http.StatusServiceUnavailable)
		return
	}
	tok := r.PostForm.Get("token")
	a.mu.Lock()
	defer a.mu.Unlock()
	if g := a.refresh[tok]; g != nil && g.ClientID == c.id && a.opts.RevokeGrant {
		for _, m := range []map[string]*Grant{a.refresh, a.access} {
			for k, v := range m {
				if v.ClientID == c.id {
					delete(m, k)
				}
			}
		}
	} else if g != nil && g.ClientID == c.id {
		delete(a.refresh, tok)
		for k, v := range a.access { // the grant's access tokens go with it
			if v.Family == g.Family {
				delete(a.access, k)
			}
		}
	} else if g := a.access[tok]; g != nil && g.ClientID == c.id {
		delete(a.access, tok)
	}
	a.revoked = append(a.revoked, r.PostForm.Get("token_type_hint"))
	w.WriteHeader(http.StatusOK)
}

// jwtAccessToken returns an RFC 9068-shaped access token for g with a random signature.
func (a *AS) jwtAccessToken(g Grant) string {
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := a.opts.Now()
	return seg(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "fake"}) + "." +
		seg(map[string]any{"iss": a.Issuer, "sub": "user-1", "aud": g.Resource, "client_id": g.ClientID,
			"scope": strings.Join(g.Scopes, " "), "iat": now.Unix(), "exp": g.Expiry.Unix(), "jti": random()}) +
		"." + random() + random()
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
