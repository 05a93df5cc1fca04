package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsClaudeDesktopCommands keeps the Claude Desktop configurations in docs/mcpbackend.md
// working: Claude Desktop starts the command in a directory of its own, so a "go" command must
// change into the checkout with -C (plain "go run /abs/path/to/package" fails there with "go.mod
// file not found"), and any other command must be an absolute path. The "go run -C" command is
// run, with the checkout's path filled in and -h added, from an empty directory.
func TestDocsClaudeDesktopCommands(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "mcpbackend.md"))
	if err != nil {
		t.Fatal(err)
	}
	if bad := regexp.MustCompile(`go run /|"run", "/`).Find(doc); bad != nil {
		t.Errorf("docs/mcpbackend.md runs a package by absolute path without -C (%q): that fails outside the module", bad)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	var goRuns, binaries int
	for _, b := range blocks {
		var cfg struct {
			MCPServers map[string]struct {
				Command string   `json:"command"`
				Args    []string `json:"args"`
			} `json:"mcpServers"`
		}
		if err := json.Unmarshal(b[1], &cfg); err != nil {
			t.Errorf("a JSON block does not parse: %v\n%s", err, b[1])
			continue
		}
		for name, s := range cfg.MCPServers {
			if s.Command != "go" {
				binaries++
				if !filepath.IsAbs(s.Command) {
					t.Errorf("%s: command %q is not an absolute path", name, s.Command)
				}
				continue
			}
			goRuns++
			if len(s.Args) < 4 || s.Args[0] != "run" || s.Args[1] != "-C" || !filepath.IsAbs(s.Args[2]) || !strings.HasPrefix(s.Args[3], "./") {
				t.Errorf("%s: args %q, want run -C /path/to/checkout ./package ...", name, s.Args)
				continue
			}
			goTool, err := exec.LookPath("go")
			if err != nil {
				t.Fatalf("this test needs the go tool on PATH: %v", err)
			}
			args := append([]string{"run", "-C", root}, s.Args[3:]...)
			cmd := exec.Command(goTool, append(args, "-h")...)
			cmd.Dir = t.TempDir() // not inside the module
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Usage: mcpbackend") {
				t.Errorf("%s: go %q from another directory: %v\n%s", name, args, err, out)
			}
		}
	}
	if goRuns == 0 || binaries == 0 {
		t.Errorf("found %d go-run and %d binary Claude Desktop configurations, want at least one of each", goRuns, binaries)
	}
}
