package pyenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeReq writes a requirements file into a temporary directory. Comment-only files keep
// these tests off PyPI.
func writeReq(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "requirements.txt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// prefix is sys.prefix of the interpreter python.
func prefix(t *testing.T, python string) string {
	t.Helper()
	out, err := exec.Command(python, "-c", "import sys; print(sys.prefix)").Output()
	if err != nil {
		t.Fatalf("%s does not run: %v", python, err)
	}
	return strings.TrimSpace(string(out))
}

// An environment is built once, reused while the requirements are the same, rebuilt when its
// install was interrupted, and a different one when the requirements change.
func TestEnsureBuildsCachesAndRebuilds(t *testing.T) {
	b := Builder{CacheDir: t.TempDir()}
	req := writeReq(t, "# nothing to install\n")
	first, err := b.Ensure("probe", req)
	if err != nil {
		t.Fatal(err)
	}
	if first.BuildTime == 0 {
		t.Error("the first Ensure says it reused an environment")
	}
	if !strings.HasPrefix(filepath.Base(first.Dir), "probe-venv-") || filepath.Dir(first.Dir) != b.CacheDir {
		t.Errorf("environment directory %s", first.Dir)
	}
	if got := prefix(t, first.Python); got != first.Dir {
		t.Errorf("the interpreter's sys.prefix is %s, want %s", got, first.Dir)
	}

	again, err := b.Ensure("probe", req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Dir != first.Dir || again.BuildTime != 0 {
		t.Errorf("second Ensure: %+v, want the cached %s", again, first.Dir)
	}

	// An install that never wrote its marker is redone from scratch.
	stray := filepath.Join(first.Dir, "stray")
	if err := os.WriteFile(stray, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(first.Dir, ".mcpgate-installed")); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := b.Ensure("probe", req)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt.BuildTime == 0 || rebuilt.Dir != first.Dir {
		t.Errorf("after an interrupted install: %+v", rebuilt)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Error("the interrupted environment's files survived the rebuild")
	}

	// Changed requirements get an environment of their own. (Only its name is compared: a
	// build costs seconds.)
	other, err := b.dir("probe", []byte("# another pin set\n"), []byte("same python"))
	if err != nil {
		t.Fatal(err)
	}
	same, err := b.dir("probe", []byte("# nothing to install\n"), []byte("same python"))
	if err != nil {
		t.Fatal(err)
	}
	if other == same {
		t.Error("changed requirements share the old environment")
	}
	if py, _ := b.dir("probe", []byte("# nothing to install\n"), []byte("another python")); py == same {
		t.Error("another python3 shares the old environment")
	}
}

// Failures name what is missing, and a failed install is not taken for a finished one.
func TestEnsureFailures(t *testing.T) {
	b := Builder{CacheDir: t.TempDir()}

	if _, err := b.Ensure("probe", filepath.Join(t.TempDir(), "missing.txt")); err == nil ||
		!strings.Contains(err.Error(), "requirements file") {
		t.Errorf("missing requirements file: %v", err)
	}

	bad := writeReq(t, "this is === not a requirement\n")
	v, err := b.Ensure("probe", bad)
	if err == nil || !strings.Contains(err.Error(), "pip install -r") {
		t.Fatalf("a bad requirements file: %+v, %v", v, err)
	}
	// Without its marker the half-built environment is rebuilt next time, not trusted.
	matches, _ := filepath.Glob(filepath.Join(b.CacheDir, "probe-venv-*", ".mcpgate-installed"))
	if len(matches) != 0 {
		t.Errorf("a failed install left a marker: %v", matches)
	}

	t.Setenv("PATH", t.TempDir())
	if _, err := b.Ensure("probe", writeReq(t, "# fine\n")); !errors.Is(err, ErrNoPython3) {
		t.Errorf("no python3 on PATH: %v", err)
	}
}
