package idp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// UpstreamOIDC is an OpenID provider users may sign in with (the company's Entra ID, Okta,
// Google Workspace, Keycloak...). The user's identity here is "oidc:<hash of iss and sub>": the
// upstream subject, never the email, identifies the user.
//
// Who may sign in: when none of AllowedEmailDomains, AllowedUsers, RequiredGroups and
// RequiredClaims is set, everyone the upstream authenticates; otherwise a user must match
// AllowedEmailDomains or AllowedUsers (when either is set) AND hold one of RequiredGroups (when
// set) AND carry every RequiredClaims value (when set). Everyone else gets a 403 page and nothing
// is stored.
type UpstreamOIDC struct {
	// Name identifies the provider in URLs (/login/oidc/<name>, /oidc/<name>/callback): 1 to 32
	// lower-case letters, digits or '-'. Required, unique.
	Name string
	// DisplayName is shown on the login page ("Sign in with <DisplayName>"). Default: Name.
	DisplayName string
	// Issuer is the provider's issuer; discovery reads <Issuer>/.well-known/openid-configuration
	// (lazily, at the first sign-in, and again after a failure). Required.
	Issuer string
	// ClientID registered at the provider. Required. The redirect URI to register there is
	// <our issuer>/oidc/<Name>/callback.
	ClientID string
	// ClientSecret, or empty for a public client (PKCE is used either way).
	ClientSecret string
	// Scopes requested. Default ["openid", "email", "profile"]; "openid" is always added.
	Scopes []string

	// AllowedEmailDomains lets users whose verified email is in one of these domains sign in
	// (exact domain match, case-insensitive; "*" allows any verified email). Default none.
	AllowedEmailDomains []string
	// AllowedUsers lets these users sign in: a verified email address or the upstream "sub".
	// Default none.
	AllowedUsers []string
	// RequiredGroups: the user must be in at least one of these (read from GroupsClaim).
	// Default none (no group check).
	RequiredGroups []string
	// GroupsClaim is the claim holding the user's groups (a string array, or a single string).
	// Default "groups".
	GroupsClaim string
	// RequiredClaims: every key must be a claim whose value (a string, a boolean printed as
	// "true"/"false", or an array containing it) equals the given value. Default none.
	RequiredClaims map[string]string

	// TokenClaims lists the user's claims copied into our access tokens: any of "email",
	// "name", "groups". Default none (access tokens carry only the subject).
	TokenClaims []string

	// HTTPClient calls the provider. Default: Options.HTTPClient.
	HTTPClient *http.Client
}

var upstreamNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

func (u *UpstreamOIDC) setDefaults(def *http.Client) error {
	if !upstreamNameRe.MatchString(u.Name) {
		return fmt.Errorf("idp: upstream name %q must be 1 to 32 lower-case letters, digits or '-'", u.Name)
	}
	iu, err := url.Parse(u.Issuer)
	if u.Issuer == "" || err != nil || (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" {
		return fmt.Errorf("idp: upstream %q: Issuer must be an absolute http(s) URL", u.Name)
	}
	if u.ClientID == "" {
		return fmt.Errorf("idp: upstream %q: ClientID is required", u.Name)
	}
	if u.DisplayName == "" {
		u.DisplayName = u.Name
	}
	if len(u.Scopes) == 0 {
		u.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if !slices.Contains(u.Scopes, oidc.ScopeOpenID) {
		u.Scopes = append([]string{oidc.ScopeOpenID}, u.Scopes...)
	}
	if u.GroupsClaim == "" {
		u.GroupsClaim = "groups"
	}
	for _, c := range u.TokenClaims {
		if c != "email" && c != "name" && c != "groups" {
			return fmt.Errorf("idp: upstream %q: TokenClaims entry %q is not email, name or groups", u.Name, c)
		}
	}
	if u.HTTPClient == nil {
		u.HTTPClient = def
	}
	return nil
}

// oidcSubject is the stable subject of an upstream (or ID-JAG) identity: the issuer and its
// subject, hashed so that neither reveals the other and no separator can be forged. The same
// person signing in through the same issuer always gets the same subject, whatever their email.
func oidcSubject(iss, sub string) string {
	h := sha256.Sum256([]byte("mcpgate oidc subject v1\x00" + iss + "\x00" + sub))
	return "oidc:" + base64.RawURLEncoding.EncodeToString(h[:20])
}

// upstream is the runtime state of one UpstreamOIDC. Discovery is go-oidc's (oidc.NewProvider),
// done lazily and retried after a failure, so an upstream that is down at start-up does not keep
// the server from starting; it just cannot be used until it answers.
type upstream struct {
	cfg      *UpstreamOIDC
	redirect string
	now      func() time.Time
	ctx      context.Context // owns the key set's background fetches (the server's context)

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// errUpstreamDown is a discovery or token endpoint failure: the provider cannot be used now.
var errUpstreamDown = errors.New("idp: upstream provider unavailable")

// clientCtx returns ctx carrying the upstream's HTTP client, which go-oidc and x/oauth2 use.
func (u *upstream) clientCtx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, u.cfg.HTTPClient)
}

