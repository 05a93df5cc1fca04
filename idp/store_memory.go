package idp

import (
	"context"
	"slices"
	"sync"
)

// MemoryStore is an in-memory Store for tests and throwaway development servers. Nothing survives
// the process. Values are copied in and out, so callers cannot alias stored bytes.
type MemoryStore struct {
	mu      sync.Mutex
	buckets map[string]map[string][]byte
	closed  bool
}

// NewMemoryStore returns an empty in-memory Store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{buckets: make(map[string]map[string][]byte)}
}

func (m *MemoryStore) bucket(name string) map[string][]byte {
	b := m.buckets[name]
	if b == nil {
		b = make(map[string][]byte)
		m.buckets[name] = b
	}
	return b
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, bucket, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errStoreClosed
	}
	v, ok := m.bucket(bucket)[key]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(v), nil
}

// Put implements Store.
func (m *MemoryStore) Put(_ context.Context, bucket, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errStoreClosed
	}
	m.bucket(bucket)[key] = slices.Clone(value)
	return nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, bucket, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errStoreClosed
	}
	delete(m.bucket(bucket), key)
	return nil
}

// Update implements Store.
func (m *MemoryStore) Update(_ context.Context, bucket, key string, fn func(old []byte) ([]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errStoreClosed
	}
	b := m.bucket(bucket)
	var old []byte
	if v, ok := b[key]; ok {
		old = slices.Clone(v)
	}
	nv, err := fn(old)
	if err != nil {
		return err
	}
	if nv == nil {
		delete(b, key)
	} else {
		b[key] = slices.Clone(nv)
	}
	return nil
}

// ForEach implements Store.
func (m *MemoryStore) ForEach(_ context.Context, bucket string, fn func(key string, value []byte) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errStoreClosed
	}
	b := m.bucket(bucket)
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = slices.Clone(b[k])
	}
	m.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// DeleteIf implements Store.
func (m *MemoryStore) DeleteIf(_ context.Context, bucket string, pred func(key string, value []byte) bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errStoreClosed
	}
	n := 0
	b := m.bucket(bucket)
	for k, v := range b {
		if pred(k, slices.Clone(v)) {
			delete(b, k)
			n++
		}
	}
	return n, nil
}

// Count implements Store.
func (m *MemoryStore) Count(_ context.Context, bucket string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errStoreClosed
	}
	return len(m.bucket(bucket)), nil
}

// Close implements Store.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

var _ Store = (*MemoryStore)(nil)
