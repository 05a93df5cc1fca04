package idp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Enterprise-managed authorization (the MCP ext-auth extension
// io.modelcontextprotocol/enterprise-managed-authorization): an MCP client that signed in at the
// company's IdP exchanges its ID token there (RFC 8693) for an Identity Assertion JWT
// Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant), and presents it
// here with the RFC 7523 jwt-bearer grant. We check it as the extension's §5.1, §7.4 and §7.6
// require and issue an access token for the ID-JAG's resource, without a browser and without a
// refresh token (the client asks its IdP for a new ID-JAG instead, so the IdP keeps deciding).
//
// What go-oidc does: the trusted IdP's key set (JWKS fetch on an unknown kid, cached), the
// signature with the trust's algorithm allow-list (never "none"), iss and exp. What we add: typ,
// aud = our issuer, client_id = the authenticated client and one the trust allows, iat, a bounded
// lifetime, resource (one we serve), scope, and jti single use.

const (
	grantJWTBearer    = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantProfileIDJAG = "urn:ietf:params:oauth:grant-profile:id-jag"
	typIDJAG          = "oauth-id-jag+jwt"
)

// IDJAGTrust is an enterprise IdP whose ID-JAGs this server accepts.
type IDJAGTrust struct {
	// Issuer is the IdP's issuer identifier, compared exactly with the ID-JAG's iss. Required.
	Issuer string
	// JWKSURL is where the IdP publishes its signing keys. Required (https in production).
	JWKSURL string
	// ClientIDs are the client_id values (clients of this server: registered ids or Client ID
	// Metadata Document URLs) that may present this IdP's ID-JAGs. Required, at least one.
	ClientIDs []string
	// Algorithms allowed for the ID-JAG signature. Default ["RS256", "ES256"].
	Algorithms []string
	// MaxLifetime bounds exp: an ID-JAG valid for longer from now is refused (it also bounds how
	// long its jti is remembered). Default 1h.
	MaxLifetime time.Duration
	// HTTPClient fetches the JWKS. Default: Options.HTTPClient.
	HTTPClient *http.Client
}

func (t *IDJAGTrust) setDefaults(def *http.Client) error {
	for _, u := range []string{t.Issuer, t.JWKSURL} {
		pu, err := url.Parse(u)
		if u == "" || err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return fmt.Errorf("idp: ID-JAG trust %q: Issuer and JWKSURL must be absolute http(s) URLs", t.Issuer)
		}
	}
	if len(t.ClientIDs) == 0 {
		return fmt.Errorf("idp: ID-JAG trust %q: list the ClientIDs that may present its ID-JAGs", t.Issuer)
	}
	if len(t.Algorithms) == 0 {
		t.Algorithms = []string{oidc.RS256, oidc.ES256}
	}
	for _, a := range t.Algorithms {
		if a == "" || strings.EqualFold(a, "none") || strings.HasPrefix(a, "HS") {
			return fmt.Errorf("idp: ID-JAG trust %q: algorithm %q is not allowed (asymmetric only)", t.Issuer, a)
		}
	}
	if t.MaxLifetime < 0 {
		return fmt.Errorf("idp: ID-JAG trust %q: MaxLifetime must not be negative", t.Issuer)
	}
	if t.MaxLifetime == 0 {
		t.MaxLifetime = time.Hour
	}
	if t.HTTPClient == nil {
		t.HTTPClient = def
	}
	return nil
}

// idjagTrust is the runtime state of one IDJAGTrust.
type idjagTrust struct {
	cfg      *IDJAGTrust
	verifier *oidc.IDTokenVerifier
}

func newIDJAGTrust(ctx context.Context, cfg *IDJAGTrust, now func() time.Time) *idjagTrust {
	// The key set keeps ctx for its later fetches: the server's context, cancelled by Close.
	ks := &cooldownKeySet{
		next: oidc.NewRemoteKeySet(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.JWKSURL),
		now:  now, known: map[string]bool{},
	}
	return &idjagTrust{cfg: cfg, verifier: oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
		SkipClientIDCheck:    true, // aud is our issuer, checked below, not a client id
		SupportedSigningAlgs: cfg.Algorithms,
		Now:                  now,
	})}
}

