package localstack_test

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// Every Caddyfile in Caddyfile.examples passes `caddy validate` with the built bin/caddy: it
// adapts, and every module provisions (mcp_idp opens its store, secrets resolve, token sources
// load). The environment holds throwaway values for the secrets the examples read.
func TestExamplesValidate(t *testing.T) {
	bin := builtCaddy(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "Caddyfile.examples", "*.Caddyfile"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found (%v)", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	// replicas.Caddyfile's mcp_idp opens its PostgreSQL at load (and migrates it).
	pgDSN := pgtest.NewDatabase(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(bin, "validate", "--config", f)
			cmd.Env = append(os.Environ(),
				"MCPGATE_DATA_DIR="+t.TempDir(),
				"MCPGATE_PG_DSN="+pgDSN,
				"MCPGATE_GATEWAY_SECRET=test-gateway-secret",
				"MCPGATE_IDP_KEY="+base64.StdEncoding.EncodeToString(key),
				"GITHUB_CLIENT_ID=test-client", "GITHUB_CLIENT_SECRET=test-secret",
				"GITHUB_ACCESS_TOKEN=test-token",
				"XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Valid configuration") {
				t.Fatalf("caddy validate %s: %v\n%s", filepath.Base(f), err, out)
			}
		})
	}
}
