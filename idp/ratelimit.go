package idp

import (
	"net"
	"net/http"
	"strconv"
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

// allow counts one event for key and reports whether it is within the limit; if not, retryAfter
// is the time until key's window ends and events are counted again.
func (l *rateLimiter) allow(key string) (ok bool, retryAfter time.Duration) {
	if l.limit < 0 {
		return true, 0
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
		return false, w.start.Add(l.window).Sub(now)
	}
	w.n++
	return true, 0
}

// retryAfterSecs is a Retry-After value for a wait d: whole seconds rounded up, at least 1.
func retryAfterSecs(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
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

// allowLoginStart counts a sign-in started at GitHub or an upstream provider, each of which
// stores a login state until it ends; beyond the limit it answers a 429 page and reports false.
func (s *Server) allowLoginStart(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := s.loginLimiter.allow(remoteIP(r))
	if ok {
		return true
	}
	s.log.Info("sign-in starts rate limited", "remote", remoteIP(r))
	ra := strconv.Itoa(retryAfterSecs(wait))
	w.Header().Set("Retry-After", ra)
	s.renderError(w, http.StatusTooManyRequests, "Too many sign-in requests",
		"Too many sign-ins were started from your network address. Wait "+ra+" seconds, then try again.")
	return false
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