// cooldownKeySet closes a gap of go-oidc's RemoteKeySet, which fetches the JWKS again for every
// token with an unknown kid: anyone may post assertions naming random kids, and each would make
// us call the enterprise IdP. A kid that has verified before is always passed on; an unknown one
// is passed on (and may cause a fetch) at most once per jwksCooldown, else refused unverified.
// A real key rotation costs at most one cooldown of refusals. Only assertions that pass
// idjagPrecheck get here, so only a client the trust lists, authenticated, can use up the
// cooldown; anyone else's made-up kids never reach it.
type cooldownKeySet struct {
	next oidc.KeySet
	now  func() time.Time

	mu        sync.Mutex
	known     map[string]bool // kids that verified (bounded: an IdP publishes a few keys)
	lastTried time.Time       // last time an unknown kid was passed on
}

const jwksCooldown = 10 * time.Second

var errKeyCooldown = errors.New("idp: unknown signing key; not fetching keys again yet")

// VerifySignature implements oidc.KeySet.
func (k *cooldownKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	hdr, _, ok := jwtParts(jwt)
	var h struct {
		Kid string `json:"kid"`
	}
	if !ok || json.Unmarshal(hdr, &h) != nil {
		return nil, errors.New("idp: malformed JWT")
	}
	k.mu.Lock()
	if !k.known[h.Kid] {
		if now := k.now(); now.Sub(k.lastTried) < jwksCooldown {
			k.mu.Unlock()
			return nil, errKeyCooldown
		} else {
			k.lastTried = now
		}
	}
	k.mu.Unlock()
	payload, err := k.next.VerifySignature(ctx, jwt)
	if err == nil {
		k.mu.Lock()
		if len(k.known) < 64 {
			k.known[h.Kid] = true
		}
		k.mu.Unlock()
	}
	return payload, err
}

type idjagClaims struct {
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	Resource any    `json:"resource"`
	Scope    string `json:"scope"`
	JTI      string `json:"jti"`
	IssuedAt *int64 `json:"iat"`
	Email    string `json:"email"`
}

