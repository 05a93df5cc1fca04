package idp

import (
	"context"
	"errors"
	"strings"
	"time"
)

// clientMetadata is the RFC 7591 client metadata we accept and return.
type clientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ApplicationType         string   `json:"application_type,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	TOSURI                  string   `json:"tos_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
}

type clientRecord struct {
	ClientID     string         `json:"client_id"`
	SecretHash   string         `json:"secret_hash,omitempty"`
	RegTokenHash string         `json:"reg_token_hash"`
	IssuedAt     int64          `json:"issued_at"`
	Metadata     clientMetadata `json:"metadata"`
}

type userRecord struct {
	Sub       string `json:"sub"`
	Login     string `json:"login"`
	Name      string `json:"name,omitempty"`
	GitHubID  int64  `json:"github_id,omitempty"`
	CreatedAt int64  `json:"created_at"`
	// Upstream is the UpstreamOIDC.Name an "oidc:" user signed in with; Email (verified only)
	// and Groups are what it said at the last sign-in.
	Upstream string   `json:"upstream,omitempty"`
	Email    string   `json:"email,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// githubToken is sealed (AES-256-GCM, AAD = sub) before storage.
type githubToken struct {
	AccessToken    string    `json:"access_token"`
	RefreshToken   string    `json:"refresh_token,omitempty"`
	Expiry         time.Time `json:"expiry,omitzero"`
	RefreshExpiry  time.Time `json:"refresh_expiry,omitzero"`
	GitHubID       int64     `json:"github_id,omitempty"`
	Login          string    `json:"login,omitempty"`
	PersonalAccess bool      `json:"pat,omitempty"`
}

type consentRecord struct {
	Scope    string `json:"scope"`
	Resource string `json:"resource"`
	At       int64  `json:"at"`
}

type codeRecord struct {
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	RedirectGiven bool   `json:"redirect_given"`
	Challenge     string `json:"challenge"`
	Resource      string `json:"resource"`
	Scope         string `json:"scope"`
	Sub           string `json:"sub"`
	Exp           int64  `json:"exp"`
	Used          bool   `json:"used"`
	FamilyID      string `json:"family_id"`
	// PurgeAt (unix s) keeps a used code's record past Exp, until the access tokens it produced
	// have expired, so a late replay is still recognised as reuse and revokes the grant.
	PurgeAt int64 `json:"purge_at,omitempty"`
}

type familyRecord struct {
	ClientID string `json:"client_id"`
	Sub      string `json:"sub"`
	Revoked  bool   `json:"revoked"`
	Exp      int64  `json:"exp"` // absolute end of the refresh token family
}

type refreshRecord struct {
	FamilyID  string `json:"family_id"`
	ClientID  string `json:"client_id"`
	Sub       string `json:"sub"`
	Scope     string `json:"scope"`
	Resource  string `json:"resource"`
	Exp       int64  `json:"exp"`
	RotatedAt int64  `json:"rotated_at,omitempty"` // unix ms; 0 while current
	// Successor is the refresh token that replaced this one, sealed with a key derived from this
	// token (sealSuccessor); set at rotation and handed back unchanged within the grace window.
	Successor []byte `json:"successor,omitempty"`
}

type accessRecord struct {
	FamilyID string `json:"family_id"`
	ClientID string `json:"client_id"`
	Sub      string `json:"sub"`
	Exp      int64  `json:"exp"`
	Revoked  bool   `json:"revoked,omitempty"`
}

type sessionRecord struct {
	Sub  string `json:"sub,omitempty"`
	CSRF string `json:"csrf"`
	Exp  int64  `json:"exp"`
	// AuthTime is when the user signed in (unix seconds); 0 in sessions stored before it existed.
	AuthTime int64 `json:"auth_time,omitempty"`
}

// authRequest is a validated /authorize request waiting for login and consent.
type authRequest struct {
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	RedirectGiven bool   `json:"redirect_given"`
	State         string `json:"state,omitempty"`
	Challenge     string `json:"challenge"`
	Scope         string `json:"scope"`
	Resource      string `json:"resource"`
	Prompt        string `json:"prompt,omitempty"` // "none" or "consent"
	// ForceLogin (prompt=login): only a sign-in made for this request satisfies it.
	ForceLogin bool `json:"force_login,omitempty"`
	// MaxAge (max_age, seconds) if given: an older sign-in does not satisfy the request.
	MaxAge *int64 `json:"max_age,omitempty"`
	// LoginSession is the hash of the session created by a sign-in made for this request.
	LoginSession string `json:"login_session,omitempty"`
	Exp          int64  `json:"exp"`
}

type loginState struct {
	ReqID   string `json:"req_id,omitempty"`
	Purpose string `json:"purpose"` // "login" or "link"
	Sub     string `json:"sub,omitempty"`
	Exp     int64  `json:"exp"`
	// Upstream sign-in only: the provider's name, the nonce sent to it, and the PKCE verifier
	// (sealed, AAD bound to the state).
	Upstream string `json:"upstream,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	Verifier []byte `json:"verifier,omitempty"`
}

// cleanup deletes expired records.
func (s *Server) cleanup(ctx context.Context) {
	n, err := s.db.DeleteExpired(ctx, s.opts.Now())
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("cleanup failed", "error", err)
	}
	if n > 0 {
		s.log.Debug("cleanup", "deleted", n)
	}
}

// accessRevoked reports whether an access token (by jti) or its grant family was revoked. Unknown
// jtis count as revoked (fail closed).
func (s *Server) accessRevoked(ctx context.Context, jti string) (bool, error) {
	a, err := s.db.GetAccess(ctx, jti)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return true, nil
		}
		return true, err
	}
	if a.Revoked {
		return true, nil
	}
	return s.familyRevoked(ctx, a.FamilyID)
}

// familyRevoked reports whether a grant family was revoked; an unknown family counts as revoked.
func (s *Server) familyRevoked(ctx context.Context, familyID string) (bool, error) {
	f, err := s.db.GetFamily(ctx, familyID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return true, nil
		}
		return true, err
	}
	return f.Revoked, nil
}

// clientExists reports whether clientID still names a client. Configured exchange clients and
// Client ID Metadata Document URLs cannot be deleted; a registered client exists while its record
// does (RFC 7592 delete removes it).
func (s *Server) clientExists(ctx context.Context, clientID string) (bool, error) {
	if strings.HasPrefix(clientID, "https://") {
		return true, nil
	}
	for i := range s.opts.ExchangeClients {
		if s.opts.ExchangeClients[i].ID == clientID {
			return true, nil
		}
	}
	if _, err := s.db.GetClient(ctx, clientID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
