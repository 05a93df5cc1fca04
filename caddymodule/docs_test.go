package caddymodule

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mcpgate/mcpgate/caddymodule/mcpauth"
)

// The tests here keep docs/mcp_auth.md true to the parser: its examples adapt, its Caddyfile and
// JSON examples say the same, and its "full syntax" blocks name every option the parser accepts.

const mcpAuthDoc = "../docs/mcp_auth.md"

// fencedBlocks returns the contents of every ```lang block of the Markdown file, in order.
func fencedBlocks(t *testing.T, file, lang string) []string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?ms)^```" + regexp.QuoteMeta(lang) + "\\n(.*?)^```$")
	var blocks []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no ```%s blocks", file, lang)
	}
	return blocks
}

// isSyntaxSketch reports whether a Caddyfile block is a syntax description (with <argument>
// or … in place of values) rather than a configuration.
func isSyntaxSketch(block string) bool {
	return strings.Contains(block, "<") || strings.Contains(block, "…")
}

// findHandler returns the first object of the adapted config whose "handler" is name.
func findHandler(v any, name string) map[string]any {
	switch x := v.(type) {
	case map[string]any:
		if x["handler"] == name {
			return x
		}
		for _, e := range x {
			if h := findHandler(e, name); h != nil {
				return h
			}
		}
	case []any:
		for _, e := range x {
			if h := findHandler(e, name); h != nil {
				return h
			}
		}
	}
	return nil
}

// TestDocsCaddyfileExamplesAdapt adapts every complete Caddyfile example of docs/mcp_auth.md
// and checks that the first one, the site with mcp_auth, configures the handler exactly as
// the JSON example beside it.
func TestDocsCaddyfileExamplesAdapt(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	var configs [][]byte
	for _, block := range fencedBlocks(t, mcpAuthDoc, "caddyfile") {
		if isSyntaxSketch(block) {
			continue
		}
		out, warnings, err := adapter.Adapt([]byte(block), map[string]any{"filename": mcpAuthDoc})
		if err != nil {
			t.Errorf("a Caddyfile example of %s does not adapt: %v\n%s", mcpAuthDoc, err, block)
			continue
		}
		for _, w := range warnings {
			t.Errorf("adapt warning: line %d: %s\n%s", w.Line, w.Message, block)
		}
		checkHandlers(t, out)
		configs = append(configs, out)
	}
	if len(configs) < 2 {
		t.Fatalf("%d complete Caddyfile examples in %s, want the site example and the log options", len(configs), mcpAuthDoc)
	}

	var adapted any
	if err := json.Unmarshal(configs[0], &adapted); err != nil {
		t.Fatal(err)
	}
	got := findHandler(adapted, "mcp_auth")
	if got == nil {
		t.Fatalf("the first Caddyfile example of %s has no mcp_auth handler", mcpAuthDoc)
	}
	jsonBlocks := fencedBlocks(t, mcpAuthDoc, "json")
	var want map[string]any
	if err := json.Unmarshal([]byte(jsonBlocks[0]), &want); err != nil {
		t.Fatalf("the JSON example of %s is not JSON: %v", mcpAuthDoc, err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "\t")
		t.Errorf("the Caddyfile example of %s adapts to\n%s\nwhich differs from its JSON example", mcpAuthDoc, g)
	}
}

// caddyfileOptions lists the Caddyfile subdirectives of a config struct: its JSON keys, which
// the parsers use as subdirective names, with the renames in rename.
func caddyfileOptions(v any, rename map[string]string) []string {
	var names []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		tag := rt.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		if r, ok := rename[name]; ok {
			name = r
		}
		names = append(names, name)
	}
	return names
}

// syntaxBlock returns the words that start the lines of the block of doc that begins with
// head, with the line of head itself left out.
func syntaxBlock(t *testing.T, head string) map[string]bool {
	t.Helper()
	for _, block := range fencedBlocks(t, mcpAuthDoc, "caddyfile") {
		if !strings.HasPrefix(block, head) {
			continue
		}
		words := make(map[string]bool)
		for _, line := range strings.Split(block, "\n")[1:] {
			if line == "}" { // the end of the block; other examples may follow
				break
			}
			if f := strings.Fields(line); len(f) > 0 {
				words[f[0]] = true
			}
		}
		return words
	}
	t.Fatalf("%s has no Caddyfile block beginning %q", mcpAuthDoc, head)
	return nil
}

// TestDocsFullSyntaxComplete checks that the "full syntax" blocks of docs/mcp_auth.md name every
// option of mcp_auth and of token_exchange, and that the parser accepts each one.
func TestDocsFullSyntaxComplete(t *testing.T) {
	for _, c := range []struct {
		head      string // the block's first line
		options   []string
		unmarshal func(d *caddyfile.Dispenser) error
		wrap      string // how a single option is given to unmarshal
	}{
		{
			head: "mcp_auth [<matcher>] {",
			options: append(caddyfileOptions(mcpauth.Handler{}, map[string]string{"issuers": "issuer"}),
				caddyfileOptions(mcpauth.IssuerConfig{}, map[string]string{"issuer": ""})...),
			unmarshal: func(d *caddyfile.Dispenser) error { return new(mcpauth.Handler).UnmarshalCaddyfile(d) },
			wrap:      "mcp_auth {\n%s\n}",
		},
		{
			head:      "upstream_token token_exchange {",
			options:   caddyfileOptions(mcpauth.TokenExchange{}, nil),
			unmarshal: func(d *caddyfile.Dispenser) error { return new(mcpauth.TokenExchange).UnmarshalCaddyfile(d) },
			wrap:      "token_exchange {\n%s\n}",
		},
	} {
		t.Run(strings.Fields(c.head)[0], func(t *testing.T) {
			documented := syntaxBlock(t, c.head)
			for _, opt := range c.options {
				if opt == "" {
					continue
				}
				if !documented[opt] {
					t.Errorf("the block %q in %s leaves out %s", c.head, mcpAuthDoc, opt)
				}
			}
			for opt := range documented {
				if strings.HasPrefix(opt, "}") || opt == "jwks_uri" || opt == "access_token_types" { // inside issuer's block
					continue
				}
				// With no arguments an option is refused for its arguments, never as unknown.
				d := caddyfile.NewTestDispenser(strings.Replace(c.wrap, "%s", opt, 1))
				if err := c.unmarshal(d); err != nil && strings.Contains(err.Error(), "unrecognized") {
					t.Errorf("%s documents %s, which the parser refuses: %v", mcpAuthDoc, opt, err)
				}
			}
		})
	}
}

// TestDocsCaddyfileSnippetsParse: every Caddyfile example in the other pages parses as Caddy
// would read it. A snippet of directives (no site address) is tried inside a site block, so
// a block written on one line, which the parser refuses, is caught wherever it stands.
func TestDocsCaddyfileSnippetsParse(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, doc := range []string{"../docs/mcpbackend.md", "../docs/mcp_stdio.md", "../docs/configuration.md"} {
		blocks := fencedBlocks(t, doc, "caddyfile")
		if len(blocks) == 0 {
			t.Errorf("%s has no Caddyfile example", doc)
		}
		for _, block := range blocks {
			if isSyntaxSketch(block) {
				continue
			}
			_, _, err := adapter.Adapt([]byte(block), map[string]any{"filename": doc})
			if err != nil {
				wrapped := "localhost {\n" + block + "\n}\n"
				if _, _, err2 := adapter.Adapt([]byte(wrapped), map[string]any{"filename": doc}); err2 == nil {
					continue
				}
				t.Errorf("a Caddyfile example of %s does not parse: %v\n%s", doc, err, block)
			}
		}
	}
}
