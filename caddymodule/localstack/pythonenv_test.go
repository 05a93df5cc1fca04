package localstack_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pyenv"
)

var (
	venvOnce sync.Once
	venv     pyenv.Venv
	venvErr  error
)

// pythonVenv returns the interpreter of a virtual environment that holds
// testdata/python/requirements.txt, built from PyPI on first use and cached (as
// mcpgate/fastmcp-venv-<hash> in the user cache directory) until the file or python3 changes;
// see internal/pyenv. The test fails, naming what is missing, when python3, its venv module or
// PyPI is not available.
func pythonVenv(t *testing.T) string {
	t.Helper()
	venvOnce.Do(func() {
		venv, venvErr = pyenv.Ensure("fastmcp", filepath.Join("testdata", "python", "requirements.txt"))
		if venvErr == nil && venv.BuildTime != 0 {
			t.Logf("created the FastMCP virtual environment %s in %s", venv.Dir, venv.BuildTime.Round(time.Second))
		}
	})
	if venvErr != nil {
		t.Fatalf("FastMCP's client needs its virtual environment: %v", venvErr)
	}
	return venv.Python
}

// TestFastMCPVirtualEnv checks the environment pythonVenv gives: the fastmcp that
// requirements.txt pins, and dependencies that agree with each other (pip check). CI runs it
// before the suite, so that a PyPI failure shows as such.
func TestFastMCPVirtualEnv(t *testing.T) {
	python := pythonVenv(t)
	out, err := exec.Command(python, "-c", "import importlib.metadata as m; print(m.version('fastmcp'))").CombinedOutput()
	if err != nil {
		t.Fatalf("fastmcp is not installed in %s: %v\n%s", python, err, out)
	}
	if got, want := strings.TrimSpace(string(out)), pinnedVersion(t, "fastmcp"); got != want {
		t.Fatalf("the virtual environment holds fastmcp %s, requirements.txt pins %s", got, want)
	}
	if out, err := exec.Command(python, "-m", "pip", "check", "--disable-pip-version-check").CombinedOutput(); err != nil {
		t.Fatalf("pip check in the FastMCP virtual environment: %v\n%s", err, out)
	}
}

// pinnedVersion is the version requirements.txt pins for pkg.
func pinnedVersion(t *testing.T, pkg string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "python", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(pkg) + `==(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("requirements.txt does not pin %s", pkg)
	}
	return string(m[1])
}
