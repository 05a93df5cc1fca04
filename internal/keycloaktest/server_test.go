package keycloaktest

import (
	"strings"
	"testing"
)

func TestBuiltDirKeyedByBuildOptions(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	base := builtDir("/d/keycloak-1", Options{Features: []string{"a"}})
	for _, tc := range []struct {
		name string
		dist string
		opts Options
		same bool
	}{
		{"same options, runtime ones differ", "/d/keycloak-1", Options{Features: []string{"a"}, JavaOpts: "-Xmx1g", Log: &strings.Builder{}}, true},
		{"other features", "/d/keycloak-1", Options{Features: []string{"b"}}, false},
		{"no features", "/d/keycloak-1", Options{}, false},
		{"feature moved into args", "/d/keycloak-1", Options{Args: []string{"a"}}, false},
		{"other distribution", "/d/keycloak-2", Options{Features: []string{"a"}}, false},
	} {
		if got := builtDir(tc.dist, tc.opts); (got == base) != tc.same {
			t.Errorf("%s: builtDir %s vs %s, same = %v, want %v", tc.name, got, base, got == base, tc.same)
		}
	}
	if !strings.Contains(base, "built-keycloak-1-") {
		t.Errorf("builtDir = %s, want the distribution's name in it", base)
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	tl := &tail{max: 8}
	for _, s := range []string{"abc", "defgh", "ijklmnopq", "r"} {
		if n, err := tl.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := tl.String(); got != "klmnopqr" {
		t.Errorf("tail = %q, want %q", got, "klmnopqr")
	}
}

func TestCleanEnvDropsInheritedKeycloakSettings(t *testing.T) {
	got := cleanEnv([]string{"PATH=/bin", "KC_DB=postgres", "KEYCLOAK_ADMIN=x", "JAVA_HOME=/j", "JAVA_OPTS_APPEND=-x", "HOME=/h"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/h" {
		t.Errorf("cleanEnv = %v", got)
	}
}
