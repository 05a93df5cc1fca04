package idp

import (
	"context"
	"errors"
)

// Store is the key-value backend of the embedded stores: a set of named buckets holding opaque
// values under string keys. The server itself speaks Storage; NewKVStorage implements Storage on a
// Store, encoding records (JSON) in the buckets below. Every token, code and secret is hashed
// before it becomes a key or value, and GitHub tokens and private keys are encrypted before they
// reach the store, so a Store never sees a usable secret.
//
// Implementations must be safe for concurrent use. Update must be atomic with respect to every
// other call on the same key: single-use authorization codes and refresh-token rotation rely on it.
type Store interface {
	// Get returns the value stored under key in bucket, or ErrNotFound.
	Get(ctx context.Context, bucket, key string) ([]byte, error)
	// Put stores value under key in bucket, replacing any previous value.
	Put(ctx context.Context, bucket, key string, value []byte) error
	// Delete removes key from bucket; deleting a missing key is not an error.
	Delete(ctx context.Context, bucket, key string) error
	// Update atomically replaces the value under key with fn(old). old is nil when the key is
	// absent. If fn returns a nil value the key is deleted; if fn returns an error nothing changes
	// and Update returns that error.
	Update(ctx context.Context, bucket, key string, fn func(old []byte) ([]byte, error)) error
	// ForEach calls fn for every key in bucket in key order until fn returns an error. fn must not
	// call back into the Store.
	ForEach(ctx context.Context, bucket string, fn func(key string, value []byte) error) error
	// DeleteIf atomically deletes every record of bucket for which pred returns true and reports how
	// many were deleted. pred must not call back into the Store.
	DeleteIf(ctx context.Context, bucket string, pred func(key string, value []byte) bool) (int, error)
	// Count returns the number of keys in bucket.
	Count(ctx context.Context, bucket string) (int, error)
	// Close releases the store. Further calls fail.
	Close() error
}

// Bucket names of the key-value layout (kvStorage only; existing data directories depend on
// them). Keys that derive from secrets are SHA-256 hashes.
const (
	bucketClients  = "clients"  // client_id -> clientRecord
	bucketUsers    = "users"    // sub -> userRecord
	bucketGitHub   = "github"   // sub -> sealed githubToken (AES-GCM, AAD = sub)
	bucketConsents = "consents" // sub \x00 client_id -> consentRecord
	bucketCodes    = "codes"    // sha256(code) -> codeRecord
	bucketRefresh  = "refresh"  // sha256(refresh token) -> refreshRecord
	bucketFamilies = "families" // grant family id -> familyRecord
	bucketAccess   = "access"   // jti -> accessRecord (for revocation / introspection)
	bucketSessions = "sessions" // sha256(session id) -> sessionRecord
	bucketAuthReqs = "authreqs" // pending authorization request id -> authRequest
	bucketStates   = "states"   // sha256(GitHub OAuth state) -> loginState
	bucketKeys     = "keys"     // kid -> keyRecord (private key sealed, AAD = kid)
	bucketMeta     = "meta"     // server counters, e.g. metaClientCount
	bucketUpstream = "upstream" // sub -> sealed upstreamToken (AES-GCM, AAD = sub)
	bucketJTI      = "jti"      // sha256(ID-JAG iss, jti) -> expiring (single-use assertions)
)

// metaClientCount (in bucketMeta) is the number of registered clients, kept by Store.Update (see
// kvStorage.CreateClient) so the MaxClients cap holds under concurrent registrations.
const metaClientCount = "client_count"

var allBuckets = []string{
	bucketClients, bucketUsers, bucketGitHub, bucketConsents, bucketCodes, bucketRefresh,
	bucketFamilies, bucketAccess, bucketSessions, bucketAuthReqs, bucketStates, bucketKeys, bucketMeta,
	bucketUpstream, bucketJTI,
}

var errStoreClosed = errors.New("idp: store closed")
