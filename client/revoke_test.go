package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRevokeAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		hint    string
		wantErr string
	}{
		{"ok", http.StatusOK, "", "refresh_token", ""},
		{"access tokens not revocable", http.StatusBadRequest, `{"error":"unsupported_token_type"}`, "access_token", ""},
		{"refresh token unsupported is an error", http.StatusBadRequest, `{"error":"unsupported_token_type"}`, "refresh_token", "revoking the refresh token failed"},
		{"server error", http.StatusServiceUnavailable, "down", "access_token", "revoking the access token failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, _ := New(Config{MCPURL: "https://h/mcp", CacheDir: t.TempDir()})
			err := c.revoke(context.Background(), srv.URL, "tok", tt.hint, clientCreds{ID: "c"})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			mustContain(t, err, tt.wantErr)
		})
	}
}
