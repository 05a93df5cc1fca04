package mcpidp

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The full syntax block of mcp_idp in docs/configuration.md names every option of the parser,
// and the parser knows every option the block names.
func TestDocsNameEveryOption(t *testing.T) {
	const doc = "../../docs/configuration.md"
	src, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```caddyfile\\n(auth\\.example\\.com \\{\\n\\tmcp_idp \\{\\n.*?)```").FindSubmatch(src)
	if block == nil {
		t.Fatalf("%s has no full syntax block of mcp_idp", doc)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(block[1]), "\n") {
		// Options of mcp_idp itself are indented by two tabs; deeper lines belong to a block.
		if strings.HasPrefix(line, "\t\t") && !strings.HasPrefix(line, "\t\t\t") {
			if f := strings.Fields(line); len(f) > 0 && f[0] != "}" {
				documented[f[0]] = true
			}
		}
	}
	// Each documented option is one the parser knows (refused for its arguments at most).
	for opt := range documented {
		var m IDP
		if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser("mcp_idp {\n" + opt + "\n}")); err != nil && strings.Contains(err.Error(), "unrecognized") {
			t.Errorf("the parser refuses the documented %s: %v", opt, err)
		}
	}
	rename := map[string]string{"upstreams": "oidc", "id_jag_trusts": "id_jag_trust", "exchange_clients": "exchange_client"}
	rt := reflect.TypeOf(IDP{})
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name == "" {
			continue
		}
		if r, ok := rename[name]; ok {
			name = r
		}
		if !documented[name] {
			t.Errorf("%s does not document %s", doc, name)
		}
		delete(documented, name)
	}
	for opt := range documented {
		t.Errorf("%s documents %s, which is no field of IDP", doc, opt)
	}
}