// load runs discovery once it succeeds. go-oidc checks that the discovered issuer equals the
// configured one (no issuer mix-up through a compromised discovery document) and builds the
// remote key set (JWKS fetched on an unknown kid, one fetch at a time).
func (u *upstream) load() (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.provider != nil {
		return u.provider, u.verifier, nil
	}
	// The provider keeps the context for its key set's later fetches: give it the server's
	// (cancelled by Close), not the request's, and bound discovery itself by the request.
	p, err := oidc.NewProvider(u.clientCtx(u.ctx), u.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: discovery: %v", errUpstreamDown, err)
	}
	// go-oidc's verifier checks the signature against the provider's keys with the algorithms
	// the provider announces (RS256 if none; "none" is never accepted), iss, aud containing our
	// client id, and exp/iat with our clock. The nonce, at_hash and the allow-lists are ours.
	u.verifier = p.VerifierContext(u.clientCtx(u.ctx), &oidc.Config{ClientID: u.cfg.ClientID, Now: u.now})
	u.provider = p
	return p, u.verifier, nil
}

func (u *upstream) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     u.cfg.ClientID,
		ClientSecret: u.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  u.redirect,
		Scopes:       u.cfg.Scopes,
	}
}

// upstreamIdentity is what we keep of an upstream user.
type upstreamIdentity struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Username      string
	Groups        []string
	raw           map[string]any
}

// identityFrom reads the standard claims (and the configured groups claim) from claims.
func (u *upstream) identityFrom(sub string, claims map[string]any) upstreamIdentity {
	id := upstreamIdentity{Subject: sub, raw: claims}
	id.Email, _ = claims["email"].(string)
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string: // some providers send "true"
		id.EmailVerified = v == "true"
	}
	id.Name, _ = claims["name"].(string)
	id.Username, _ = claims["preferred_username"].(string)
	id.Groups = stringsClaim(claims[u.cfg.GroupsClaim])
	return id
}

func stringsClaim(v any) []string {
	switch g := v.(type) {
	case string:
		return []string{g}
	case []any:
		out := make([]string, 0, len(g))
		for _, e := range g {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// allowed applies the sign-in policy described on UpstreamOIDC. The email counts only when the
// provider says it is verified: an unverified address proves nothing about the domain.
func (u *upstream) allowed(id upstreamIdentity) bool {
	c := u.cfg
	if len(c.AllowedEmailDomains) > 0 || len(c.AllowedUsers) > 0 {
		ok := false
		email := strings.ToLower(id.Email)
		if id.EmailVerified && email != "" {
			if _, dom, found := strings.Cut(email, "@"); found && dom != "" {
				for _, d := range c.AllowedEmailDomains {
					if d == "*" || strings.EqualFold(d, dom) {
						ok = true
					}
				}
			}
		}
		for _, a := range c.AllowedUsers {
			if a == id.Subject || (id.EmailVerified && email != "" && strings.EqualFold(a, email)) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.RequiredGroups) > 0 && !slices.ContainsFunc(c.RequiredGroups, func(g string) bool { return slices.Contains(id.Groups, g) }) {
		return false
	}
	for k, want := range c.RequiredClaims {
		if !claimHas(id.raw[k], want) {
			return false
		}
	}
	return true
}

func claimHas(v any, want string) bool {
	switch x := v.(type) {
	case string:
		return x == want
	case bool:
		return fmt.Sprint(x) == want
	case []any:
		return slices.ContainsFunc(x, func(e any) bool { s, ok := e.(string); return ok && s == want })
	}
	return false
}

// upstreamByName returns the configured upstream called name.
func (s *Server) upstreamByName(name string) *upstream {
	for _, u := range s.upstreams {
		if u.cfg.Name == name {
			return u
		}
	}
	return nil
}

// upstreamFor returns the upstream whose subjects sub belongs to (stored with the user), if any.
//
// The error is a storage fault only (a user not found is no upstream): a caller that checks the
// upstream must not pass a user it could not look up.
func (s *Server) upstreamFor(ctx context.Context, sub string) (*upstream, *userRecord, error) {
	if !strings.HasPrefix(sub, "oidc:") {
		return nil, nil, nil
	}
	u, err := s.db.GetUser(ctx, sub)
	if errors.Is(err, ErrNotFound) || errors.Is(err, errUndecodable) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return s.upstreamByName(u.Upstream), &u, nil
}
