package localstack_test

import (
	"path/filepath"
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
	pythonVenv(t)
	if err := venv.Check(filepath.Join("testdata", "python", "requirements.txt"), "fastmcp"); err != nil {
		t.Fatal(err)
	}
}
