package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIDJAGCommand runs the subcommand against a fake IdP and a fake authorization server that
// check what each step sends.
func TestIDJAGCommand(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id, secret, _ := r.BasicAuth()
		if id != "ent" || secret != "ent-secret" || r.PostForm.Get("subject_token") != "the-id-token" ||
			r.PostForm.Get("resource") != "https://mcp.example/mcp" || r.PostForm.Get("scope") != "mcp" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "the-jag", "issued_token_type": "urn:ietf:params:oauth:token-type:id-jag", "token_type": "N_A"})
	}))
	defer idp.Close()
	var as *httptest.Server
	as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": as.URL, "token_endpoint": as.URL + "/token",
				"authorization_grant_profiles_supported": []string{"urn:ietf:params:oauth:grant-profile:id-jag"}})
			return
		}
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.PostForm.Get("assertion") != "the-jag" || r.PostForm.Get("client_id") != "mcp-client" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"bad"}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"at-123","token_type":"Bearer","expires_in":3600,"scope":"mcp"}`))
	}))
	defer as.Close()
	tokFile := filepath.Join(t.TempDir(), "id_token")
	_ = os.WriteFile(tokFile, []byte("the-id-token\n"), 0o600)
	env := map[string]string{"MCPGATE_IDP_CLIENT_SECRET": "ent-secret"}
	getenv := func(k string) string { return env[k] }
	args := []string{"id-jag", "-idp-token-url", idp.URL, "-idp-client-id", "ent", "-id-token-file", tokFile,
		"-issuer", as.URL, "-resource", "https://mcp.example/mcp", "-client-id", "mcp-client", "-scope", "mcp"}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb, getenv); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var tok map[string]any
	if err := json.Unmarshal(out.Bytes(), &tok); err != nil || tok["access_token"] != "at-123" || tok["scope"] != "mcp" {
		t.Fatalf("output %s (%v)", out.String(), err)
	}

	// A refusal at the IdP exits 1 and names the step, without the ID token.
	out.Reset()
	errb.Reset()
	_ = os.WriteFile(tokFile, []byte("wrong-token"), 0o600)
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb, getenv); code != 1 || !strings.Contains(errb.String(), "ID-JAG request") || strings.Contains(errb.String(), "wrong-token") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// Missing inputs are a usage error that lists them.
	errb.Reset()
	if code := run(context.Background(), []string{"id-jag", "-issuer", as.URL}, strings.NewReader(""), &out, &errb, getenv); code != 2 || !strings.Contains(errb.String(), "-idp-token-url") || !strings.Contains(errb.String(), "MCPGATE_ID_TOKEN") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
