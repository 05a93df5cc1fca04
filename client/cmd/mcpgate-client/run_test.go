package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client"
	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

func TestParseCall(t *testing.T) {
	tests := []struct {
		args    []string
		name    string
		want    map[string]any
		wantErr string
	}{
		{[]string{"echo"}, "echo", map[string]any{}, ""},
		{[]string{"echo", "-arg", "text=a=b", "-arg", "n:=3", "-arg", "o:={\"x\":true}"}, "echo", map[string]any{"text": "a=b", "n": float64(3), "o": map[string]any{"x": true}}, ""},
		{[]string{"echo", "-json", `{"a":"1"}`, "-arg", "b=2"}, "echo", map[string]any{"a": "1", "b": "2"}, ""},
		{[]string{}, "", nil, "call needs a tool name"},
		{[]string{"-arg", "x=1"}, "", nil, "call needs a tool name"},
		{[]string{"echo", "-arg", "novalue"}, "", nil, `is not k=v`},
		{[]string{"echo", "-arg", "n:=nope"}, "", nil, "the value is not JSON"},
		{[]string{"echo", "-json", `[1]`}, "", nil, "-json must be a JSON object"},
		{[]string{"echo", "extra"}, "", nil, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		name, got, err := parseCall(tt.args, &bytes.Buffer{})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || name != tt.name || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v: got %s %v %v", tt.args, name, got, err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "no MCP server URL given"},
		{[]string{"https://h.example/mcp", "frobnicate"}, "", `unknown command "frobnicate"`},
		{[]string{"https://h.example/mcp", "tools", "extra"}, "", `unexpected argument "extra"`},
		{[]string{"-bogus"}, "", "flag provided but not defined"},
		{[]string{"proxy"}, "", "no MCP server URL given"},
		{[]string{"proxy", "https://h.example/mcp", "extra"}, "", `unexpected argument "extra"`},
		{[]string{"proxy", "-bogus", "https://h.example/mcp"}, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errOut, func(string) string { return tt.env })
		if code != 2 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: code %d, stderr %q", tt.args, code, errOut.String())
		}
	}
}