// grantIDJAG is the jwt-bearer grant with an ID-JAG as the assertion. Every refusal is
// invalid_grant (RFC 7523 §3.1 and the extension's §7.6.2) except a scope outside the grant
// (invalid_scope) and a client that may not use it (unauthorized_client).
func (s *Server) grantIDJAG(r *http.Request, c *client) (map[string]any, *oauthError) {
	if c.exchange != nil {
		return nil, errUnauthorizedClient("this client may only use token exchange")
	}
	// The ID-JAG names the client it was issued to, and the check that the presenting client is
	// that one means something only if the client proved who it is: a public client's client_id
	// is a claim anyone holding a leaked ID-JAG could repeat.
	if c.public() {
		return nil, errUnauthorizedClient("an ID-JAG must be presented by a client that authenticates (client_secret_basic or client_secret_post)")
	}
	f := r.PostForm
	assertion := f.Get("assertion")
	if assertion == "" {
		return nil, errInvalidRequest("assertion is required")
	}
	if len(assertion) > 16<<10 {
		return nil, errInvalidGrant("the assertion is too large")
	}
	hdr, payload, ok := jwtParts(assertion)
	if !ok {
		return nil, errInvalidGrant("the assertion is not a JWT")
	}
	var h struct {
		Typ string `json:"typ"`
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &h) != nil || !strings.EqualFold(strings.TrimPrefix(strings.ToLower(h.Typ), "application/"), typIDJAG) {
		return nil, errInvalidGrant("the assertion is not an ID-JAG (typ must be " + typIDJAG + ")")
	}
	var pre struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(payload, &pre)
	var trust *idjagTrust
	for _, t := range s.idjagTrusts {
		if t.cfg.Issuer == pre.Iss {
			trust = t
		}
	}
	if trust == nil {
		return nil, errInvalidGrant("the ID-JAG's issuer is not trusted")
	}
	if !slices.Contains(trust.cfg.Algorithms, h.Alg) {
		return nil, errInvalidGrant("the ID-JAG's signing algorithm is not allowed")
	}
	// Checks that need no signature come first, so that only an assertion that could be good
	// reaches the key set: a client this trust does not list, or an assertion for another
	// client, audience or time, never makes us fetch the IdP's keys nor uses up the key set's
	// cooldown, which would hold back a real key rotation (the claims are checked again on the
	// verified token below).
	if oerr := s.idjagPrecheck(trust, c, payload); oerr != nil {
		return nil, oerr
	}
	ctx := r.Context()
	idt, err := trust.verifier.Verify(ctx, assertion)
	if err != nil {
		s.log.Debug("ID-JAG rejected", "iss", trust.cfg.Issuer, "error", err)
		return nil, errInvalidGrant("the ID-JAG's signature or lifetime is invalid")
	}
	var cl idjagClaims
	if err := idt.Claims(&cl); err != nil {
		return nil, errInvalidGrant("the ID-JAG's claims cannot be read")
	}
	now := s.opts.Now()
	switch {
	case len(idt.Audience) != 1 || strings.TrimSuffix(idt.Audience[0], "/") != s.opts.Issuer:
		return nil, errInvalidGrant("the ID-JAG's aud is not this authorization server")
	case cl.Subject == "":
		return nil, errInvalidGrant("the ID-JAG has no sub")
	case cl.ClientID == "" || cl.ClientID != c.ID:
		return nil, errInvalidGrant("the ID-JAG was issued to another client")
	case !slices.Contains(trust.cfg.ClientIDs, c.ID):
		return nil, errInvalidGrant("this client may not present ID-JAGs from this issuer")
	case cl.IssuedAt == nil || *cl.IssuedAt > now.Add(time.Minute).Unix():
		return nil, errInvalidGrant("the ID-JAG's iat is missing or in the future")
	case idt.Expiry.After(now.Add(trust.cfg.MaxLifetime)):
		return nil, errInvalidGrant("the ID-JAG is valid for too long")
	case cl.JTI == "" || len(cl.JTI) > 256:
		return nil, errInvalidGrant("the ID-JAG has no usable jti")
	}
	resource, oerr := s.idjagResource(cl.Resource, f)
	if oerr != nil {
		return nil, oerr
	}
	scope, oerr := s.idjagScope(cl.Scope, f.Get("scope"), c.Meta.Scope)
	if oerr != nil {
		return nil, oerr
	}
	// The same person may sign in through an upstream provider of this issuer in the browser:
	// its sign-in policy (email domains, users, groups, claims) holds for the ID-JAG too, or a
	// user the operator keeps out would get tokens this way.
	if oerr := s.idjagAllowed(trust.cfg.Issuer, cl.Subject, idt); oerr != nil {
		return nil, oerr
	}
	// Single use, for as long as the ID-JAG is valid (the record expires with it; cleanup).
	err = s.db.UseJTI(ctx, hashSecret(trust.cfg.Issuer+"\x00"+cl.JTI), idt.Expiry, now)
	if errors.Is(err, ErrAlreadyUsed) {
		s.log.Info("ID-JAG replayed", "client_id", c.ID, "iss", trust.cfg.Issuer)
		return nil, errInvalidGrant("the ID-JAG was already used")
	}
	if err != nil {
		s.log.Error("store ID-JAG jti", "error", err)
		return nil, errStorage(err)
	}

	sub := oidcSubject(trust.cfg.Issuer, cl.Subject)
	if err := s.ensureIDJAGUser(ctx, sub, trust.cfg.Issuer, cl); err != nil {
		s.log.Error("store user", "error", err)
		return nil, errStorage(err)
	}
	// A grant family of its own, so that the access token can be revoked like any other; it
	// ends with the token (no refresh token: the client asks its IdP for a new ID-JAG).
	fam := randomToken()
	if err := s.db.CreateFamily(ctx, fam, familyRecord{
		ClientID: c.ID, Sub: sub, Exp: now.Add(s.opts.AccessTokenTTL).Unix() + 60,
	}); err != nil {
		s.log.Error("store family", "error", err)
		return nil, errStorage(err)
	}
	s.log.Info("ID-JAG accepted", "client_id", c.ID, "iss", trust.cfg.Issuer, "sub", sub)
	return s.issueTokens(ctx, c, sub, scope, scope, resource, fam, 0, "")
}

// idjagPrecheck refuses, before any signature check, an ID-JAG that cannot be good for c: c is
// not a client the trust lists, or the unverified claims name another client or audience or
// have expired. Its answers are the ones the verified checks would give.
func (s *Server) idjagPrecheck(trust *idjagTrust, c *client, payload []byte) *oauthError {
	if !slices.Contains(trust.cfg.ClientIDs, c.ID) {
		return errInvalidGrant("this client may not present ID-JAGs from this issuer")
	}
	var cl struct {
		ClientID string          `json:"client_id"`
		Aud      json.RawMessage `json:"aud"`
		Exp      *float64        `json:"exp"`
	}
	if json.Unmarshal(payload, &cl) != nil {
		return errInvalidGrant("the ID-JAG's claims cannot be read")
	}
	var aud string
	if json.Unmarshal(cl.Aud, &aud) != nil {
		var auds []string
		if json.Unmarshal(cl.Aud, &auds) != nil || len(auds) != 1 {
			return errInvalidGrant("the ID-JAG's aud is not this authorization server")
		}
		aud = auds[0]
	}
	switch {
	case strings.TrimSuffix(aud, "/") != s.opts.Issuer:
		return errInvalidGrant("the ID-JAG's aud is not this authorization server")
	case cl.ClientID == "" || cl.ClientID != c.ID:
		return errInvalidGrant("the ID-JAG was issued to another client")
	case cl.Exp == nil || int64(*cl.Exp) <= s.opts.Now().Unix():
		return errInvalidGrant("the ID-JAG's signature or lifetime is invalid")
	}
	return nil
}

