package mcpstdio

import (
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
		_ = headerMismatch(hdr, m)
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
