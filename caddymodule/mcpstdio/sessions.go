package mcpstdio

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// This file keeps the MCP sessions of 2025-xx clients and the GET streams that carry a
// process's notifications. A session is only a handle for the client's protocol version and
// its GET stream: it belongs to one user key, a request that presents a session of another
// user (or an unknown one) gets 404, and it never authenticates anyone (mcp_auth verifies the
// token on every request). Sessions outlive processes: a replaced process is initialized by
// the bridge, not by the client.

// maxSessionsPerUser bounds one user's sessions; the oldest is dropped beyond it.
const maxSessionsPerUser = 32

// maxStreamsPerUser bounds one user's open GET streams.
const maxStreamsPerUser = 8

type session struct {
	key      string
	version  string
	lastUsed time.Time
}

type sessionStore struct {
	mu     sync.Mutex
	byID   map[string]*session
	byUser map[string][]string // in creation order
	ttl    time.Duration
	now    func() time.Time
}

func newSessionStore(ttl time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{byID: map[string]*session{}, byUser: map[string][]string{}, ttl: ttl, now: now}
}

// create issues a new session id for key: 128 random bits, base64url.
func (s *sessionStore) create(key, version string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[id] = &session{key: key, version: version, lastUsed: s.now()}
	ids := append(s.byUser[key], id)
	for len(ids) > maxSessionsPerUser {
		delete(s.byID, ids[0])
		ids = ids[1:]
	}
	s.byUser[key] = ids
	return id
}

// get returns the session id of key. Unknown, expired and other users' sessions are the
// same "not found".
func (s *sessionStore) get(id, key string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok || ss.key != key {
		return nil, false
	}
	ss.lastUsed = s.now()
	return ss, true
}

// remove ends session id of key; false if it is not key's.
func (s *sessionStore) remove(id, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok || ss.key != key {
		return false
	}
	s.removeLocked(id, key)
	return true
}

func (s *sessionStore) removeLocked(id, key string) {
	delete(s.byID, id)
	ids := s.byUser[key]
	for i, v := range ids {
		if v == id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(s.byUser, key)
	} else {
		s.byUser[key] = ids
	}
}

// reap drops sessions unused for the session TTL.
func (s *sessionStore) reap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.byID {
		if now.Sub(ss.lastUsed) >= s.ttl {
			s.removeLocked(id, ss.key)
		}
	}
}

// errTooManyStreams: the user has maxStreamsPerUser GET streams open.
var errTooManyStreams = errors.New("too many open event streams for this user")

// hub fans a user's process notifications out to that user's open GET streams.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan []byte]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan []byte]struct{}{}} }

// subscribe opens a stream for key; the returned func closes it.
func (h *hub) subscribe(key string) (chan []byte, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs[key]) >= maxStreamsPerUser {
		return nil, nil, errTooManyStreams
	}
	ch := make(chan []byte, 64)
	if h.subs[key] == nil {
		h.subs[key] = map[chan []byte]struct{}{}
	}
	h.subs[key][ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs[key], ch)
		if len(h.subs[key]) == 0 {
			delete(h.subs, key)
		}
	}, nil
}

// publish sends msg to every stream of key; a stream that is not keeping up misses it.
func (h *hub) publish(key string, msg []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for ch := range h.subs[key] {
		if deliver(ch, msg) {
			n++
		}
	}
	return n
}
