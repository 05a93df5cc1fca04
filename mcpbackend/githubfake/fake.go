// Package githubfake is an in-memory fake of the few GitHub REST API endpoints that mcpbackend
// calls, for tests in this and other packages. It is not a general GitHub emulator.
//
// Served endpoints (all GET; every one requires "Authorization: Bearer <token>" or
// "Authorization: token <token>" naming a known user, else 401 "Bad credentials" as GitHub answers):
//
//	/user
//	/user/repos                          visibility, sort, per_page, page (lists the user's own repositories)
//	/repos/{owner}/{repo}
//	/repos/{owner}/{repo}/issues         state, labels, per_page, page
//	/repos/{owner}/{repo}/contents/{path...}  ref
//	/search/repositories                 q, sort, per_page, page
//
// List endpoints paginate like GitHub (per_page default 30, at most 100) and send a Link header
// with rel="next", "prev", "first" and "last". Every response carries X-RateLimit-* headers.
// The fake records every request with the token it carried (see Requests and Tokens), and
// FailNext queues canned faults (status codes, rate-limit headers, malformed bodies, delays, and
// responses held until the test releases them).
package githubfake

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Demo data installed by NewDemo. The tokens are fake values, meaningful only to this fake.
const (
	AliceLogin = "alice"
	AliceID    = 1001
	AliceToken = "ghu_fakeAliceToken0000000000000000001"
	BobLogin   = "bob"
	BobID      = 1002
	BobToken   = "ghu_fakeBobToken00000000000000000000002"
)

// User is a GitHub account known to the fake.
type User struct {
	ID    int64
	Login string
	Name  string
	Email string
	// Token is the access token that authenticates as this user. Required and unique.
	Token string
}

// Repo is a repository known to the fake.
type Repo struct {
	ID            int64
	Owner         string // the owner's login; must be a known user
	Name          string
	Private       bool
	Description   string
	Language      string
	DefaultBranch string // default "main"
	Stars         int
	Forks         int
	Topics        []string
	// Files maps a slash-separated path (no leading slash) to its content on the default branch.
	// Directories are implied by the paths.
	Files map[string]string
	// Issues of the repository; Number must be unique within the repository.
	Issues []Issue
}

// Issue is an issue (or, with PullRequest set, a pull request) in a Repo.
type Issue struct {
	Number      int
	Title       string
	Body        string
	State       string // "open" (default) or "closed"
	Labels      []string
	Author      string // login
	PullRequest bool
}

// Fault is a canned response served instead of the normal one (see FailNext).
type Fault struct {
	Status int         // HTTP status; 0 means 200
	Header http.Header // extra response headers, e.g. X-RateLimit-Remaining: 0
	Body   string      // raw response body; written as-is (use it for malformed JSON)
	// Delay holds the response back this long, or until the client gives up (request context done).
	Delay time.Duration
	// Hold, if not nil, holds the response back until it is closed, or until the client gives up
	// (then nothing is written). With Delay, both must pass. Tests use it to keep a call in flight
	// for as long as they need without depending on timing.
	Hold <-chan struct{}
}

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string     // decoded path
	Query  url.Values // decoded query
	Token  string     // the token from the Authorization header; "" if none
	Header http.Header
}

// Fake is the fake GitHub API. It is an http.Handler; serve it with httptest.NewServer.
// All methods are safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	users    []*User
	repos    []*Repo
	faults   []Fault
	requests []Request
	now      func() time.Time
}

// New returns an empty fake: no users, no repositories.
func New() *Fake { return &Fake{now: time.Now} }

