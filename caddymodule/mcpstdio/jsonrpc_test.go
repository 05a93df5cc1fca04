package mcpstdio

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzMessage feeds untrusted bodies through everything the bridge does to a client message
// before it reaches a process: none of it may panic, and a rewritten message stays JSON.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"t"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}`,
		`{"jsonrpc":"2.0","id":"r","result":{"content":[]}}`,
		`[{"jsonrpc":"2.0"}]`, `{"params":[1,2]}`, `{"params":{"_meta":7}}`, `null`, `{"id":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMessage(body)
		if err != nil {
			return
		}
		_ = m.kind()
		hdr := http.Header{}
		hdr.Set(headerMethod, "tools/call")
		hdr.Set(headerName, "x")
		_ = headerMismatch(hdr, body)
		_ = isStateless(hdr, m)
		if m.kind() == kindRequest {
			tok, _ := json.Marshal("mcpgate-1")
			params, _ := rewriteMeta(m.Params, tok)
			out := *m
			out.ID = procID(1)
			out.Params = params
			if !json.Valid(encode(&out)) {
				t.Fatalf("rewritten message is not JSON: %q", body)
			}
		}
		if len(m.ID) > 0 {
			_ = withResultType(encode(&message{ID: m.ID, Result: m.Result}))
		}
	})
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{`1`: true, `-3`: true, `"a"`: true, `1.5`: true,
		`null`: false, `true`: false, `{}`: false, `[]`: false, `"unterminated`: false} {
		if got := validID(json.RawMessage(id)); got != want {
			t.Errorf("validID(%s) = %v", id, got)
		}
	}
}

// headerMismatch follows toolpolicy's rules: the =?base64?…?= form, params.uri for every
// resources method, Mcp-Name ignored for methods that name nothing.
func TestHeaderMismatchRules(t *testing.T) {
	b64 := "=?base64?" + base64.StdEncoding.EncodeToString([]byte("héllo")) + "?="
	for _, tc := range []struct {
		name, method, mcpName, body string
		mismatch                    bool
	}{
		{"plain tool", "tools/call", "echo", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, false},
		{"base64 tool", "tools/call", b64, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo"}}`, false},
		{"lying name", "tools/call", "echo", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete"}}`, true},
		{"subscribe by uri", "resources/subscribe", "file:///a", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a"}}`, false},
		{"method names nothing", "tasks/get", "task-7", `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"task-7"}}`, false},
		{"lying method", "tools/list", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, true},
		{"no headers", "", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, false},
	} {
		hdr := http.Header{}
		if tc.method != "" {
			hdr.Set(headerMethod, tc.method)
		}
		if tc.mcpName != "" {
			hdr.Set(headerName, tc.mcpName)
		}
		if got := headerMismatch(hdr, []byte(tc.body)) != ""; got != tc.mismatch {
			t.Errorf("%s: mismatch %v, want %v (%q)", tc.name, got, tc.mismatch, headerMismatch(hdr, []byte(tc.body)))
		}
	}
}
