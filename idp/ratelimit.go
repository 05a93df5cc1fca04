package idp

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// rateLimiter is a fixed-window counter per remote address. Entries are pruned by the background
// goroutine, so the map cannot grow beyond the addresses seen in one window.
type rateLimiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	windows map[string]*rlWindow
}

type rlWindow struct {
	start time.Time
	n     int
}

func newRateLimiter(limit int, window time.Duration, now func() time.Time) *rateLimiter {
	return &rateLimiter{limit: limit, window: window, now: now, windows: make(map[string]*rlWindow)}
}

// allow counts one event for key and reports whether it is within the limit.
func (l *rateLimiter) allow(key string) bool {
	if l.limit < 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	if w == nil || now.Sub(w.start) >= l.window {
		w = &rlWindow{start: now}
		l.windows[key] = w
	}
	if w.n >= l.limit {
		return false
	}
	w.n++
	return true
}

func (l *rateLimiter) prune() {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.window {
			delete(l.windows, k)
		}
	}
}

// remoteIP is the client address from the connection only (r.RemoteAddr); forwarded headers are
// never consulted. An embedding proxy that trusts its upstream sets RemoteAddr itself.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
