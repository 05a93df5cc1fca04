package localstack_test

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkMetricsAndFiles checks, on a stack that has served a request, what docs/mcp_auth.md
// and the README promise: mcp_auth's metrics on the stack's loopback metrics site (the admin
// endpoint is off), and no file written outside --data-dir, in particular none in the
// user's own Caddy configuration directory, where Caddy would autosave its config.
func (s *stack) checkMetricsAndFiles(t *testing.T) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(s.MetricsURL)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "caddy_mcp_auth_requests_total") {
		t.Fatalf("GET %s = %d, want mcp_auth's request counter:\n%.800s", s.MetricsURL, resp.StatusCode, body)
	}
	if !strings.Contains(s.stdout.String(), s.MetricsURL) {
		t.Errorf("the start-up summary does not print the metrics URL %s:\n%s", s.MetricsURL, s.stdout.String())
	}
	var stray []string
	_ = filepath.WalkDir(s.ConfigHome, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			stray = append(stray, p)
		}
		return nil
	})
	if len(stray) > 0 {
		t.Errorf("mcpgate-local wrote into the user's config directory: %v", stray)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "caddy", "autosave.json")); err != nil {
		t.Errorf("Caddy's autosave is not under --data-dir: %v", err)
	}
}

// A --config that does not load stops the command before it writes anything: no data
// directory, no gateway secret, in the directory it was started from or anywhere else.
func TestLocalStackBadConfigWritesNothing(t *testing.T) {
	bin := builtCaddy(t)
	for name, content := range map[string]string{
		"missing": "",
		"invalid": "localhost {\n\tmcp_auth {\n\t\tno_such_option\n\t}\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			cwd := t.TempDir()
			cfg := filepath.Join(t.TempDir(), "bad.Caddyfile")
			if content != "" {
				if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bin, "mcpgate-local", "--config", cfg, "--backend", "127.0.0.1:"+freePort(t))
			cmd.Dir = cwd
			cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("mcpgate-local with a bad config exited 0:\n%s", out)
			}
			if !strings.Contains(string(out), "bad.Caddyfile") {
				t.Errorf("the error does not name the config file:\n%s", out)
			}
			entries, _ := os.ReadDir(cwd)
			if len(entries) > 0 {
				t.Errorf("mcpgate-local wrote %v into its working directory before failing", entries)
			}
		})
	}
}
