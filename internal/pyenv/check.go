package pyenv

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// Check verifies the environment holds what requirements (the file it was built from) pins for
// pkg, and that its installed distributions agree with each other (pip check), so that a test
// run before the suite shows a broken or stale environment as such.
func (v Venv) Check(requirements, pkg string) error {
	want, err := PinnedVersion(requirements, pkg)
	if err != nil {
		return err
	}
	out, err := exec.Command(v.Python, "-c", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))", pkg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s is not installed in %s: %v\n%s", pkg, v.Dir, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		return fmt.Errorf("%s holds %s %s, %s pins %s", v.Dir, pkg, got, requirements, want)
	}
	if out, err := exec.Command(v.Python, "-m", "pip", "check", "--disable-pip-version-check").CombinedOutput(); err != nil {
		return fmt.Errorf("pip check in %s: %v\n%s", v.Dir, err, out)
	}
	return nil
}

// PinnedVersion is the version a requirements file pins for pkg ("pkg==version").
func PinnedVersion(requirements, pkg string) (string, error) {
	b, err := os.ReadFile(requirements)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(pkg) + `==(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s does not pin %s", requirements, pkg)
	}
	return string(m[1]), nil
}
