package idp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRegister is POST /register (RFC 7591 dynamic client registration)
// of a public MCP client, rate limit off: validation, one store write, the
// answer.
func BenchmarkRegister(b *testing.B) {
	s := newBenchServer(b, nil)
	body, _ := json.Marshal(map[string]any{
		"client_name": "bench", "redirect_uris": []string{benchRedirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/register", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if w := serve(s, r); w.Code != http.StatusCreated {
			b.Fatalf("register: %d %s", w.Code, w.Body.String())
		}
	}
}
