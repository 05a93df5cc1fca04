package idp

import (
	"context"
	"errors"
	"time"
)

// Storage is what the authorization server persists, split by what it holds, in the manner of
// fosite's and zitadel op's storage interfaces. Every operation the protocol needs to be atomic is
// one call here (redeem a code exactly once, rotate a refresh token with its grace window, revoke a
// family, take a login state once, record an assertion's jti once), so a backend reproduces the
// guarantee in its own terms (a bbolt write transaction, a PostgreSQL row lock or conditional
// UPDATE) and HTTP handlers never see bucket names or encodings.
//
// Keys that derive from secrets (codes, refresh tokens, sessions, login states, jtis) arrive
// already hashed; GitHub and upstream tokens arrive sealed (AES-256-GCM): a Storage never holds a
// usable secret. Errors are the sentinels below, wrapped with %w: ErrNotFound for a missing
// record, ErrAlreadyUsed for a single-use record used again, ErrChanged for a lost
// compare-and-swap, ErrStoreFault for a fault.
//
// Implementations must be safe for concurrent use; NewKVStorage adapts any Store (BoltStore,
// MemoryStore) and keeps today's buckets and JSON encodings.
type Storage interface {
	ClientStorage
	CodeStorage
	GrantStorage
	UserStorage
	KeyStorage
	ConsentStorage
	SessionStorage
	ReplayStorage
	// DeleteExpired removes every expiring record (codes, refresh tokens, families, access
	// records, sessions, authorization requests, login states, jtis) whose end (the later of its
	// exp and, for used codes, purge_at) is before now, and reports how many went.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// Storage errors. Test them with errors.Is.
var (
	// ErrNotFound is returned when a record does not exist.
	ErrNotFound = errors.New("idp: record not found")
	// ErrAlreadyUsed is returned when a single-use record (authorization code, rotated refresh
	// token past its grace window, jti) is used again; as in fosite it triggers replay handling.
	ErrAlreadyUsed = errors.New("idp: record already used")
	// ErrChanged is returned by a compare-and-swap whose expected value no longer holds.
	ErrChanged = errors.New("idp: record changed concurrently")
	// ErrLimitReached is returned by CreateClient when MaxClients clients exist.
	ErrLimitReached = errors.New("idp: limit reached")
	// ErrWrongClient is returned by RotateRefresh for another client's refresh token.
	ErrWrongClient = errors.New("idp: record belongs to another client")
	// ErrExpired is returned by RotateRefresh for a refresh token past its family's end.
	ErrExpired = errors.New("idp: record expired")
	// ErrStoreFault marks a technical fault (store unavailable or closed, undecodable record):
	// the request may be retried, and the caller answers with a server error, not a protocol one.
	ErrStoreFault = errors.New("idp: storage fault")
)

// ClientStorage holds dynamically registered clients (RFC 7591/7592).
type ClientStorage interface {
	// GetClient returns the client, or ErrNotFound.
	GetClient(ctx context.Context, id string) (clientRecord, error)
	// CreateClient stores a new client unless max clients already exist (ErrLimitReached). The
	// count and the cap are checked atomically: concurrent registrations never overshoot max.
	CreateClient(ctx context.Context, rec clientRecord, max int) error
	// UpdateClient applies fn to the client as stored now and stores the result in one atomic
	// step; a client deleted in between gives ErrNotFound and is never resurrected. An error from
	// fn changes nothing and is returned.
	UpdateClient(ctx context.Context, id string, fn func(*clientRecord) error) (clientRecord, error)
	// DeleteClient removes the client, freeing its place under the cap, and reports whether it
	// existed (true with an error: removed, but its place not given back).
	DeleteClient(ctx context.Context, id string) (bool, error)
}

// CodeStorage holds authorization codes by hash.
type CodeStorage interface {
	// CreateCode stores a new authorization code.
	CreateCode(ctx context.Context, hash string, rec codeRecord) error
	// GetCode returns the code as stored, used or not, or ErrNotFound. It consumes nothing.
	GetCode(ctx context.Context, hash string) (codeRecord, error)
	// RedeemCode marks the code used, exactly once: of any number of concurrent calls one gets
	// the full record and nil, every other (and every later) call gets the record (client, sub,
	// family) and ErrAlreadyUsed. A used code is kept, reduced to what replay detection needs,
	// until purgeAt, so a late replay is still recognised. A missing code gives ErrNotFound.
	RedeemCode(ctx context.Context, hash string, purgeAt time.Time) (codeRecord, error)
}

// RefreshOutcome says what RotateRefresh did.
type RefreshOutcome int

const (
	// RefreshRotated: the token was current and is now rotated; its successor was stored.
	RefreshRotated RefreshOutcome = iota + 1
	// RefreshGrace: the token was rotated within the grace window; nothing changed, and the
	// record carries the successor sealed at rotation.
	RefreshGrace
)

// GrantStorage holds grant families, their refresh tokens (by hash) and access token records.
type GrantStorage interface {
	// CreateFamily stores a new grant family.
	CreateFamily(ctx context.Context, id string, rec familyRecord) error
	// GetFamily returns the family, or ErrNotFound.
	GetFamily(ctx context.Context, id string) (familyRecord, error)
	// RevokeFamily marks the family revoked (atomically, keeping its other fields); a missing
	// family is not an error. Every token of the family checks it on use.
	RevokeFamily(ctx context.Context, id string) error
	// RevokeClientFamilies revokes every family of clientID.
	RevokeClientFamilies(ctx context.Context, clientID string) error
	// RevokeUserFamilies revokes every family of the user sub, whatever the client: a sign-out
	// ends the user's grants (their refresh tokens, and their access tokens wherever this
	// server is asked about them: token exchange, introspection).
	RevokeUserFamilies(ctx context.Context, sub string) error

	// CreateRefresh stores a refresh token record only if none exists under hash, so handing the
	// same successor out again never resets its rotation state.
	CreateRefresh(ctx context.Context, hash string, rec refreshRecord) error
	// GetRefresh returns the refresh token record, or ErrNotFound.
	GetRefresh(ctx context.Context, hash string) (refreshRecord, error)
	// RotateRefresh, in one atomic step, checks the token (ErrNotFound, ErrWrongClient when not
	// clientID's, ErrExpired at or after its exp) and then: a current token is rotated (rotated_at
	// = now, successor = seal(family id), RefreshRotated); a token rotated at most grace ago is
	// left as is (RefreshGrace); an older rotated token gives the record and ErrAlreadyUsed, for
	// which the caller revokes the family. seal runs inside the atomic step; its error aborts it.
	RotateRefresh(ctx context.Context, hash, clientID string, now time.Time, grace time.Duration,
		seal func(familyID string) ([]byte, error)) (refreshRecord, RefreshOutcome, error)

	// PutAccess stores an issued access token's record by jti.
	PutAccess(ctx context.Context, jti string, rec accessRecord) error
	// GetAccess returns the access token record, or ErrNotFound.
	GetAccess(ctx context.Context, jti string) (accessRecord, error)
	// RevokeAccess marks one access token revoked; a missing one is not an error.
	RevokeAccess(ctx context.Context, jti string) error
}

// SealedKind names what a sealed per-user token is for.
type SealedKind string

// The per-user sealed tokens.
const (
	SealedGitHub   SealedKind = "github"   // the user's GitHub token
	SealedUpstream SealedKind = "upstream" // the upstream OpenID provider's tokens
)

// UserStorage holds users and their sealed upstream tokens (ciphertext only).
type UserStorage interface {
	// GetUser returns the user, or ErrNotFound.
	GetUser(ctx context.Context, sub string) (userRecord, error)
	// UpsertUser stores u atomically, keeping the stored created_at if the user exists and
	// setting it to now otherwise.
	UpsertUser(ctx context.Context, u userRecord, now time.Time) error
	// CreateUser stores u only if no user with its sub exists, and reports whether it did.
	CreateUser(ctx context.Context, u userRecord) (bool, error)
	// GetSealed returns the sealed token of kind for sub, or ErrNotFound.
	GetSealed(ctx context.Context, kind SealedKind, sub string) ([]byte, error)
	// PutSealed stores the sealed token of kind for sub.
	PutSealed(ctx context.Context, kind SealedKind, sub string, sealed []byte) error
	// DeleteSealed removes it; a missing one is not an error.
	DeleteSealed(ctx context.Context, kind SealedKind, sub string) error
	// ReplaceSealed stores next only if the stored value is still exactly prev (compare and
	// swap), else ErrChanged and nothing changes. A nil next deletes it (compare and delete).
	ReplaceSealed(ctx context.Context, kind SealedKind, sub string, prev, next []byte) error
}

// KeyStorage holds the signing keys (private keys sealed, AAD = kid).
//
// Several Servers may share one Storage (replicas on one PostgreSQL, or the old and new instance
// of a Caddy config reload): each one reads the keys, decides, and adds a key only through AddKey,
// whose condition makes exactly one of them create the first key (or a successor) while the others
// get ErrChanged, reload and publish and sign with the key that won. So every Server publishes the
// same JWKS and signs with the same key.
type KeyStorage interface {
	// ListKeys returns every stored key.
	ListKeys(ctx context.Context) ([]keyRecord, error)
	// AddKey stores rec only if the newest stored key (latest ActivateAt, then greatest Kid) is
	// still newestKid ("" = no key stored), atomically with that check; else it returns ErrChanged
	// and stores nothing. Of concurrent calls with the same newestKid exactly one succeeds.
	AddKey(ctx context.Context, rec keyRecord, newestKid string) error
	// RetireKeys removes the keys named; a missing one is not an error. Callers retire a key only
	// once a successor is durable, so a crash in between leaves one key too many, never none.
	RetireKeys(ctx context.Context, kids []string) error
}

// newerKey reports whether key a is newer than key b in KeyStorage's order: later ActivateAt,
// then greater Kid.
func newerKey(a, b keyRecord) bool {
	if c := a.ActivateAt.Compare(b.ActivateAt); c != 0 {
		return c > 0
	}
	return a.Kid > b.Kid
}

// newestKeyKid returns the kid of the newest of keys, "" for none.
func newestKeyKid(keys []keyRecord) string {
	var newest *keyRecord
	for i := range keys {
		if newest == nil || newerKey(keys[i], *newest) {
			newest = &keys[i]
		}
	}
	if newest == nil {
		return ""
	}
	return newest.Kid
}

// ConsentStorage holds the consents users gave clients, per resource.
type ConsentStorage interface {
	// GetConsent returns the consent, or ErrNotFound.
	GetConsent(ctx context.Context, sub, clientID, resource string) (consentRecord, error)
	// PutConsent stores it, replacing any previous one.
	PutConsent(ctx context.Context, sub, clientID, resource string, rec consentRecord) error
}

// SessionStorage holds browser sessions (by hash), pending authorization requests and login
// states (by hash).
type SessionStorage interface {
	GetSession(ctx context.Context, hash string) (sessionRecord, error)
	PutSession(ctx context.Context, hash string, rec sessionRecord) error
	DeleteSession(ctx context.Context, hash string) error

	PutAuthRequest(ctx context.Context, id string, rec authRequest) error
	GetAuthRequest(ctx context.Context, id string) (authRequest, error)
	// TakeAuthRequest deletes the request and returns it, exactly once: concurrent callers get
	// it at most once between them, the others ErrNotFound.
	TakeAuthRequest(ctx context.Context, id string) (authRequest, error)
	// UpdateAuthRequest applies fn atomically; a missing request gives ErrNotFound. An error
	// from fn changes nothing and is returned.
	UpdateAuthRequest(ctx context.Context, id string, fn func(*authRequest) error) error

	PutLoginState(ctx context.Context, hash string, rec loginState) error
	// TakeLoginState deletes the state and returns it, exactly once: concurrent callers get it at
	// most once between them, the others ErrNotFound.
	TakeLoginState(ctx context.Context, hash string) (loginState, error)
}

// ReplayStorage holds single-use assertion identifiers.
type ReplayStorage interface {
	// UseJTI records key as used until exp; if it is already recorded with an exp not before
	// now it returns ErrAlreadyUsed, atomically with the check.
	UseJTI(ctx context.Context, key string, exp, now time.Time) error
}