// jwtParts decodes a compact JWS's header and payload (no verification).
func jwtParts(raw string) (hdr, payload []byte, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	return h, p, err1 == nil && err2 == nil
}

// idjagResource returns the ID-JAG's resource claim, which must name an MCP server this
// authorization server serves: Options.DefaultResource or one of Options.AllowedResources (an
// open AllowedResources does not extend to ID-JAGs). A resource parameter in the request, if
// any, must be the same.
func (s *Server) idjagResource(claim any, f url.Values) (string, *oauthError) {
	var res string
	switch v := claim.(type) {
	case string:
		res = v
	case []any:
		if len(v) == 1 {
			res, _ = v[0].(string)
		}
	}
	cr, err := canonicalResource(res)
	if res == "" || err != nil {
		return "", errInvalidGrant("the ID-JAG names no single resource")
	}
	served := append([]string{s.opts.DefaultResource}, s.opts.AllowedResources...)
	if !slices.ContainsFunc(served, func(a string) bool { ca, err := canonicalResource(a); return err == nil && ca == cr }) {
		return "", errInvalidGrant("the ID-JAG's resource is not served by this authorization server")
	}
	if len(f["resource"]) > 1 {
		return "", errInvalidTarget("only one resource is supported per request")
	}
	if rp := f.Get("resource"); rp != "" {
		if crp, err := canonicalResource(rp); err != nil || crp != cr {
			return "", errInvalidGrant("resource does not match the ID-JAG's resource")
		}
	}
	return cr, nil
}

// idjagScope returns the scope to issue: the intersection of the requested scopes and the
// ID-JAG's (the extension's §7.2.1). An ID-JAG scope this server does not know is refused
// (invalid_grant, §7.6.2); an ID-JAG without scope grants only what the client asks among our
// Scopes, and when it asks nothing, what an authorization request without scope gets: the
// client's registered scope, or all of ours for a client registered without one.
func (s *Server) idjagScope(claim, requested, registered string) (string, *oauthError) {
	granted := strings.Fields(claim)
	for _, g := range granted {
		if !slices.Contains(s.opts.Scopes, g) {
			return "", errInvalidGrant("the ID-JAG's scope " + quoteShort(g) + " is not served here")
		}
	}
	if claim == "" {
		granted = s.opts.Scopes
		if requested == "" && registered != "" {
			requested = registered
		}
	}
	if requested == "" {
		return strings.Join(granted, " "), nil
	}
	var out []string
	for _, r := range strings.Fields(requested) {
		if slices.Contains(granted, r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return "", errInvalidScope("none of the requested scopes is granted by the ID-JAG")
	}
	return strings.Join(out, " "), nil
}

// ensureIDJAGUser records a user first seen through an ID-JAG. An existing user (who signed in
// through an upstream with the same issuer: same subject) is left as is.
// idjagAllowed applies the sign-in policy of every upstream provider whose issuer is iss to the
// ID-JAG's claims.
func (s *Server) idjagAllowed(iss, sub string, idt interface{ Claims(any) error }) *oauthError {
	for _, u := range s.upstreams {
		if u.cfg.Issuer != iss {
			continue
		}
		var raw map[string]any
		if err := idt.Claims(&raw); err != nil {
			return errInvalidGrant("the ID-JAG's claims cannot be read")
		}
		if !u.allowed(u.identityFrom(sub, raw)) {
			s.log.Info("ID-JAG for a user the sign-in policy refuses", "iss", iss)
			return errInvalidGrant("the user may not sign in here (the provider's sign-in policy)")
		}
	}
	return nil
}

func (s *Server) ensureIDJAGUser(ctx context.Context, sub, iss string, cl idjagClaims) error {
	rec := userRecord{Sub: sub, Login: cl.Email, Email: cl.Email, CreatedAt: s.opts.Now().Unix()}
	if rec.Login == "" {
		rec.Login = cl.Subject
	}
	for _, u := range s.upstreams {
		if u.cfg.Issuer == iss {
			rec.Upstream = u.cfg.Name
		}
	}
	_, err := s.db.CreateUser(ctx, rec)
	return err
}
