package client

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// callbackResult is what the loopback redirect delivered: a code, or why the login failed.
type callbackResult struct {
	code string
	err  error
}

// callbackServer receives the authorization response on 127.0.0.1 (RFC 8252 §7.3). Only a
// response carrying this login's state is delivered, and only the first such one: the port is
// predictable (cached or pinned), so any local process or web page can request /callback, and
// such a request must neither end the login nor make the real redirect fail. Requests without
// the state get a 400 page and are counted, nothing else.
type callbackServer struct {
	srv        *http.Server
	ln         net.Listener
	state      string
	issuer     string
	requireIss bool
	results    chan callbackResult
	once       sync.Once
	strays     atomic.Int64
	done       chan struct{}
}

// listenLoopback listens on 127.0.0.1:port (port 0: an ephemeral port).
func listenLoopback(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
}

func startCallbackServer(ln net.Listener, state, issuer string, requireIss bool) *callbackServer {
	s := &callbackServer{
		ln: ln, state: state, issuer: issuer, requireIss: requireIss,
		results: make(chan callbackResult, 1),
		done:    make(chan struct{}),
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed on Shutdown
	}()
	return s
}

// Close stops the server after in-flight responses (the result page) are written.
func (s *callbackServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

func (s *callbackServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != callbackPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if !s.stateMatches(q) {
		s.strays.Add(1)
		writePage(w, http.StatusBadRequest, "Not this login",
			"This request is not the answer to the login in progress (its state does not match), so it was ignored. If you are logging in, finish in the tab the terminal opened.", false)
		return
	}
	first := false
	var res callbackResult
	s.once.Do(func() {
		first = true
		res = s.check(q)
		s.results <- res
	})
	switch {
	case !first:
		writePage(w, http.StatusConflict, "Login already finished", "This login has already finished. You can close this tab.", false)
	case res.err != nil:
		writePage(w, http.StatusBadRequest, "Login failed", "Login failed: "+res.err.Error()+". Return to the terminal for details.", false)
	default:
		writePage(w, http.StatusOK, "Login complete", "You are logged in. You can close this tab and return to the terminal.", true)
	}
}

// ignored returns how many requests to the callback were ignored for lacking this login's state.
func (s *callbackServer) ignored() int {
	return int(s.strays.Load())
}

// stateMatches reports whether q carries exactly one state parameter and it equals this login's
// (compared in constant time).
func (s *callbackServer) stateMatches(q url.Values) bool {
	st := q["state"]
	return len(st) == 1 && st[0] != "" && subtle.ConstantTimeCompare([]byte(st[0]), []byte(s.state)) == 1
}

// check validates an authorization response (RFC 6749 §4.1.2, RFC 9207 §2.4): state first,
// then iss, then error, then code.
func (s *callbackServer) check(q url.Values) callbackResult {
	if !s.stateMatches(q) { // ServeHTTP ignores these; checked again so check stands alone
		return callbackResult{err: errors.New("the authorization response's state does not match this login; aborted")}
	}
	iss, hasIss := q.Get("iss"), q.Has("iss")
	switch {
	case hasIss && iss != s.issuer:
		return callbackResult{err: fmt.Errorf("the authorization response names issuer %s, expected %s; aborted", sanitize(iss), s.issuer)}
	case !hasIss && s.requireIss:
		return callbackResult{err: fmt.Errorf("the authorization response lacks the iss parameter that %s advertises; aborted", s.issuer)}
	}
	if e := q.Get("error"); e != "" {
		msg := "the authorization server refused the login: " + sanitize(e)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + sanitize(d)
		}
		return callbackResult{err: errors.New(msg)}
	}
	code := q.Get("code")
	if code == "" {
		return callbackResult{err: errors.New("the authorization response carries no code")}
	}
	return callbackResult{code: code}
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} - mcpgate</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}.ok{color:#176b2c}.fail{color:#a3201c}</style></head>
<body><h1 class="{{if .OK}}ok{{else}}fail{{end}}">{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// writePage writes a small HTML page; html/template escapes the message, which may contain
// text from the authorization server.
func writePage(w http.ResponseWriter, status int, title, msg string, ok bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct {
		Title, Message string
		OK             bool
	}{title, msg, ok})
}
