package client

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCallbackCheck(t *testing.T) {
	const state, iss = "the-state", "https://as.example"
	tests := []struct {
		name       string
		q          string
		requireIss bool
		wantCode   string
		wantErr    string
	}{
		{"ok with iss", "code=c1&state=the-state&iss=https%3A%2F%2Fas.example", true, "c1", ""},
		{"ok without iss when not advertised", "code=c1&state=the-state", false, "c1", ""},
		{"state mismatch", "code=c1&state=other&iss=https%3A%2F%2Fas.example", true, "", "state does not match"},
		{"state missing", "code=c1", false, "", "state does not match"},
		{"iss mismatch", "code=c1&state=the-state&iss=https%3A%2F%2Fevil.example", false, "", "names issuer https://evil.example, expected https://as.example"},
		{"iss with trailing slash", "code=c1&state=the-state&iss=https%3A%2F%2Fas.example%2F", true, "", "names issuer https://as.example/"},
		{"iss missing but advertised", "code=c1&state=the-state", true, "", "lacks the iss parameter"},
		{"error response", "error=access_denied&error_description=user+said+no&state=the-state&iss=https%3A%2F%2Fas.example", true, "", "refused the login: access_denied: user said no"},
		{"error with forged state", "error=access_denied&state=x", false, "", "state does not match"},
		{"no code", "state=the-state", false, "", "carries no code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &callbackServer{state: state, issuer: iss, requireIss: tt.requireIss}
			q, _ := url.ParseQuery(tt.q)
			res := s.check(q)
			if tt.wantErr == "" {
				if res.err != nil || res.code != tt.wantCode {
					t.Fatalf("got %+v", res)
				}
				return
			}
			mustContain(t, res.err, tt.wantErr)
		})
	}
}

func TestCallbackServerPages(t *testing.T) {
	ln, err := listenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	s := startCallbackServer(ln, "st", "https://as.example", false)
	defer s.Close()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, _, _ := get("/favicon.ico"); code != http.StatusNotFound {
		t.Errorf("favicon: %d", code)
	}
	code, body, h := get("/callback?state=st&error=x&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
	if code != http.StatusBadRequest || strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("failure page %d %q", code, body)
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", h)
	}
	res := <-s.results
	mustContain(t, res.err, "refused the login: x: <script>")
	// Only the first response counts.
	if code, body, _ := get("/callback?state=st&code=late"); code != http.StatusConflict || !strings.Contains(body, "already finished") {
		t.Errorf("second response: %d %q", code, body)
	}
	select {
	case r := <-s.results:
		t.Fatalf("a second result was delivered: %+v", r)
	default:
	}
}

// TestCallbackIgnoresStrayRequests: a request to /callback without this login's state (from
// any local process, or a web page loading http://127.0.0.1:PORT/callback as an image) gets a
// 400 page and is otherwise ignored; the login keeps waiting and the real redirect that
// follows is delivered.
func TestCallbackIgnoresStrayRequests(t *testing.T) {
	strays := []struct {
		name, query string
	}{
		{"no query", ""},
		{"no state", "code=attacker-code"},
		{"empty state", "state=&code=attacker-code"},
		{"wrong state", "state=junk"},
		{"wrong state with a code", "state=junk&code=attacker-code&iss=https%3A%2F%2Fas.example"},
		{"wrong state with an error", "state=junk&error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E"},
		{"state prefix", "state=good-stat&code=c"},
		{"state twice, wrong one first", "state=junk&state=good-state&code=c"},
		{"state twice, right one first", "state=good-state&state=junk&code=c"},
	}
	ln, err := listenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	s := startCallbackServer(ln, "good-state", "https://as.example", false)
	defer s.Close()
	base := "http://" + ln.Addr().String() + "/callback"
	get := func(q string) (int, string) {
		t.Helper()
		u := base
		if q != "" {
			u += "?" + q
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range strays {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(tt.query)
			if code != http.StatusBadRequest || !strings.Contains(body, "not the answer to the login in progress") || strings.Contains(body, "<script>") {
				t.Errorf("stray request: %d %q", code, body)
			}
			select {
			case r := <-s.results:
				t.Fatalf("a stray request was delivered: %+v", r)
			default:
			}
		})
	}
	if n := s.ignored(); n != len(strays) {
		t.Errorf("ignored() = %d, want %d", n, len(strays))
	}
	if code, body := get("state=good-state&code=the-code"); code != http.StatusOK || !strings.Contains(body, "Login complete") {
		t.Fatalf("real redirect: %d %q", code, body)
	}
	select {
	case r := <-s.results:
		if r.err != nil || r.code != "the-code" {
			t.Fatalf("delivered %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the real redirect was not delivered")
	}
	// A stray request after the login still gets the stray page, not a result.
	if code, _ := get("state=junk"); code != http.StatusBadRequest {
		t.Errorf("late stray: %d", code)
	}
}
