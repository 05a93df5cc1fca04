package idp

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The anonymous login form's CSRF token is stateless: cookieless GET /login writes no store
// record, and the token is accepted only with the cookie it was issued for, before it expires.
func TestAnonymousLoginCSRFIsStateless(t *testing.T) {
	e := newEnv(t, nil)
	for range 200 {
		resp, err := http.Get(e.url("/login"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ck := resp.Cookies(); len(ck) != 1 || !strings.HasPrefix(ck[0].Value, anonPrefix) {
			t.Fatalf("login page cookies %v", ck)
		}
	}
	if n, _ := e.srv.store.Count(context.Background(), bucketSessions); n != 0 {
		t.Fatalf("200 cookieless GET /login stored %d sessions, want 0", n)
	}

	tests := []struct {
		name    string
		token   func(own, other string) string
		advance time.Duration
		want    int
	}{
		{"own token", func(own, _ string) string { return own }, 0, http.StatusSeeOther},
		{"another browser's token", func(_, other string) string { return other }, 0, http.StatusForbidden},
		{"forged token", func(string, string) string { return "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, 0, http.StatusForbidden},
		{"no token", func(string, string) string { return "" }, 0, http.StatusForbidden},
		{"own token after the login window", func(own, _ string) string { return own }, 11 * time.Minute, http.StatusForbidden},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			own := formValue(t, csrfRe, b.get(e.url("/login")).body)
			other := formValue(t, csrfRe, e.browser().get(e.url("/login")).body)
			e.clock.Advance(tc.advance)
			r := b.post(e.url("/login"), url.Values{"csrf_token": {tc.token(own, other)}, "username": {"anon" + string(rune('a'+i))}})
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
		})
	}
	if n, _ := e.srv.store.Count(context.Background(), bucketSessions); n != 1 {
		t.Fatalf("%d sessions stored, want 1 (the one sign-in)", n)
	}
}
