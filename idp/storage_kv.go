package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// errUndecodable marks a stored record that does not decode: a fault, not ErrNotFound.
var errUndecodable = fmt.Errorf("%w: undecodable record", ErrStoreFault)

// kvStorage implements Storage on a key-value Store (BoltStore, MemoryStore) with the buckets and
// JSON encodings of store.go, so data directories written before Storage existed keep working.
// Every atomic operation of Storage is one Store.Update on one key (a bbolt write transaction).
type kvStorage struct {
	kv Store
}

// NewKVStorage returns the Storage kept in kv, in the layout the server has always used.
func NewKVStorage(kv Store) Storage { return &kvStorage{kv: faultStore{kv}} }

// faultStore marks the errors of the Store it wraps as ErrStoreFault, except ErrNotFound,
// context cancellation and the errors of Update's own fn, which kvStorage chose itself.
type faultStore struct{ Store }

func storeFault(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrStoreFault) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrStoreFault, err)
}

func (f faultStore) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	v, err := f.Store.Get(ctx, bucket, key)
	return v, storeFault(err)
}

func (f faultStore) Put(ctx context.Context, bucket, key string, value []byte) error {
	return storeFault(f.Store.Put(ctx, bucket, key, value))
}

func (f faultStore) Delete(ctx context.Context, bucket, key string) error {
	return storeFault(f.Store.Delete(ctx, bucket, key))
}

func (f faultStore) Update(ctx context.Context, bucket, key string, fn func(old []byte) ([]byte, error)) error {
	var fnErr error
	err := f.Store.Update(ctx, bucket, key, func(old []byte) ([]byte, error) {
		nv, err := fn(old)
		fnErr = err
		return nv, err
	})
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		return err
	}
	return storeFault(err)
}

func (f faultStore) ForEach(ctx context.Context, bucket string, fn func(key string, value []byte) error) error {
	var fnErr error
	err := f.Store.ForEach(ctx, bucket, func(k string, v []byte) error {
		fnErr = fn(k, v)
		return fnErr
	})
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		return err
	}
	return storeFault(err)
}

func (f faultStore) DeleteIf(ctx context.Context, bucket string, pred func(key string, value []byte) bool) (int, error) {
	n, err := f.Store.DeleteIf(ctx, bucket, pred)
	return n, storeFault(err)
}

func (f faultStore) Count(ctx context.Context, bucket string) (int, error) {
	n, err := f.Store.Count(ctx, bucket)
	return n, storeFault(err)
}

func (s *kvStorage) get(ctx context.Context, bucket, key string, v any) error {
	b, err := s.kv.Get(ctx, bucket, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %w", errUndecodable, bucket, err)
	}
	return nil
}

func (s *kvStorage) put(ctx context.Context, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.kv.Put(ctx, bucket, key, b)
}

// update decodes the record under key into a T, lets fn change it, and stores the result, in one
// Store.Update. A missing key gives ErrNotFound; an error from fn changes nothing.
func kvUpdate[T any](ctx context.Context, kv Store, bucket, key string, fn func(*T) error) (T, error) {
	var rec T
	err := kv.Update(ctx, bucket, key, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, ErrNotFound
		}
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUndecodable, bucket, err)
		}
		if err := fn(&rec); err != nil {
			return nil, err
		}
		return json.Marshal(rec)
	})
	return rec, err
}