// NewDemo returns a fake with two users, alice and bob (see the constants), and repositories:
// alice/hello-world (public, with issues and files), alice/secret-plans (private),
// alice/repo-01 … alice/repo-45 (public, for pagination), and bob/tools (public).
func NewDemo() *Fake {
	f := New()
	f.AddUser(User{ID: AliceID, Login: AliceLogin, Name: "Alice Example", Email: "alice@example.com", Token: AliceToken})
	f.AddUser(User{ID: BobID, Login: BobLogin, Name: "Bob Example", Token: BobToken})
	f.AddRepo(Repo{
		ID: 5001, Owner: AliceLogin, Name: "hello-world", Description: "My first repository on GitHub",
		Language: "Go", Stars: 42, Forks: 7, Topics: []string{"demo", "mcp"},
		Files: map[string]string{
			"README.md":         "# hello-world\n\nA demo repository.\n",
			"main.go":           "package main\n\nfunc main() { println(\"hello\") }\n",
			"docs/guide.md":     "# Guide\n",
			"docs/a file.txt":   "spaces in names\n",
			"docs/deep/more.md": "deeper\n",
		},
		Issues: []Issue{
			{Number: 1, Title: "Found a bug", Body: "It crashes.", Labels: []string{"bug"}, Author: BobLogin},
			{Number: 2, Title: "Add docs", Labels: []string{"documentation", "good first issue"}, Author: AliceLogin},
			{Number: 3, Title: "Old problem", State: "closed", Labels: []string{"bug"}, Author: BobLogin},
			{Number: 4, Title: "Fix the bug", PullRequest: true, Author: BobLogin},
		},
	})
	f.AddRepo(Repo{ID: 5002, Owner: AliceLogin, Name: "secret-plans", Private: true, Description: "Private stuff",
		Files: map[string]string{"plan.txt": "world domination\n"}})
	for i := 1; i <= 45; i++ {
		f.AddRepo(Repo{ID: int64(6000 + i), Owner: AliceLogin, Name: fmt.Sprintf("repo-%02d", i), Description: "Filler repository"})
	}
	f.AddRepo(Repo{ID: 7001, Owner: BobLogin, Name: "tools", Description: "Bob's hello tools", Language: "Rust", Stars: 3})
	return f
}

// SetNow replaces the clock used for timestamps and rate-limit reset times (default time.Now).
func (f *Fake) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// AddUser adds an account.
func (f *Fake) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users = append(f.users, &u)
}

// AddRepo adds a repository.
func (f *Fake) AddRepo(r Repo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.DefaultBranch == "" {
		r.DefaultBranch = "main"
	}
	f.repos = append(f.repos, &r)
}

// FailNext queues faults: each following request is answered with the next queued fault
// (after recording it) instead of the normal response, until the queue is empty.
func (f *Fake) FailNext(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, faults...)
}

// Requests returns a copy of every request received so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Tokens returns the token of every request received so far, in order ("" for none).
func (f *Fake) Tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.requests))
	for i, r := range f.requests {
		out[i] = r.Token
	}
	return out
}

// Reset forgets the recorded requests and any queued faults.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
	f.faults = nil
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := bearer(r.Header.Get("Authorization"))
	f.mu.Lock()
	f.requests = append(f.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Token: token, Header: r.Header.Clone(),
	})
	var fault *Fault
	if len(f.faults) > 0 {
		fault = &f.faults[0]
		f.faults = f.faults[1:]
	}
	now := f.now()
	var user *User
	for _, u := range f.users {
		if token != "" && u.Token == token {
			user = u
		}
	}
	f.mu.Unlock()

	w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	if fault != nil {
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Hold != nil {
			select {
			case <-fault.Hold:
			case <-r.Context().Done():
				return
			}
		}
		for k, vs := range fault.Header {
			w.Header()[http.CanonicalHeaderKey(k)] = vs
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		st := fault.Status
		if st == 0 {
			st = http.StatusOK
		}
		w.WriteHeader(st)
		_, _ = w.Write([]byte(fault.Body))
		return
	}
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusNotFound, ghMessage("Not Found"))
		return
	}
	if user == nil {
		writeJSON(w, http.StatusUnauthorized, ghMessage("Bad credentials"))
		return
	}
	f.route(w, r, user)
}
