package idp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore is the embedded default Store: one bbolt file in the data directory.
//
// Why bbolt: it is pure Go (no cgo, no server), a single file, and a copy-on-write B+tree whose
// write transactions are fsync'd before they commit. A crash in the middle of a write leaves the
// previous committed state intact: pages are never overwritten in place and the meta page is
// switched only after the new pages are durable, so there are no torn records.
// Write transactions are serialized, which gives Update the atomicity single-use codes need.
// The file is created with mode 0600.
type BoltStore struct {
	db *bolt.DB
}

// OpenBoltStore opens (creating if needed) the bbolt database at path with mode 0600. The parent
// directory is created with mode 0700 if missing. Only one process may hold the file; a second
// open waits up to 2 seconds for the lock, then fails.
func OpenBoltStore(path string) (*BoltStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("idp: create data directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("idp: open bolt store %s: %w", path, err)
	}
	// bbolt applies the mode only when it creates the file; tighten an existing one too.
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("idp: chmod bolt store: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("idp: init bolt store: %w", err)
	}
	return &BoltStore{db: db}, nil
}

func boltBucket(tx *bolt.Tx, name string) (*bolt.Bucket, error) {
	if b := tx.Bucket([]byte(name)); b != nil {
		return b, nil
	}
	if !tx.Writable() {
		return nil, nil
	}
	return tx.CreateBucket([]byte(name))
}

// Get implements Store.
func (s *BoltStore) Get(_ context.Context, bucket, key string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := boltBucket(tx, bucket)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		out = slices.Clone(v) // bbolt memory is only valid inside the transaction
		return nil
	})
	return out, mapBoltErr(err)
}

// Put implements Store.
func (s *BoltStore) Put(_ context.Context, bucket, key string, value []byte) error {
	return mapBoltErr(s.db.Update(func(tx *bolt.Tx) error {
		b, err := boltBucket(tx, bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	}))
}

// Delete implements Store.
func (s *BoltStore) Delete(_ context.Context, bucket, key string) error {
	return mapBoltErr(s.db.Update(func(tx *bolt.Tx) error {
		b, err := boltBucket(tx, bucket)
		if err != nil {
			return err
		}
		return b.Delete([]byte(key))
	}))
}

// Update implements Store. fn runs inside one bbolt write transaction.
func (s *BoltStore) Update(_ context.Context, bucket, key string, fn func(old []byte) ([]byte, error)) error {
	return mapBoltErr(s.db.Update(func(tx *bolt.Tx) error {
		b, err := boltBucket(tx, bucket)
		if err != nil {
			return err
		}
		var old []byte
		if v := b.Get([]byte(key)); v != nil {
			old = slices.Clone(v)
		}
		nv, err := fn(old)
		if err != nil {
			return err
		}
		if nv == nil {
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), nv)
	}))
}

// ForEach implements Store.
func (s *BoltStore) ForEach(_ context.Context, bucket string, fn func(key string, value []byte) error) error {
	return mapBoltErr(s.db.View(func(tx *bolt.Tx) error {
		b, _ := boltBucket(tx, bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			return fn(string(k), slices.Clone(v))
		})
	}))
}

// DeleteIf implements Store.
func (s *BoltStore) DeleteIf(_ context.Context, bucket string, pred func(key string, value []byte) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := boltBucket(tx, bucket)
		if err != nil {
			return err
		}
		var doomed [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			if pred(string(k), slices.Clone(v)) {
				doomed = append(doomed, slices.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, mapBoltErr(err)
}

// Count implements Store.
func (s *BoltStore) Count(_ context.Context, bucket string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := boltBucket(tx, bucket)
		if b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, mapBoltErr(err)
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

func mapBoltErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return errStoreClosed
	}
	return err
}

var _ Store = (*BoltStore)(nil)
