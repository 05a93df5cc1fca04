package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestFlexInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{{`3600`, 3600, false}, {`"3600"`, 3600, false}, {`null`, 0, false}, {`3599.9`, 3599, false}, {`"soon"`, 0, true}}
	for _, tt := range tests {
		var v struct {
			E flexInt `json:"e"`
		}
		err := json.Unmarshal([]byte(`{"e":`+tt.in+`}`), &v)
		if (err != nil) != tt.err || (!tt.err && int64(v.E) != tt.want) {
			t.Errorf("%s: got %d, %v", tt.in, v.E, err)
		}
	}
}

func TestSanitize(t *testing.T) {
	if got := sanitize("a\nb\x1b[31mc\t"); got != "a b [31mc" {
		t.Errorf("got %q", got)
	}
	if got := sanitize(strings.Repeat("x", 300)); len([]rune(got)) != 203 {
		t.Errorf("not truncated: %d", len(got))
	}
}

func TestSecretMethod(t *testing.T) {
	tests := []struct {
		supported []string
		want      string
	}{
		{nil, "client_secret_basic"},
		{[]string{"none", "client_secret_post"}, "client_secret_post"},
		{[]string{"client_secret_post", "client_secret_basic"}, "client_secret_basic"},
		{[]string{"private_key_jwt"}, "client_secret_basic"},
	}
	for _, tt := range tests {
		if got := secretMethod(&AuthServerMetadata{TokenEndpointAuthMethodsSupported: tt.supported}); got != tt.want {
			t.Errorf("%v: got %s, want %s", tt.supported, got, tt.want)
		}
	}
}

func TestTokenRequest(t *testing.T) {
	var gotAuth string
	var gotForm url.Values
	answer := `{"access_token":"x","token_type":"bearer","expires_in":"60"}`
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		_ = r.ParseForm()
		gotForm = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	defer srv.Close()
	c, _ := New(Config{MCPURL: "https://h/mcp", CacheDir: t.TempDir()})
	ctx := ctxT(t)

	tr, err := c.tokenRequest(ctx, srv.URL, url.Values{"grant_type": {"x"}}, clientCreds{ID: "id:1", Secret: "p@ss word", Method: "client_secret_basic"})
	if err != nil || tr.ExpiresIn != 60 {
		t.Fatalf("%+v %v", tr, err)
	}
	r := &http.Request{Header: http.Header{"Authorization": {gotAuth}}}
	u, p, ok := r.BasicAuth()
	if !ok || u != "id%3A1" || p != "p%40ss+word" || gotForm.Has("client_secret") {
		t.Errorf("basic auth %q %q %v, form %v", u, p, ok, gotForm)
	}

	_, _ = c.tokenRequest(ctx, srv.URL, url.Values{}, clientCreds{ID: "id", Secret: "s", Method: "client_secret_post"})
	if gotAuth != "" || gotForm.Get("client_secret") != "s" || gotForm.Get("client_id") != "id" {
		t.Errorf("post auth: %q %v", gotAuth, gotForm)
	}
	_, _ = c.tokenRequest(ctx, srv.URL, url.Values{}, clientCreds{ID: "pub", Method: "none"})
	if gotAuth != "" || gotForm.Get("client_id") != "pub" || gotForm.Has("client_secret") {
		t.Errorf("public client: %q %v", gotAuth, gotForm)
	}

	answer = `{"access_token":"x","token_type":"DPoP"}`
	_, err = c.tokenRequest(ctx, srv.URL, url.Values{}, clientCreds{ID: "pub"})
	mustContain(t, err, `issued a "DPoP" token`)

	answer, status = `{"error":"invalid_grant","error_description":"code\nexpired"}`, http.StatusBadRequest
	_, err = c.tokenRequest(ctx, srv.URL, url.Values{}, clientCreds{ID: "pub"})
	mustContain(t, err, "answered 400 invalid_grant: code expired")
	var oe *OAuthError
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Errorf("not an OAuthError: %v", err)
	}
}
