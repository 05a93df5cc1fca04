package mcpbackend

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// TestPerRequestTokenIsolation runs two clients with different tokens concurrently: each call must
// reach GitHub with its own client's token and return its own user.
func TestPerRequestTokenIsolation(t *testing.T) {
	e := newEnv(t, nil)
	users := []struct{ login, token string }{{"alice", githubfake.AliceToken}, {"bob", githubfake.BobToken}}
	const calls = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*calls)
	for _, u := range users {
		c := connect(t, e.backend.URL+"/mcp", map[string]string{"X-GitHub-Token": u.token}, "")
		for range calls {
			wg.Go(func() {
				req := callReq("get_user_info", nil)
				res, err := c.CallTool(context.Background(), req)
				if err != nil {
					errs <- err
					return
				}
				if res.IsError || !strings.Contains(text(res), "GitHub user "+u.login+" ") {
					errs <- fmt.Errorf("client of %s got %q", u.login, text(res))
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	counts := map[string]int{}
	for _, tok := range e.fake.Tokens() {
		counts[tok]++
	}
	if counts[githubfake.AliceToken] != calls || counts[githubfake.BobToken] != calls || len(counts) != 2 {
		t.Errorf("tokens seen by GitHub: %v; want %d of each and nothing else", counts, calls)
	}
}

func TestTokenSelection(t *testing.T) {
	const envTok = "env-token-secret-value"
	tests := []struct {
		name       string
		allowEnv   bool
		envToken   string
		header     map[string]string
		wantErr    []string // tool error fragments; nil means success
		wantGitHub string   // token GitHub must have received ("" = GitHub not called)
	}{
		{name: "header used", header: aliceHeaders, wantGitHub: githubfake.AliceToken},
		{name: "no header, no env", wantErr: []string{"no GitHub account is linked", "X-GitHub-Token"}},
		{name: "no header, env present but not allowed", envToken: envTok, wantErr: []string{"no GitHub account is linked"}},
		{name: "no header, env allowed", allowEnv: true, envToken: githubfake.BobToken, wantGitHub: githubfake.BobToken},
		{name: "header wins over env", allowEnv: true, envToken: githubfake.BobToken, header: aliceHeaders, wantGitHub: githubfake.AliceToken},
		{name: "env allowed but empty", allowEnv: true, wantErr: []string{"no GitHub account is linked", "GITHUB_ACCESS_TOKEN"}},
		{name: "Authorization: Bearer GitHub token used", header: map[string]string{"Authorization": "Bearer " + githubfake.AliceToken},
			wantGitHub: githubfake.AliceToken},
		{name: "client's gateway JWT is never used", header: map[string]string{"Authorization": "Bearer " + clientJWT},
			wantErr: []string{"no GitHub account is linked", "JWT"}},
		{name: "client's gateway JWT beside the token header is not forwarded",
			header:     map[string]string{"Authorization": "Bearer " + clientJWT, "X-GitHub-Token": githubfake.BobToken},
			wantGitHub: githubfake.BobToken},
		{name: "malformed header", header: map[string]string{"X-GitHub-Token": "two words"}, wantErr: []string{"header is malformed"}},
		{name: "wrong token: GitHub's 401", header: map[string]string{"X-GitHub-Token": "ghu_wrong"}, wantErr: []string{"GitHub rejected the token"}, wantGitHub: "ghu_wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.AllowEnvToken, o.EnvToken = tt.allowEnv, tt.envToken })
			c := connect(t, e.backend.URL+"/mcp", tt.header, "")
			res := call(t, c, "get_user_info", nil)
			if tt.wantErr != nil {
				wantToolError(t, res, tt.wantErr...)
			} else if res.IsError {
				t.Fatalf("unexpected tool error %s", text(res))
			}
			reqs := e.fake.Requests()
			switch {
			case tt.wantGitHub == "" && len(reqs) != 0:
				t.Errorf("GitHub was called with token %q", reqs[0].Token)
			case tt.wantGitHub != "" && (len(reqs) != 1 || reqs[0].Token != tt.wantGitHub):
				t.Errorf("GitHub requests %+v, want one with the expected token", reqs)
			}
			for _, r := range reqs {
				if strings.Contains(strings.Join(r.Header.Values("Authorization"), " "), clientJWT) || r.Header.Get("X-GitHub-Token") != "" {
					t.Errorf("a client header was forwarded to GitHub: %v", r.Header)
				}
			}
		})
	}
}

func TestHTTPContextFuncRepeatedHeader(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Add("X-GitHub-Token", githubfake.AliceToken)
	r.Header.Add("X-GitHub-Token", githubfake.BobToken)
	b, err := newBackend(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := httpContextFunc("X-GitHub-Token")(context.Background(), r)
	tok, _, err := b.tokenFor(ctx)
	if err == nil || tok != "" || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("token %q, err %v; want a refusal", tok, err)
	}
	if strings.Contains(err.Error(), githubfake.AliceToken) || strings.Contains(err.Error(), githubfake.BobToken) {
		t.Errorf("the error leaks a token: %v", err)
	}
}

func TestCheckToken(t *testing.T) {
	tests := []struct {
		tok string
		ok  bool
	}{
		{"ghu_abc123", true},
		{"github_pat_11AAAA_bbbb", true},
		{"", false},
		{"a b", false},
		{"tab\there", false},
		{"ünïcode", false},
		{strings.Repeat("a", maxTokenBytes), true},
		{strings.Repeat("a", maxTokenBytes+1), false},
	}
	for _, tt := range tests {
		err := checkToken(tt.tok)
		if (err == nil) != tt.ok {
			t.Errorf("checkToken(%.20q) = %v, want ok=%v", tt.tok, err, tt.ok)
		}
		if err != nil && tt.tok != "" && strings.Contains(err.Error(), tt.tok) {
			t.Errorf("error %q contains the value", err)
		}
	}
}

// clientJWT has the shape of the client's access token for the gateway (an RS256 JWT), which
// mcp_auth forwards only with keep_authorization.
var clientJWT = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"k1"}`)) +
	"." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"user-1","aud":"https://mcp.example.com/mcp"}`)) + ".c2lnbmF0dXJl"

