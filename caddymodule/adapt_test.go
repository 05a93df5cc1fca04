package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/mcpgate/mcpgate/caddymodule/mcpauth"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.json golden files from the current adapter output")

// TestAdaptGolden adapts every Caddyfile in ../Caddyfile.examples and
// testdata (in process, like `caddy adapt`) and compares the JSON with
// testdata/<name>.json. Run `go test ./caddymodule -run TestAdaptGolden
// -update` to accept a change.
func TestAdaptGolden(t *testing.T) {
	// Environment placeholders ({$VAR}) are substituted at adapt time; make
	// the output independent of the caller's environment.
	for _, v := range []string{"MCPGATE_DATA_DIR", "MCPGATE_IDP_PORT", "MCPGATE_MCP_PORT", "MCPGATE_BACKEND", "MCPGATE_GITHUB_API_URL", "MCPGATE_METRICS_PORT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	examples, _ := filepath.Glob("../Caddyfile.examples/*.Caddyfile")
	local, _ := filepath.Glob("testdata/*.Caddyfile")
	files := append(examples, local...)
	if len(examples) == 0 || len(local) == 0 {
		t.Fatalf("no Caddyfiles found (examples %d, testdata %d)", len(examples), len(local))
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".Caddyfile")
		prefix := "testdata_"
		if strings.HasPrefix(file, "..") {
			prefix = "example_"
		}
		golden := filepath.Join("testdata", prefix+name+".json")
		t.Run(prefix+name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := adapter.Adapt(src, map[string]any{"filename": file})
			if err != nil {
				t.Fatalf("adapt %s: %v", file, err)
			}
			for _, w := range warnings {
				t.Errorf("adapt warning: %s:%d: %s", w.File, w.Line, w.Message)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatalf("adapter output is not JSON: %v", err)
			}
			pretty.WriteByte('\n')
			if *updateGolden {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("missing golden file (run with -update): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s adapts differently from %s (run with -update if intended):\n%s", file, golden, pretty.String())
			}
			// Every mcp_auth handler in the output decodes into mcpauth.Handler.
			checkHandlers(t, out)
		})
	}
}

// checkHandlers finds every "handler":"mcp_auth" object and decodes it
// strictly into mcpauth.Handler, so golden files cannot hide unknown fields.
func checkHandlers(t *testing.T, cfg []byte) {
	t.Helper()
	var root any
	if err := json.Unmarshal(cfg, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "mcp_auth" {
				delete(x, "handler")
				b, _ := json.Marshal(x)
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				var h mcpauth.Handler
				if err := dec.Decode(&h); err != nil {
					t.Errorf("mcp_auth config does not decode into mcpauth.Handler: %v", err)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(root)
}
