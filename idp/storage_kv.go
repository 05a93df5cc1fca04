package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
