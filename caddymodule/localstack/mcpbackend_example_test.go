package localstack_test

// Caddyfile.examples/mcpbackend.Caddyfile describes a setup of three processes: mcpbackend,
// mcpgate-idp with development login, and bin/caddy running the example. This test runs
// exactly that, with the commands the example's comment gives, on free loopback ports chosen
// through the environment placeholders the example reads, and logs in with the project's
// client through to a tools/call against a fake GitHub API.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client"
	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// goBuild builds the command in pkg (relative to the repository root) into dir.
func goBuild(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, "./"+pkg)
	cmd.Dir = repoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", pkg, err, b)
	}
	return out
}

// process is a program the test started; its output is kept for failure messages.
type process struct {
	name   string
	cmd    *exec.Cmd
	output *testutil.SyncBuffer
	exited chan error
}

// startProcess starts bin with args and env, and stops it with SIGINT at cleanup.
func startProcess(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, output: new(testutil.SyncBuffer), exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s still running 20s after SIGINT", name)
		}
	})
	return p
}

// waitReady polls url until it answers want, failing the test if the process exits first or
// it never does.
func (p *process) waitReady(t *testing.T, ctx context.Context, u string, want int) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	var last string
	for {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited before %s answered: %v\n%s", p.name, u, err, p.output.String())
		case <-ctx.Done():
			t.Fatalf("%s: %s did not answer %d (last: %s)\n%s", p.name, u, want, last, p.output.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestMCPBackendExample(t *testing.T) {
	caddy := builtCaddy(t)
	bins := t.TempDir()
	idpBin := goBuild(t, bins, "idp/cmd/mcpgate-idp")
	backendBin := goBuild(t, bins, "mcpbackend/cmd/mcpbackend")

	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()

	mcpPort, idpPort, backendPort, adminPort := freePort(t), freePort(t), freePort(t), freePort(t)
	mcpURL := "http://localhost:" + mcpPort + "/mcp"
	idpHost := "127.0.0.1:" + idpPort
	backend := "127.0.0.1:" + backendPort
	const secret = "example-test-gateway-secret"
	ctx := withTimeout(t, 3*time.Minute)

	// go run ./mcpbackend/cmd/mcpbackend
	be := startProcess(t, "mcpbackend", backendBin, nil,
		"-listen", backend, "-github-api-url", ghSrv.URL)
	// MCPGATE_GATEWAY_SECRET=... go run ./idp/cmd/mcpgate-idp -dev -default-resource <MCP URL> -scopes "mcp mcp:tools"
	idp := startProcess(t, "mcpgate-idp", idpBin, []string{"MCPGATE_GATEWAY_SECRET=" + secret},
		"-dev", "-default-resource", mcpURL, "-scopes", "mcp mcp:tools",
		"-listen", idpHost, "-issuer", "http://"+idpHost,
		"-github-api-url", ghSrv.URL, "-data-dir", t.TempDir())
	// MCPGATE_GATEWAY_SECRET=... bin/caddy run --config Caddyfile.examples/mcpbackend.Caddyfile
	example := filepath.Join(repoRoot(t), "Caddyfile.examples", "mcpbackend.Caddyfile")
	cd := startProcess(t, "caddy", caddy, []string{
		"MCPGATE_GATEWAY_SECRET=" + secret,
		"MCPGATE_MCP_PORT=" + mcpPort, "MCPGATE_IDP_PORT=" + idpPort, "MCPGATE_BACKEND=" + backend,
		"MCPGATE_GITHUB_API_URL=" + ghSrv.URL,
		"CADDY_ADMIN=127.0.0.1:" + adminPort,
		"XDG_CONFIG_HOME=" + t.TempDir(), "XDG_DATA_HOME=" + t.TempDir(),
	}, "run", "--config", example)

	be.waitReady(t, ctx, "http://"+backend+"/healthz", http.StatusOK)
	idp.waitReady(t, ctx, "http://"+idpHost+"/.well-known/oauth-authorization-server", http.StatusOK)
	cd.waitReady(t, ctx, "http://localhost:"+mcpPort+"/.well-known/oauth-protected-resource/mcp", http.StatusOK)

	c, err := client.New(client.Config{
		MCPURL:       mcpURL,
		CacheDir:     t.TempDir(),
		OpenURL:      devLogin(&http.Client{Timeout: 30 * time.Second}, idpHost, "alice", githubfake.AliceToken),
		LoginTimeout: 2 * time.Minute,
		Stdout:       io.Discard,
		Stderr:       io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	logs := func() string {
		return fmt.Sprintf("mcpgate-idp:\n%s\ncaddy:\n%s\nmcpbackend:\n%s", idp.output, cd.output, be.output)
	}
	if err := c.Login(ctx); err != nil {
		t.Fatalf("login: %v\n%s", err, logs())
	}
	res, err := c.Call(ctx, "list_repositories", map[string]any{"per_page": 100})
	if err != nil {
		t.Fatalf("tools/call list_repositories: %v\n%s", err, logs())
	}
	if res.IsError {
		t.Fatalf("list_repositories failed: %s\n%s", client.ResultText(res), logs())
	}
	// Every GitHub call carried alice's token, which only the token exchange can have put
	// there: the client holds an IdP access token, never the GitHub token.
	checkAliceRepos(t, resultJSON(t, res.StructuredContent), gh)
	for name, out := range map[string]string{"caddy": cd.output.String(), "mcpbackend": be.output.String(), "mcpgate-idp": idp.output.String()} {
		if strings.Contains(out, githubfake.AliceToken) || strings.Contains(out, secret) {
			t.Errorf("%s's output contains alice's GitHub token or the gateway secret", name)
		}
	}
}
