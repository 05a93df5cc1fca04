package localstack_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	venvOnce   sync.Once
	venvPython string
	venvErr    string
)

// pythonVenv returns the interpreter of a virtual environment that holds
// testdata/python/requirements.txt. The environment lives in the user cache directory
// ($XDG_CACHE_HOME, else ~/.cache) as mcpgate/fastmcp-venv-<hash>, where the hash covers
// requirements.txt and the python3 found on PATH, so it is built once (python3 -m venv, then
// pip install from PyPI) and reused until either changes. A lock file beside it keeps two test
// processes from building it at once; a marker written last tells a finished environment from
// one whose install was interrupted, which is rebuilt. The test fails, naming what is missing,
// when python3, its venv module or PyPI is not available.
func pythonVenv(t *testing.T) string {
	t.Helper()
	venvOnce.Do(func() { venvPython, venvErr = buildVenv(t) })
	if venvErr != "" {
		t.Fatal(venvErr)
	}
	return venvPython
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

// buildVenv does pythonVenv's work and returns the interpreter, or a message saying what failed.
func buildVenv(t *testing.T) (python, failure string) {
	python3, err := exec.LookPath("python3")
	if err != nil {
		return "", "this test needs python3 (3.10 or later, with its venv module) on PATH to run FastMCP's client"
	}
	reqFile, err := filepath.Abs(filepath.Join("testdata", "python", "requirements.txt"))
	if err != nil {
		return "", err.Error()
	}
	req, err := os.ReadFile(reqFile)
	if err != nil {
		return "", err.Error()
	}
	// The interpreter's version and real location: a venv is bound to the Python that made it.
	id, err := exec.Command(python3, "-c",
		"import os, sys; print(sys.version); print(os.path.realpath(sys.executable))").Output()
	if err != nil {
		return "", "python3 on PATH (" + python3 + ") does not run: " + err.Error()
	}
	sum := sha256.New()
	sum.Write(req)
	sum.Write(id)
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", "no cache directory for the FastMCP virtual environment (set XDG_CACHE_HOME): " + err.Error()
	}
	dir := filepath.Join(cache, "mcpgate", "fastmcp-venv-"+hex.EncodeToString(sum.Sum(nil))[:16])
	python = filepath.Join(dir, "bin", "python")
	marker := filepath.Join(dir, ".mcpgate-installed")

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err.Error()
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err.Error()
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "locking " + lock.Name() + ": " + err.Error()
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	if _, err := os.Stat(marker); err == nil {
		return python, ""
	}
	start := time.Now()
	if err := os.RemoveAll(dir); err != nil {
		return "", err.Error()
	}
	if out, err := exec.Command(python3, "-m", "venv", dir).CombinedOutput(); err != nil {
		return "", "python3 -m venv " + dir + " failed (on Debian or Ubuntu, install python3-venv): " +
			err.Error() + "\n" + string(out)
	}
	pip := exec.Command(python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
		"-r", reqFile)
	if out, err := pip.CombinedOutput(); err != nil {
		return "", "pip install -r testdata/python/requirements.txt (from PyPI) into " + dir + " failed: " +
			err.Error() + "\n" + string(out)
	}
	if err := os.WriteFile(marker, req, 0o644); err != nil {
		return "", err.Error()
	}
	t.Logf("created the FastMCP virtual environment %s in %s", dir, time.Since(start).Round(time.Second))
	return python, ""
}
