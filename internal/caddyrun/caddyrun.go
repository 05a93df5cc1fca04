// Package caddyrun runs Caddy in the test process from a Caddyfile, for end-to-end tests that
// need no admin endpoint (caddytest's fixed admin port would collide between test packages
// running at once): the Caddyfile sets `admin off` and free ports itself.
package caddyrun

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile" // the caddyfile adapter
)

// Load adapts caddyfile and loads it into this process's Caddy, logging adapter warnings, and
// stops Caddy when the test ends. Adapting or loading failures fail the test.
func Load(t testing.TB, caddyfile string) {
	t.Helper()
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		t.Logf("Caddyfile warning: %s", w.String())
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("loading Caddy: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}
