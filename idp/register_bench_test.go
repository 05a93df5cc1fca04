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

// TestClientResponseShape pins the registration answer that BenchmarkRegister
// measures (built from a struct, clientResponseBody): a
// confidential client gets its secret with client_secret_expires_at 0, a
// public one neither; metadata and identifiers are always present.
func TestClientResponseShape(t *testing.T) {
	s, err := New(Options{Issuer: "https://idp.example.com", DevLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		method     string
		wantSecret bool
	}{
		{"none", false},
		{"client_secret_basic", true},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{
				"client_name": "shape", "redirect_uris": []string{benchRedirect}, "token_endpoint_auth_method": tt.method,
			})
			r := httptest.NewRequest(http.MethodPost, "/register", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != http.StatusCreated {
				t.Fatalf("register: %d %s", w.Code, w.Body.String())
			}
			var m map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"client_id", "client_id_issued_at", "registration_access_token", "registration_client_uri", "redirect_uris", "grant_types", "response_types", "client_name"} {
				if _, ok := m[f]; !ok {
					t.Errorf("field %s missing: %v", f, m)
				}
			}
			if m["token_endpoint_auth_method"] != tt.method {
				t.Errorf("token_endpoint_auth_method = %v", m["token_endpoint_auth_method"])
			}
			_, hasSecret := m["client_secret"]
			exp, hasExp := m["client_secret_expires_at"]
			if hasSecret != tt.wantSecret || hasExp != tt.wantSecret || (hasExp && exp != float64(0)) {
				t.Errorf("secret %v, expires_at %v (%v), want secret %v", hasSecret, exp, hasExp, tt.wantSecret)
			}
			if u, _ := m["registration_client_uri"].(string); u != "https://idp.example.com/register/"+m["client_id"].(string) {
				t.Errorf("registration_client_uri = %q", u)
			}
		})
	}
}