// kvTake deletes the record under key and returns it, in one Store.Update.
func kvTake[T any](ctx context.Context, kv Store, bucket, key string) (T, error) {
	var rec T
	found := false
	err := kv.Update(ctx, bucket, key, func(old []byte) ([]byte, error) {
		found = old != nil && json.Unmarshal(old, &rec) == nil
		return nil, nil
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	return rec, err
}

// --- clients ---

// GetClient implements ClientStorage.
func (s *kvStorage) GetClient(ctx context.Context, id string) (clientRecord, error) {
	var rec clientRecord
	err := s.get(ctx, bucketClients, id, &rec)
	return rec, err
}

var errNoCounter = errors.New("idp: no client counter yet")

// CreateClient implements ClientStorage. The cap is a counter in bucketMeta bumped by one
// Store.Update, so concurrent registrations cannot overshoot it as Count-then-Put could. A store
// written before the counter existed is initialised from Count once. A crash between the bump and
// the Put over-counts by one, which errs on the safe side.
func (s *kvStorage) CreateClient(ctx context.Context, rec clientRecord, maxClients int) error {
	bump := func(initial int, haveInitial bool) error {
		return s.kv.Update(ctx, bucketMeta, metaClientCount, func(old []byte) ([]byte, error) {
			n := initial
			if old != nil {
				v, err := strconv.Atoi(string(old))
				if err != nil {
					return nil, fmt.Errorf("%w: corrupt client counter: %w", ErrStoreFault, err)
				}
				n = v
			} else if !haveInitial {
				return nil, errNoCounter
			}
			if n >= maxClients {
				return nil, ErrLimitReached
			}
			return []byte(strconv.Itoa(n + 1)), nil
		})
	}
	err := bump(0, false)
	if errors.Is(err, errNoCounter) {
		var n int
		if n, err = s.kv.Count(ctx, bucketClients); err == nil {
			err = bump(n, true)
		}
	}
	if err != nil {
		return err
	}
	if err := s.put(ctx, bucketClients, rec.ClientID, rec); err != nil {
		if rerr := s.releaseClientSlot(ctx); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return nil
}

// releaseClientSlot gives back a slot after a deletion (or a registration that failed to store).
func (s *kvStorage) releaseClientSlot(ctx context.Context) error {
	return s.kv.Update(ctx, bucketMeta, metaClientCount, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, nil
		}
		n, err := strconv.Atoi(string(old))
		if err != nil || n <= 1 {
			return []byte("0"), nil
		}
		return []byte(strconv.Itoa(n - 1)), nil
	})
}

// UpdateClient implements ClientStorage.
func (s *kvStorage) UpdateClient(ctx context.Context, id string, fn func(*clientRecord) error) (clientRecord, error) {
	return kvUpdate(ctx, s.kv, bucketClients, id, fn)
}

// DeleteClient implements ClientStorage.
func (s *kvStorage) DeleteClient(ctx context.Context, id string) (bool, error) {
	existed := false
	err := s.kv.Update(ctx, bucketClients, id, func(old []byte) ([]byte, error) {
		existed = old != nil
		return nil, nil
	})
	if err != nil || !existed {
		return existed, err
	}
	return true, s.releaseClientSlot(ctx)
}

// --- codes ---

// CreateCode implements CodeStorage.
func (s *kvStorage) CreateCode(ctx context.Context, hash string, rec codeRecord) error {
	return s.put(ctx, bucketCodes, hash, rec)
}

// GetCode implements CodeStorage.
func (s *kvStorage) GetCode(ctx context.Context, hash string) (codeRecord, error) {
	var rec codeRecord
	err := s.get(ctx, bucketCodes, hash, &rec)
	return rec, err
}

// RedeemCode implements CodeStorage.
func (s *kvStorage) RedeemCode(ctx context.Context, hash string, purgeAt time.Time) (codeRecord, error) {
	var rec codeRecord
	reused := false
	err := s.kv.Update(ctx, bucketCodes, hash, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, ErrNotFound
		}
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUndecodable, bucketCodes, err)
		}
		if rec.Used {
			reused = true
			return old, nil
		}
		rec.Used = true
		// Keep only what replay detection needs (no challenge, redirect URI or scope).
		return json.Marshal(codeRecord{
			ClientID: rec.ClientID, Sub: rec.Sub, Exp: rec.Exp, Used: true, FamilyID: rec.FamilyID,
			PurgeAt: purgeAt.Unix(),
		})
	})
	if err == nil && reused {
		err = ErrAlreadyUsed
	}
	return rec, err
}

// --- grants ---

// CreateFamily implements GrantStorage.
func (s *kvStorage) CreateFamily(ctx context.Context, id string, rec familyRecord) error {
	return s.put(ctx, bucketFamilies, id, rec)
}

