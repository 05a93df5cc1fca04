package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// NodeProject returns the absolute path of the Node.js project in dir (a package.json with a
// package-lock.json), after running npm ci there when node_modules/<marker>/package.json is
// missing. It fails the test, naming the tool, when node or npm is not on PATH. Test packages
// that share a project (the local stack's, with the MCP TypeScript SDK) may call it at once:
// a lock file in dir lets one install while the others wait.
func NodeProject(t testing.TB, dir, marker string) string {
	t.Helper()
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("this test needs Node.js (node) on PATH, version 20 or later")
	}
	installed := func() bool {
		_, err := os.Stat(filepath.Join(dir, "node_modules", marker, "package.json"))
		return err == nil
	}
	if installed() {
		return dir
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("this test needs npm on PATH to install the Node.js packages of %s", dir)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if installed() { // another test package installed it while this one waited
		return dir
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return dir
}
