package client

import (
	"regexp"
	"testing"
)

func TestS256AppendixB(t *testing.T) {
	// RFC 7636 Appendix B.
	if got := s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("got %s", got)
	}
}

func TestNewPKCE(t *testing.T) {
	unreserved := regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)
	seen := map[string]bool{}
	for range 100 {
		v, c := newPKCE()
		if !unreserved.MatchString(v) || len(v) != 43 {
			t.Fatalf("verifier %q violates RFC 7636 §4.1", v)
		}
		if c != s256(v) || seen[v] {
			t.Fatalf("bad or repeated pair %q %q", v, c)
		}
		seen[v] = true
	}
}