// GetFamily implements GrantStorage.
func (s *kvStorage) GetFamily(ctx context.Context, id string) (familyRecord, error) {
	var rec familyRecord
	err := s.get(ctx, bucketFamilies, id, &rec)
	return rec, err
}

// RevokeFamily implements GrantStorage.
func (s *kvStorage) RevokeFamily(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	_, err := kvUpdate(ctx, s.kv, bucketFamilies, id, func(f *familyRecord) error {
		f.Revoked = true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// RevokeClientFamilies implements GrantStorage.
func (s *kvStorage) RevokeClientFamilies(ctx context.Context, clientID string) error {
	var ids []string
	err := s.kv.ForEach(ctx, bucketFamilies, func(k string, v []byte) error {
		var f familyRecord
		if json.Unmarshal(v, &f) == nil && f.ClientID == clientID && !f.Revoked {
			ids = append(ids, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.RevokeFamily(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// CreateRefresh implements GrantStorage.
func (s *kvStorage) CreateRefresh(ctx context.Context, hash string, rec refreshRecord) error {
	nb, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.kv.Update(ctx, bucketRefresh, hash, func(old []byte) ([]byte, error) {
		if old != nil {
			return old, nil
		}
		return nb, nil
	})
}

// GetRefresh implements GrantStorage.
func (s *kvStorage) GetRefresh(ctx context.Context, hash string) (refreshRecord, error) {
	var rec refreshRecord
	err := s.get(ctx, bucketRefresh, hash, &rec)
	return rec, err
}

// RotateRefresh implements GrantStorage.
func (s *kvStorage) RotateRefresh(ctx context.Context, hash, clientID string, now time.Time, grace time.Duration,
	seal func(familyID string) ([]byte, error)) (refreshRecord, RefreshOutcome, error) {
	var rec refreshRecord
	var outcome RefreshOutcome
	reused := false
	err := s.kv.Update(ctx, bucketRefresh, hash, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, ErrNotFound
		}
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUndecodable, bucketRefresh, err)
		}
		if rec.ClientID != clientID {
			return nil, ErrWrongClient
		}
		if now.Unix() >= rec.Exp {
			return nil, ErrExpired
		}
		switch {
		case rec.RotatedAt == 0:
			sealed, err := seal(rec.FamilyID)
			if err != nil {
				return nil, err
			}
			rec.RotatedAt = now.UnixMilli()
			rec.Successor = sealed
			outcome = RefreshRotated
			return json.Marshal(rec)
		case now.UnixMilli()-rec.RotatedAt <= grace.Milliseconds():
			outcome = RefreshGrace
		default:
			reused = true
		}
		return old, nil
	})
	if err == nil && reused {
		err = ErrAlreadyUsed
	}
	return rec, outcome, err
}

// PutAccess implements GrantStorage.
func (s *kvStorage) PutAccess(ctx context.Context, jti string, rec accessRecord) error {
	return s.put(ctx, bucketAccess, jti, rec)
}

// GetAccess implements GrantStorage.
func (s *kvStorage) GetAccess(ctx context.Context, jti string) (accessRecord, error) {
	var rec accessRecord
	err := s.get(ctx, bucketAccess, jti, &rec)
	return rec, err
}

// RevokeAccess implements GrantStorage.
func (s *kvStorage) RevokeAccess(ctx context.Context, jti string) error {
	_, err := kvUpdate(ctx, s.kv, bucketAccess, jti, func(a *accessRecord) error {
		a.Revoked = true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// --- users ---

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
		return next, nil
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

// RotateKeys implements KeyStorage.
func (s *kvStorage) RotateKeys(ctx context.Context, add *keyRecord, retire []string) error {
	if add != nil {
		if err := s.put(ctx, bucketKeys, add.Kid, add); err != nil {
			return err
		}
	}
	for _, kid := range retire {
		if err := s.kv.Delete(ctx, bucketKeys, kid); err != nil {
			return err
		}
	}
	return nil
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
