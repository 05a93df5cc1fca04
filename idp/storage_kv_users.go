package idp

// kvStorage's users and sealed upstream tokens, signing keys, consents, sessions, replay
// records and expiry cleanup.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// GetUser implements UserStorage.
func (s *kvStorage) GetUser(ctx context.Context, sub string) (userRecord, error) {
	var rec userRecord
	err := s.get(ctx, bucketUsers, sub, &rec)
	return rec, err
}

// UpsertUser implements UserStorage.
func (s *kvStorage) UpsertUser(ctx context.Context, u userRecord, now time.Time) error {
	return s.kv.Update(ctx, bucketUsers, u.Sub, func(old []byte) ([]byte, error) {
		if old != nil {
			var prev userRecord
			if json.Unmarshal(old, &prev) == nil {
				u.CreatedAt = prev.CreatedAt
			}
		}
		if u.CreatedAt == 0 {
			u.CreatedAt = now.Unix()
		}
		return json.Marshal(u)
	})
}

// CreateUser implements UserStorage.
func (s *kvStorage) CreateUser(ctx context.Context, u userRecord) (bool, error) {
	created := false
	err := s.kv.Update(ctx, bucketUsers, u.Sub, func(old []byte) ([]byte, error) {
		if old != nil {
			return old, nil
		}
		created = true
		return json.Marshal(u)
	})
	return created, err
}

func sealedBucket(kind SealedKind) (string, error) {
	switch kind {
	case SealedGitHub:
		return bucketGitHub, nil
	case SealedUpstream:
		return bucketUpstream, nil
	}
	return "", fmt.Errorf("idp: unknown sealed token kind %q", kind)
}

// GetSealed implements UserStorage.
func (s *kvStorage) GetSealed(ctx context.Context, kind SealedKind, sub string) ([]byte, error) {
	b, err := sealedBucket(kind)
	if err != nil {
		return nil, err
	}
	return s.kv.Get(ctx, b, sub)
}

// PutSealed implements UserStorage.
func (s *kvStorage) PutSealed(ctx context.Context, kind SealedKind, sub string, sealed []byte) error {
	b, err := sealedBucket(kind)
	if err != nil {
		return err
	}
	return s.kv.Put(ctx, b, sub, sealed)
}

// DeleteSealed implements UserStorage.
func (s *kvStorage) DeleteSealed(ctx context.Context, kind SealedKind, sub string) error {
	b, err := sealedBucket(kind)
	if err != nil {
		return err
	}
	return s.kv.Delete(ctx, b, sub)
}

// ReplaceSealed implements UserStorage.
func (s *kvStorage) ReplaceSealed(ctx context.Context, kind SealedKind, sub string, prev, next []byte) error {
	b, err := sealedBucket(kind)
	if err != nil {
		return err
	}
	return s.kv.Update(ctx, b, sub, func(old []byte) ([]byte, error) {
		if old == nil || !bytes.Equal(old, prev) {
			return nil, ErrChanged
		}
		return next, nil // nil deletes (Store.Update)
	})
}

// --- keys ---

// ListKeys implements KeyStorage.
func (s *kvStorage) ListKeys(ctx context.Context) ([]keyRecord, error) {
	var out []keyRecord
	err := s.kv.ForEach(ctx, bucketKeys, func(_ string, v []byte) error {
		var rec keyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("%w: %s: %w", errUndecodable, bucketKeys, err)
		}
		out = append(out, rec)
		return nil
	})
	return out, err
}

// metaKeyHead (in bucketMeta) holds the keyRecord of the newest signing key, written by AddKey.
// A Store is atomic on one key only, so this one key is where concurrent AddKeys meet: the
// Store.Update on it checks and moves the head in one write transaction.
const metaKeyHead = "signing_key_head"

// AddKey implements KeyStorage. The head record decides; the key itself is stored after the head
// moved, by the winner and again by every loser (the same bytes), so a crash between the two writes
// is repaired by the next AddKey. A store written before the head existed starts from ListKeys:
// its first AddKey finds no head, and every later one finds the head that first one wrote.
func (s *kvStorage) AddKey(ctx context.Context, rec keyRecord, newestKid string) error {
	keys, err := s.ListKeys(ctx)
	if err != nil {
		return err
	}
	nb, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	var head []byte
	lost := false
	err = s.kv.Update(ctx, bucketMeta, metaKeyHead, func(old []byte) ([]byte, error) {
		current := newestKeyKid(keys)
		if old != nil {
			var h keyRecord
			if err := json.Unmarshal(old, &h); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", errUndecodable, metaKeyHead, err)
			}
			current = h.Kid
		}
		if current != newestKid {
			lost, head = true, old
			return old, nil
		}
		head = nb
		return nb, nil
	})
	if err != nil {
		return err
	}
	if head != nil {
		var h keyRecord
		if err := json.Unmarshal(head, &h); err != nil {
			return fmt.Errorf("%w: %s: %w", errUndecodable, metaKeyHead, err)
		}
		if err := s.kv.Put(ctx, bucketKeys, h.Kid, head); err != nil {
			return err
		}
	}
	if lost {
		return ErrChanged
	}
	return nil
}

