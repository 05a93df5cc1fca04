package mcpbackend

import (
	"context"
	"fmt"
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
		{name: "client's Authorization is never used", header: map[string]string{"Authorization": "Bearer " + githubfake.AliceToken},
			wantErr: []string{"no GitHub account is linked"}},
		{name: "Authorization beside the token header is not forwarded",
			header:     map[string]string{"Authorization": "Bearer client-jwt-for-the-gateway", "X-GitHub-Token": githubfake.BobToken},
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
				if strings.Contains(strings.Join(r.Header.Values("Authorization"), " "), "client-jwt") || r.Header.Get("X-GitHub-Token") != "" {
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
