// Package pyenv builds the Python virtual environments that tests use to run programs from
// PyPI (FastMCP's client, the reference MCP servers), and caches them between runs.
//
// An environment is built once from a pinned requirements file (python3 -m venv, then pip
// install -r from PyPI) and reused until the file or the python3 on PATH changes. It lives in
// the user cache directory ($XDG_CACHE_HOME, else ~/.cache) as
// mcpgate/<name>-venv-<hash>. Nothing here skips: a missing python3, venv module or PyPI is an
// error that names it, so the test that asked fails and says why.
package pyenv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ErrNoPython3 is returned (wrapped) when no python3 runs on PATH.
var ErrNoPython3 = errors.New("python3 (3.10 or later, with its venv module) is not on PATH")

// Venv is a ready virtual environment.
type Venv struct {
	// Python is the environment's interpreter (Dir/bin/python).
	Python string
	// Dir is the environment's directory.
	Dir string
	// BuildTime is how long creating the environment and installing into it took; 0 when a
	// cached environment was reused.
	BuildTime time.Duration
}

// Builder builds and caches virtual environments. The zero value is ready to use.
type Builder struct {
	// CacheDir is the directory that holds the environments. Default: mcpgate in
	// os.UserCacheDir().
	CacheDir string
}

// Ensure is Builder{}.Ensure.
func Ensure(name, requirements string) (Venv, error) { return Builder{}.Ensure(name, requirements) }

// Ensure returns the environment name-venv-<hash> that holds the pinned requirements file,
// building it first if it is not in the cache. The hash covers the file's content and the
// python3 on PATH (its version and real location: a venv is bound to the Python that made
// it). A lock file beside the environment keeps two processes from building it at once; a
// marker written last tells a finished environment from one whose install was interrupted,
// which is rebuilt. Safe for concurrent use by several processes; within one process, callers
// for the same environment wait for each other on the lock.
func (b Builder) Ensure(name, requirements string) (Venv, error) {
	python3, err := exec.LookPath("python3")
	if err != nil {
		return Venv{}, ErrNoPython3
	}
	reqFile, err := filepath.Abs(requirements)
	if err != nil {
		return Venv{}, err
	}
	req, err := os.ReadFile(reqFile)
	if err != nil {
		return Venv{}, fmt.Errorf("pyenv: the requirements file: %w", err)
	}
	id, err := exec.Command(python3, "-c",
		"import os, sys; print(sys.version); print(os.path.realpath(sys.executable))").Output()
	if err != nil {
		return Venv{}, fmt.Errorf("%w: %s does not run: %v", ErrNoPython3, python3, err)
	}
	dir, err := b.dir(name, req, id)
	if err != nil {
		return Venv{}, err
	}
	v := Venv{Python: filepath.Join(dir, "bin", "python"), Dir: dir}
	marker := filepath.Join(dir, ".mcpgate-installed")

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Venv{}, err
	}
	unlock, err := lock(dir + ".lock")
	if err != nil {
		return Venv{}, fmt.Errorf("pyenv: locking %s.lock: %w", dir, err)
	}
	defer unlock()

	if _, err := os.Stat(marker); err == nil {
		return v, nil
	}
	start := time.Now()
	if err := os.RemoveAll(dir); err != nil {
		return Venv{}, err
	}
	if out, err := exec.Command(python3, "-m", "venv", dir).CombinedOutput(); err != nil {
		return Venv{}, fmt.Errorf("pyenv: python3 -m venv %s failed (on Debian or Ubuntu, install python3-venv): %v\n%s",
			dir, err, out)
	}
	pip := exec.Command(v.Python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-r", reqFile)
	if out, err := pip.CombinedOutput(); err != nil {
		return Venv{}, fmt.Errorf("pyenv: pip install -r %s (from PyPI) into %s failed: %v\n%s",
			requirements, dir, err, out)
	}
	if err := os.WriteFile(marker, req, 0o644); err != nil {
		return Venv{}, err
	}
	v.BuildTime = time.Since(start)
	return v, nil
}

// dir is the environment's directory for the requirements req and the interpreter identity id.
func (b Builder) dir(name string, req, id []byte) (string, error) {
	cache := b.CacheDir
	if cache == "" {
		user, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("pyenv: no cache directory for the virtual environment (set XDG_CACHE_HOME): %w", err)
		}
		cache = filepath.Join(user, "mcpgate")
	}
	sum := sha256.New()
	sum.Write(req)
	sum.Write(id)
	return filepath.Join(cache, name+"-venv-"+hex.EncodeToString(sum.Sum(nil))[:16]), nil
}