// buildTools builds the client and the test browser into a temporary directory.
func buildTools(t *testing.T) (clientBin, browserBin string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("this test needs the go tool to build the binaries: %v", err)
	}
	dir := t.TempDir()
	clientBin, browserBin = filepath.Join(dir, "mcpgate-client"), filepath.Join(dir, "testbrowser")
	for bin, pkg := range map[string]string{
		clientBin:  "github.com/mcpgate/mcpgate/client/cmd/mcpgate-client",
		browserBin: "github.com/mcpgate/mcpgate/client/internal/testbrowser",
	} {
		cmd := exec.Command(goBin, "build", "-o", bin, pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return clientBin, browserBin
}

// runBinary runs bin with args (and env added to the test's environment),
// for at most a minute, and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// TestBinaryEndToEnd runs the built mcpgate-client against the fakes, with -open-with pointing
// at the test browser: the whole login happens without a person.
func TestBinaryEndToEnd(t *testing.T) {
	clientBin, browserBin := buildTools(t)
	as := oauthtest.NewAS(t, oauthtest.ASOptions{IssuerPath: "/realms/demo"})
	res := oauthtest.NewResource(t, as, oauthtest.ResourceOptions{})
	cacheDir := t.TempDir()
	browserLog := filepath.Join(t.TempDir(), "browser.log")

	runBin := func(args ...string) (int, string, string) {
		t.Helper()
		return runBinary(t, clientBin, []string{"TESTBROWSER_LOG=" + browserLog}, append([]string{"-cache-dir", cacheDir}, args...)...)
	}

	// 1. No command: the demo flow, logging in through -open-with.
	code, out, errOut := runBin("-open-with", browserBin, "-login-timeout", "30s", res.URL)
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{"Ping: ok", "Tools (4):", "list_repositories  Lists the user's repositories.", "octo/alpha\nocto/beta"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, as.Issuer+"/authorize?") || !strings.Contains(errOut, "Logged in at "+as.Issuer) {
		t.Errorf("stderr: %s", errOut)
	}
	logged, _ := os.ReadFile(browserLog)
	if strings.TrimSpace(string(logged)) != "200 Login complete - mcpgate" {
		t.Errorf("browser saw %q", logged)
	}

	// 2. Cached token: no browser needed.
	code, out, errOut = runBin("-no-browser", "-login-timeout", "2s", res.URL, "call", "echo", "-arg", "text=hi", "-arg", "n:=3")
	if code != 0 || strings.TrimSpace(out) != `{"n":3,"text":"hi"}` {
		t.Fatalf("call: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, _ = runBin(res.URL, "tools", "-json")
	var tools []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tools) != nil || len(tools) != 4 {
		t.Fatalf("tools -json: exit %d: %s", code, out)
	}

	// 3. A failing tool: its text on stderr, exit 1.
	code, _, errOut = runBin(res.URL, "call", "fail")
	if code != 1 || !strings.Contains(errOut, "it failed") || !strings.Contains(errOut, "mcpgate-client: the tool fail reported an error") {
		t.Errorf("failing tool: exit %d, stderr %s", code, errOut)
	}

	// 4. Status, human and JSON, without the token.
	code, out, _ = runBin(res.URL, "status")
	if code != 0 || !strings.Contains(out, "Logged in to "+res.URL) || !strings.Contains(out, "scopes:        mcp:read") {
		t.Errorf("status: %d %s", code, out)
	}
	code, out, _ = runBin("-json", res.URL, "status")
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["logged_in"] != true || st["issuer"] != as.Issuer {
		t.Errorf("status -json: %d %s", code, out)
	}
	if strings.Contains(out, "at-") || strings.Contains(out, "rt-") {
		t.Errorf("token in status output: %s", out)
	}

	// 5. Logout revokes; afterwards a run without a browser times out with one clear line.
	code, _, errOut = runBin(res.URL, "logout")
	if code != 0 || !strings.Contains(errOut, "Logged out of "+res.URL) {
		t.Fatalf("logout: %d %s", code, errOut)
	}
	if got := strings.Join(as.Revoked(), ","); got != "refresh_token,access_token" {
		t.Errorf("revoked %s", got)
	}
	code, _, errOut = runBin("-no-browser", "-login-timeout", "1s", res.URL, "tools")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || !strings.HasPrefix(lines[len(lines)-1], "mcpgate-client: timed out after 1s waiting for the browser login") {
		t.Errorf("after logout: exit %d, stderr %s", code, errOut)
	}
}

func TestClientMetadataFlagUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-client-id", "cli", "-client-metadata-url", "https://app.example/c.json", "https://h.example/mcp"}, "-client-id and -client-metadata-url exclude each other"},
		{[]string{"-client-metadata-url", "http://app.example/c.json", "https://h.example/mcp"}, "-client-metadata-url: the client metadata URL \"http://app.example/c.json\" must use https"},
		{[]string{"-client-metadata-url", "https://app.example", "https://h.example/mcp"}, "needs a path naming the document"},
		{[]string{"-client-metadata-url", "https://app.example/c.json#x", "https://h.example/mcp", "status"}, "must not carry a fragment"},
		{[]string{"-client-metadata-url", "::nope", "https://h.example/mcp"}, "is not an absolute https URL"},
		{[]string{"-client-metadata-url", "https://app.example/c.json", "-reregister", "https://h.example/mcp"}, "never registers: -reregister and -registration-token do not apply"},
		{[]string{"-client-metadata-url", "https://app.example/c.json", "-registration-token", "iat", "https://h.example/mcp", "status"}, "never registers"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errOut, func(string) string { return "" })
		if code != 2 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: code %d, stderr %q, want 2 and %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}

func TestClientMetadataCommand(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		wantID   string // on success: client_id
		wantName string // on success: client_name
		wantErr  string // on failure, in stderr
	}{
		{[]string{"client-metadata", "-url", "https://app.example/mcpgate-client.json"}, 0, "https://app.example/mcpgate-client.json", "mcpgate-client", ""},
		{[]string{"client-metadata", "-url", "https://app.example/c", "-name", "My CLI"}, 0, "https://app.example/c", "My CLI", ""},
		{[]string{"-v", "client-metadata", "-name", "x", "-url", "https://app.example:8443/c"}, 0, "https://app.example:8443/c", "x", ""},
		{[]string{"client-metadata"}, 2, "", "", "client-metadata needs -url"},
		{[]string{"client-metadata", "-url", "http://app.example/c"}, 2, "", "", "must use https"},
		{[]string{"client-metadata", "-url", "https://app.example"}, 2, "", "", "needs a path"},
		{[]string{"client-metadata", "-url", "https://app.example/c.json?v=2"}, 0, "https://app.example/c.json?v=2", "mcpgate-client", ""},
		{[]string{"client-metadata", "-url", "https://app.example/c", "extra"}, 2, "", "", `unexpected argument "extra"`},
		{[]string{"client-metadata", "-bogus"}, 2, "", "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errOut, func(string) string { return "" })
		if code != tt.code {
			t.Errorf("%v: code %d, want %d; stderr %s", tt.args, code, tt.code, errOut.String())
			continue
		}
		if tt.code != 0 {
			if !strings.Contains(errOut.String(), tt.wantErr) || out.Len() != 0 {
				t.Errorf("%v: stdout %q stderr %q, want %q", tt.args, out.String(), errOut.String(), tt.wantErr)
			}
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", tt.args, err, out.String())
		}
		// The command prints the library's document (whose fields
		// TestNewClientMetadataDocument pins) for -url and -name.
		lib, err := client.NewClientMetadataDocument(tt.wantID, tt.wantName)
		if err != nil {
			t.Fatal(err)
		}
		libJSON, err := json.Marshal(lib)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(libJSON, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(doc, want) || doc["client_id"] != tt.wantID || doc["client_name"] != tt.wantName {
			t.Errorf("%v: document\n got %v\nwant %v", tt.args, doc, want)
		}
	}
}

// TestBinaryClientMetadataURL runs the built binary with -client-metadata-url against a fake
// authorization server that supports metadata documents, serving the document that the
// client-metadata command printed: login and logout use the URL as client_id, never /register.
func TestBinaryClientMetadataURL(t *testing.T) {
	clientBin, browserBin := buildTools(t)
	var doc atomic.Value // []byte: the printed document
	docSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := doc.Load().([]byte)
		if r.URL.Path != "/mcpgate-client.json" || b == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(docSrv.Close)
	docURL := docSrv.URL + "/mcpgate-client.json" // http on loopback: allowed for tests

	as := oauthtest.NewAS(t, oauthtest.ASOptions{ClientIDMetadataDocuments: true})
	res := oauthtest.NewResource(t, as, oauthtest.ResourceOptions{})
	cacheDir := t.TempDir()
	runBin := func(args ...string) (int, string, string) {
		t.Helper()
		return runBinary(t, clientBin, nil, args...)
	}

	code, out, errOut := runBin("client-metadata", "-url", docURL, "-name", "binary test")
	if code != 0 {
		t.Fatalf("client-metadata: exit %d: %s", code, errOut)
	}
	doc.Store([]byte(out))

	code, out, errOut = runBin("-cache-dir", cacheDir, "-client-metadata-url", docURL, "-open-with", browserBin, "-login-timeout", "30s", "-json", res.URL, "login")
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["client_id"] != docURL {
		t.Fatalf("login: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, errOut = runBin("-cache-dir", cacheDir, "-client-metadata-url", docURL, res.URL, "logout"); code != 0 {
		t.Fatalf("logout: exit %d: %s", code, errOut)
	}
	var seen []string
	for _, u := range as.ClientIDUses() {
		seen = append(seen, u.Endpoint)
		if u.ClientID != docURL {
			t.Errorf("%s saw client_id %q", u.Endpoint, u.ClientID)
		}
	}
	if got := strings.Join(seen, ","); got != "authorize,token,revoke,revoke" {
		t.Errorf("client_id uses %s", got)
	}
	if n := as.RegisterHits(); n != 0 {
		t.Errorf("%d registration requests", n)
	}
}
