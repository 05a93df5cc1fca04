package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
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

// TestLoginRevokesReplacedTokens: a login that replaces cached tokens revokes them (RFC 7009)
// when the server has a revocation endpoint, as best effort: no endpoint, or a failing one,
// does not fail the login. The revocation happens before the new authorization, so servers
// that revoke the whole grant with a refresh token (Auth0, Keycloak) leave the new tokens alone.
func TestLoginRevokesReplacedTokens(t *testing.T) {
	tests := []struct {
		name        string
		ao          oauthtest.ASOptions
		wantRevoked string // token_type_hints recorded by the server
		oldDead     bool
	}{
		{"revocation endpoint", oauthtest.ASOptions{}, "refresh_token,access_token", true},
		{"grant-wide revocation", oauthtest.ASOptions{RevokeGrant: true}, "refresh_token,access_token", true},
		{"no revocation endpoint", oauthtest.ASOptions{NoRevocation: true}, "", false},
		{"revocation fails", oauthtest.ASOptions{RevocationFails: true}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.ao, oauthtest.ResourceOptions{})
			c, stderr := e.client(t, nil)
			if err := c.Login(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if got := e.as.Revoked(); len(got) != 0 {
				t.Fatalf("the first login revoked %v", got)
			}
			old, _ := c.cachedToken()
			if err := c.Login(ctxT(t)); err != nil {
				t.Fatalf("second login: %v", err)
			}
			if got := strings.Join(e.as.Revoked(), ","); got != tt.wantRevoked {
				t.Errorf("revocations %q, want %q", got, tt.wantRevoked)
			}
			_, oldAT := e.as.Validate(old.AccessToken)
			oldRT := e.as.ValidRefresh(old.RefreshToken)
			if tt.oldDead && (oldAT || oldRT) {
				t.Errorf("replaced tokens still live: access %v, refresh %v", oldAT, oldRT)
			}
			if !tt.oldDead && !oldAT {
				t.Errorf("the old access token was revoked without a working revocation endpoint")
			}
			rec, _ := c.cachedToken()
			if rec == nil || rec.AccessToken == old.AccessToken {
				t.Fatalf("token not replaced: %+v", rec)
			}
			if _, ok := e.as.Validate(rec.AccessToken); !ok || !e.as.ValidRefresh(rec.RefreshToken) {
				t.Error("the new tokens do not work")
			}
			if _, err := c.Tools(ctxT(t)); err != nil {
				t.Errorf("Tools with the new tokens: %v", err)
			}
			entries, _ := os.ReadDir(filepath.Join(e.cacheDir, "tokens"))
			if len(entries) != 1 {
				t.Errorf("token files %v, want one", entries)
			}
			for _, s := range []string{old.AccessToken, old.RefreshToken, rec.AccessToken, rec.RefreshToken} {
				if strings.Contains(stderr.String(), s) {
					t.Fatal("token material in output")
				}
			}
		})
	}
}
