package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
	"github.com/mcpgate/mcpgate/internal/testutil"
)

// docErrorLines returns the lines of docs/client.md's code blocks that are error messages
// ("mcpgate-client: ...").
func docErrorLines(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../../docs/client.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock && strings.HasPrefix(l, "mcpgate-client: ") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestDocumentedErrors runs the command into each failure docs/client.md shows and checks
// that the documentation quotes the real line, with the fakes' loopback URLs written as the
// documentation's placeholders (the MCP URL https://localhost/mcp, the issuer
// https://idp.example) and the login timeout at its default. Every error line of the document
// must come from one of these runs, so an example cannot drift from the code again.
func TestDocumentedErrors(t *testing.T) {
	_, browserBin := buildTools(t)
	const foreignAudience = "https://api.idp.example"
	tests := []struct {
		name    string
		ao      oauthtest.ASOptions
		ro      oauthtest.ResourceOptions
		args    []string // before the MCP URL; the command "tools" follows it
		browser bool     // log in through the test browser
	}{
		{name: "no registration endpoint", ao: oauthtest.ASOptions{NoRegistration: true}},
		{name: "login timeout", args: []string{"-no-browser", "-login-timeout", "1s"}},
		{name: "metadata issuer", ao: oauthtest.ASOptions{MetadataIssuerSlash: true}},
		{name: "authorization response issuer", ao: oauthtest.ASOptions{WrongIss: true}, browser: true},
		{name: "upstream account not linked", browser: true, ro: oauthtest.ResourceOptions{Refuse: &oauthtest.Refusal{
			Status: http.StatusForbidden, Error: "upstream_account_not_linked",
			Description: "link your GitHub account at https://idp.example/account, then retry"}}},
		{name: "token source down", browser: true, ro: oauthtest.ResourceOptions{Refuse: &oauthtest.Refusal{
			Status: http.StatusServiceUnavailable, Error: "temporarily_unavailable",
			Description: "the upstream token source is unavailable", RetryAfter: "5"}}},
		{name: "audience", ao: oauthtest.ASOptions{JWTAccessTokens: true, IgnoreResource: foreignAudience}, browser: true},
		{name: "no client metadata documents", args: []string{"-client-metadata-url", "https://app.example/mcpgate-client.json"}},
	}
	var produced []string
	for _, tc := range tests {
		as := oauthtest.NewAS(t, tc.ao)
		res := oauthtest.NewResource(t, as, tc.ro)
		args := append([]string{"-cache-dir", t.TempDir()}, tc.args...)
		if tc.browser {
			args = append(args, "-open-with", browserBin, "-login-timeout", "30s")
		} else if !slices.Contains(args, "-no-browser") {
			args = append(args, "-no-browser", "-login-timeout", "30s")
		}
		args = append(args, res.URL, "tools")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var out, errOut testutil.SyncBuffer
		code := run(ctx, args, strings.NewReader(""), &out, &errOut, func(string) string { return "" })
		cancel()
		lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
		last := lines[len(lines)-1]
		if code != 1 || !strings.HasPrefix(last, "mcpgate-client: ") {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, errOut.String())
			continue
		}
		last = strings.NewReplacer(res.URL, "https://localhost/mcp", as.Issuer, "https://idp.example",
			"after 1s", "after 5m").Replace(last)
		produced = append(produced, last)
	}
	documented := docErrorLines(t)
	for _, p := range produced {
		if !slices.Contains(documented, p) {
			t.Errorf("docs/client.md does not show the real error line\n%s", p)
		}
	}
	for _, d := range documented {
		if !slices.Contains(produced, d) {
			t.Errorf("docs/client.md shows an error line no run produced:\n%s", d)
		}
	}
}