// RetireKeys implements KeyStorage. Retiring the head's key drops the head too, so AddKey then
// starts again from the keys stored.
func (s *kvStorage) RetireKeys(ctx context.Context, kids []string) error {
	for _, kid := range kids {
		if err := s.kv.Delete(ctx, bucketKeys, kid); err != nil {
			return err
		}
	}
	return s.kv.Update(ctx, bucketMeta, metaKeyHead, func(old []byte) ([]byte, error) {
		var h keyRecord
		if old == nil || json.Unmarshal(old, &h) != nil || !slices.Contains(kids, h.Kid) {
			return old, nil
		}
		return nil, nil
	})
}

// --- consent ---

func consentKey(sub, clientID, resource string) string {
	return sub + "\x00" + clientID + "\x00" + resource
}

// GetConsent implements ConsentStorage.
func (s *kvStorage) GetConsent(ctx context.Context, sub, clientID, resource string) (consentRecord, error) {
	var rec consentRecord
	err := s.get(ctx, bucketConsents, consentKey(sub, clientID, resource), &rec)
	return rec, err
}

// PutConsent implements ConsentStorage.
func (s *kvStorage) PutConsent(ctx context.Context, sub, clientID, resource string, rec consentRecord) error {
	return s.put(ctx, bucketConsents, consentKey(sub, clientID, resource), rec)
}

// --- sessions, authorization requests, login states ---

// GetSession implements SessionStorage.
func (s *kvStorage) GetSession(ctx context.Context, hash string) (sessionRecord, error) {
	var rec sessionRecord
	err := s.get(ctx, bucketSessions, hash, &rec)
	return rec, err
}

// PutSession implements SessionStorage.
func (s *kvStorage) PutSession(ctx context.Context, hash string, rec sessionRecord) error {
	return s.put(ctx, bucketSessions, hash, rec)
}

// DeleteSession implements SessionStorage.
func (s *kvStorage) DeleteSession(ctx context.Context, hash string) error {
	return s.kv.Delete(ctx, bucketSessions, hash)
}

// PutAuthRequest implements SessionStorage.
func (s *kvStorage) PutAuthRequest(ctx context.Context, id string, rec authRequest) error {
	return s.put(ctx, bucketAuthReqs, id, rec)
}

// GetAuthRequest implements SessionStorage.
func (s *kvStorage) GetAuthRequest(ctx context.Context, id string) (authRequest, error) {
	var rec authRequest
	err := s.get(ctx, bucketAuthReqs, id, &rec)
	return rec, err
}

// TakeAuthRequest implements SessionStorage.
func (s *kvStorage) TakeAuthRequest(ctx context.Context, id string) (authRequest, error) {
	return kvTake[authRequest](ctx, s.kv, bucketAuthReqs, id)
}

// UpdateAuthRequest implements SessionStorage.
func (s *kvStorage) UpdateAuthRequest(ctx context.Context, id string, fn func(*authRequest) error) error {
	_, err := kvUpdate(ctx, s.kv, bucketAuthReqs, id, fn)
	return err
}

// PutLoginState implements SessionStorage.
func (s *kvStorage) PutLoginState(ctx context.Context, hash string, rec loginState) error {
	return s.put(ctx, bucketStates, hash, rec)
}

// TakeLoginState implements SessionStorage.
func (s *kvStorage) TakeLoginState(ctx context.Context, hash string) (loginState, error) {
	return kvTake[loginState](ctx, s.kv, bucketStates, hash)
}

// --- replay ---

// UseJTI implements ReplayStorage.
func (s *kvStorage) UseJTI(ctx context.Context, key string, exp, now time.Time) error {
	replay := false
	err := s.kv.Update(ctx, bucketJTI, key, func(old []byte) ([]byte, error) {
		if old != nil {
			var e expiring
			if json.Unmarshal(old, &e) == nil && e.Exp >= now.Unix() {
				replay = true
				return old, nil
			}
		}
		return json.Marshal(expiring{Exp: exp.Unix()})
	})
	if err == nil && replay {
		err = ErrAlreadyUsed
	}
	return err
}

// --- expiry ---

// expiring is decoded from any record to find its expiry during cleanup.
type expiring struct {
	Exp     int64 `json:"exp"`
	PurgeAt int64 `json:"purge_at,omitempty"` // overrides Exp when later (used codes)
}

// expiringBuckets are the buckets whose records carry an exp (and, for used codes, a purge_at).
var expiringBuckets = []string{bucketCodes, bucketRefresh, bucketFamilies, bucketAccess, bucketSessions, bucketAuthReqs, bucketStates, bucketJTI}

// DeleteExpired implements Storage.
func (s *kvStorage) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, b := range expiringBuckets {
		n, err := s.kv.DeleteIf(ctx, b, func(_ string, v []byte) bool {
			var e expiring
			if json.Unmarshal(v, &e) != nil {
				return false
			}
			end := max(e.Exp, e.PurgeAt)
			return end > 0 && end < now.Unix()
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("idp: delete expired %s: %w", b, err)
		}
	}
	return total, nil
}

var _ Storage = (*kvStorage)(nil)