// TestAuthorizationBearer sends raw tools/call POSTs (so that a header can be repeated) and checks
// which token reaches GitHub, or the error: the token header first, else Authorization: Bearer;
// an Authorization header that is not one usable Bearer GitHub token counts as no token; two
// different tokens are refused with 400.
func TestAuthorizationBearer(t *testing.T) {
	alice, bob := githubfake.AliceToken, githubfake.BobToken
	tests := []struct {
		name       string
		header     []string // alternating name, value; names may repeat
		allowEnv   bool
		wantStatus int      // 0 means 200
		wantErr    []string // tool error fragments (or 400 body fragments); nil means success
		wantGitHub string   // token GitHub must have received ("" = GitHub not called)
	}{
		{name: "bearer only", header: []string{"Authorization", "Bearer " + alice}, wantGitHub: alice},
		{name: "scheme case-insensitive, extra spaces", header: []string{"Authorization", "bearer   " + alice}, wantGitHub: alice},
		{name: "token header only", header: []string{"X-GitHub-Token", alice}, wantGitHub: alice},
		{name: "both, same token", header: []string{"X-GitHub-Token", alice, "Authorization", "Bearer " + alice}, wantGitHub: alice},
		{name: "both, different tokens: 400", header: []string{"X-GitHub-Token", alice, "Authorization", "Bearer " + bob},
			wantStatus: http.StatusBadRequest, wantErr: []string{"two different GitHub tokens", "refusing"}},
		{name: "token header beside Basic", header: []string{"X-GitHub-Token", alice, "Authorization", "Basic dXNlcjpwYXNz"}, wantGitHub: alice},
		{name: "token header beside the gateway JWT", header: []string{"X-GitHub-Token", bob, "Authorization", "Bearer " + clientJWT}, wantGitHub: bob},
		{name: "Basic only: no token", header: []string{"Authorization", "Basic dXNlcjpwYXNz"},
			wantErr: []string{"no GitHub account is linked", "X-GitHub-Token", "not a Bearer credential"}},
		{name: "Bearer without value: no token", header: []string{"Authorization", "Bearer"},
			wantErr: []string{"no GitHub account is linked", "Bearer value is malformed", "empty"}},
		{name: "Bearer with a space only: no token", header: []string{"Authorization", "Bearer "},
			wantErr: []string{"no GitHub account is linked", "malformed"}},
		{name: "Bearer value with spaces: no token", header: []string{"Authorization", "Bearer two words"},
			wantErr: []string{"no GitHub account is linked", "malformed"}},
		{name: "two Authorization headers: no token", header: []string{"Authorization", "Bearer " + alice, "Authorization", "Bearer " + alice},
			wantErr: []string{"no GitHub account is linked", "more than once"}},
		{name: "gateway JWT only: no token", header: []string{"Authorization", "Bearer " + clientJWT},
			wantErr: []string{"no GitHub account is linked", "JWT", "never sent to GitHub"}},
		{name: "env allowed, Basic: env token as when missing", header: []string{"Authorization", "Basic dXNlcjpwYXNz"}, allowEnv: true, wantGitHub: bob},
		{name: "env allowed, bearer wins over env", header: []string{"Authorization", "Bearer " + alice}, allowEnv: true, wantGitHub: alice},
		{name: "malformed token header is not replaced by the bearer", header: []string{"X-GitHub-Token", "two words", "Authorization", "Bearer " + alice},
			wantErr: []string{"X-GitHub-Token header is malformed"}},
		{name: "repeated token header is not replaced by the bearer", header: []string{"X-GitHub-Token", alice, "X-GitHub-Token", alice, "Authorization", "Bearer " + alice},
			wantErr: []string{"more than once"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.AllowEnvToken, o.EnvToken = tt.allowEnv, bob })
			body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_user_info","arguments":{}}}`
			req, _ := http.NewRequest(http.MethodPost, e.backend.URL+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", "2025-06-18")
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Add(tt.header[i], tt.header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			out := string(raw)
			wantStatus := tt.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if resp.StatusCode != wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, wantStatus, out)
			}
			if wantStatus == http.StatusOK {
				isErr := strings.Contains(out, `"isError":true`)
				if (tt.wantErr != nil) != isErr {
					t.Errorf("tool error %v, want %v: %s", isErr, tt.wantErr != nil, out)
				}
				if tt.wantErr == nil && !strings.Contains(out, "GitHub user") {
					t.Errorf("no user in %s", out)
				}
			}
			for _, f := range tt.wantErr {
				if !strings.Contains(out, f) {
					t.Errorf("response lacks %q: %s", f, out)
				}
			}
			for _, secret := range []string{alice, bob, clientJWT, "dXNlcjpwYXNz"} {
				if strings.Contains(out, secret) {
					t.Errorf("the response contains a credential: %s", out)
				}
			}
			if strings.Contains(e.logs.String(), clientJWT) || strings.Contains(e.logs.String(), "dXNlcjpwYXNz") {
				t.Errorf("a credential appears in the logs:\n%s", e.logs.String())
			}
			reqs := e.fake.Requests()
			switch {
			case tt.wantGitHub == "" && len(reqs) != 0:
				t.Errorf("GitHub was called (%d requests)", len(reqs))
			case tt.wantGitHub != "" && (len(reqs) != 1 || reqs[0].Token != tt.wantGitHub):
				t.Errorf("GitHub saw %d requests, want one with the expected token", len(reqs))
			}
		})
	}
}

func TestLooksLikeJWT(t *testing.T) {
	tests := []struct {
		tok  string
		want bool
	}{
		{clientJWT, true},
		{clientJWT + ".a.b", true}, // five parts: JWE
		{"ghp_" + strings.Repeat("a", 36), false},
		{"github_pat_11AAAAAAA0_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", false},
		{"a.b.c", false}, // "a" is not a JSON header
		{base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + ".b.c", false}, // no alg
		{clientJWT[:strings.LastIndex(clientJWT, ".")], false},                          // two parts
	}
	for _, tt := range tests {
		if got := looksLikeJWT(tt.tok); got != tt.want {
			t.Errorf("looksLikeJWT(%.30q) = %v, want %v", tt.tok, got, tt.want)
		}
	}
}
