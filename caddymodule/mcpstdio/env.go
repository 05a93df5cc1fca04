package mcpstdio

import (
	"crypto/sha256"
	"os"
	"sort"

	"github.com/caddyserver/caddy/v2"
)

// This file builds a request's process environment: the variables passed from Caddy's own
// environment (pass_env), then the configured env entries with their placeholders expanded
// for this request. The expanded values never leave this package except into the process:
// they are hashed (SHA-256, in memory) to notice a changed token, and the values that came
// from placeholders are kept as the redaction list of that process's stderr.

// DefaultPassEnv is what a process inherits from Caddy's environment unless pass_env says
// otherwise: enough for a shell, Node.js or Python to run, and nothing that could be a secret
// of Caddy's.
var DefaultPassEnv = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"}

// baseEnv returns NAME=value for each name in names that is set in Caddy's environment.
func baseEnv(names []string) []string {
	var env []string
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// buildSpec expands env for one request of the user key.
func buildSpec(key string, base []string, env map[string]string, repl *caddy.Replacer) procSpec {
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	spec := procSpec{key: key, env: append([]string(nil), base...)}
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	for _, n := range names {
		raw := env[n]
		v := repl.ReplaceAll(raw, "")
		spec.env = append(spec.env, n+"="+v)
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(v))
		h.Write([]byte{0})
		// Every configured value is redacted from the process's stderr, not only those that came
		// from a placeholder: a Caddyfile's {$VAR} is expanded when it is adapted, so a shared
		// secret put there carries no "{" by the time it reaches here. (Short values are left
		// alone by the redactor.)
		spec.secrets = append(spec.secrets, v)
	}
	copy(spec.hash[:], h.Sum(nil))
	return spec
}
