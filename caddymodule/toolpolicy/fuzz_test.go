package toolpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzInspect feeds arbitrary bodies and header values to Inspect. It must
// never panic; every error is a *RequestError; and whatever it accepts is
// valid JSON that Go's encoding/json (what a Go backend runs) reads with the
// same method and the same name: the gateway decides on exactly what the
// backend will execute.
func FuzzInspect(f *testing.F) {
	for _, s := range []string{
		toolCall("echo"),
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"rm"}}`,
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"NAME":"r\u006d"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"result":{}}]`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"params":{"name":"\ud800"},"method":"prompts/get","id":null}`,
		"{\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}",
		`[]`, ``, `{`, `"x"`,
	} {
		f.Add(s, "tools/call", "echo")
	}
	f.Fuzz(func(t *testing.T, body, method, name string) {
		h := headers("Mcp-Method", method, "Mcp-Name", name)
		if method == "" {
			h = nil
		}
		req, err := Inspect(h, []byte(body))
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || (re.Status != 400 && re.Status != 413) {
				t.Fatalf("error %v is not a *RequestError with 400/413", err)
			}
			if !json.Valid(re.ErrorBody()) {
				t.Fatalf("error body %s is not JSON", re.ErrorBody())
			}
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var msgs []json.RawMessage
		if req.Batch {
			if json.Unmarshal([]byte(body), &msgs) != nil {
				t.Fatalf("accepted a batch encoding/json cannot read: %q", body)
			}
		} else {
			msgs = []json.RawMessage{json.RawMessage(body)}
		}
		var calls []Call
		for _, m := range msgs {
			var std struct {
				Method *string `json:"method"`
				Params struct {
					Name string `json:"name"`
					URI  string `json:"uri"`
				} `json:"params"`
			}
			if err := json.Unmarshal(m, &std); err != nil {
				// encoding/json refuses what we accepted (e.g. params of
				// a type its struct cannot hold): the backend would not
				// run it either. Nothing to compare.
				return
			}
			if std.Method == nil {
				continue
			}
			c := Call{Method: *std.Method}
			switch methodNameKind(c.Method) {
			case nameField:
				c.Name = std.Params.Name
			case uriField:
				c.Name = std.Params.URI
			}
			calls = append(calls, c)
		}
		if len(calls) != len(req.Calls) {
			t.Fatalf("%d calls, encoding/json sees %d in %q", len(req.Calls), len(calls), body)
		}
		for i := range calls {
			if calls[i].Method != req.Calls[i].Method || calls[i].Name != req.Calls[i].Name {
				t.Fatalf("call %d: we read %q %q, encoding/json %q %q in %q", i,
					req.Calls[i].Method, req.Calls[i].Name, calls[i].Method, calls[i].Name, body)
			}
		}
		if h != nil && (req.Batch || len(req.Calls) != 1 || req.Calls[0].Method != strings.TrimSpace(method)) {
			t.Fatalf("headers %q %q accepted for %q", method, name, body)
		}
	})
}

// FuzzRewrite feeds arbitrary tools/list responses to the filter: no panic,
// and whatever it returns is valid JSON in which no refused tool is listed.
func FuzzRewrite(f *testing.F) {
	f.Add(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"rm_rf"},{"name":"echo"}],"nextCursor":"x"}}`)
	f.Add(`[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"r\u006d_x"}]}},{"id":2,"result":{}}]`)
	f.Add(`{"result":{"Tools":[{"NAME":"rm_1"}]}}`)
	f.Add(`{"result":{"tools":[1,"rm_x",{"name":5}]}}`)
	p := listPolicy(f)
	id := mustIdentity(f, p, `{}`)
	req := mustInspect(f, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	f.Fuzz(func(t *testing.T, body string) {
		out, err := p.ResponseFilter(id, req).Rewrite([]byte(body))
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrResponseTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output %q is not JSON (input %q)", out, body)
		}
		var msgs []json.RawMessage
		if json.Unmarshal(out, &msgs) != nil {
			msgs = []json.RawMessage{out}
		}
		for _, m := range msgs {
			var std struct {
				Method *string `json:"method"`
				Result struct {
					Tools []struct {
						Name string `json:"name"`
					} `json:"tools"`
				} `json:"result"`
			}
			if json.Unmarshal(m, &std) != nil || std.Method != nil {
				continue
			}
			for _, tool := range std.Result.Tools {
				if !p.Allows(id, "tools/call", tool.Name) {
					t.Fatalf("refused tool %q listed in %q (input %q)", tool.Name, out, body)
				}
			}
		}
	})
}

// FuzzSSE feeds an arbitrary stream, split at an arbitrary point, to the
// SSE filter: no panic, the output does not depend on how the stream was
// split, and it stays within a small multiple of the input.
func FuzzSSE(f *testing.F) {
	f.Add(ssePriming+sseKeepAlive+sseListChanged+sseProgress+sseList+sseAfter, 17)
	f.Add("data: {\"result\":{\"tools\":[{\"name\":\"rm_x\"}]}}\r", 3)
	f.Add("data\ndata:\n\n:x\r\r\n", 1)
	f.Fuzz(func(t *testing.T, in string, split int) {
		run := func(chunks ...string) (string, error) {
			var out bytes.Buffer
			w := sseFilter(t, 1<<16).SSE(&out, nil)
			for _, c := range chunks {
				if _, err := w.Write([]byte(c)); err != nil {
					return out.String(), err
				}
			}
			return out.String(), w.Close()
		}
		whole, errWhole := run(in)
		if split < 0 {
			split = -split
		}
		if len(in) > 0 {
			split %= len(in) + 1
		} else {
			split = 0
		}
		parts, errParts := run(in[:split], in[split:])
		if whole != parts || (errWhole == nil) != (errParts == nil) {
			t.Fatalf("split at %d changes the output:\n%q (%v)\n%q (%v)", split, whole, errWhole, parts, errParts)
		}
		if len(whole) > 2*len(in)+16 {
			t.Fatalf("%d bytes out for %d in", len(whole), len(in))
		}
	})
}

// FuzzIdentity feeds arbitrary payloads to Identity: no panic, only valid
// JSON objects accepted, and the scopes are those encoding/json reads.
func FuzzIdentity(f *testing.F) {
	f.Add(benchPayload)
	f.Add(`{"scope":null,"scp":["a b","c"],"groups":"admins","realm_access":{"roles":["x"]}}`)
	f.Add(`{"sc\u006fpe":"a","scope":"b"}`)
	p := policy20(f)
	f.Fuzz(func(t *testing.T, payload string) {
		id, err := p.Identity([]byte(payload))
		if err != nil {
			if !errors.Is(err, ErrBadClaims) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		if !json.Valid([]byte(payload)) {
			t.Fatalf("accepted invalid JSON %q", payload)
		}
		var std map[string]json.RawMessage
		if json.Unmarshal([]byte(payload), &std) != nil {
			t.Fatalf("encoding/json cannot read %q as an object", payload)
		}
		raw := std["scope"]
		if len(raw) == 0 || string(raw) == "null" {
			raw = std["scp"]
		}
		var want []string
		var str string
		var list []string
		switch {
		case len(raw) == 0 || string(raw) == "null":
		case json.Unmarshal(raw, &str) == nil:
			want = strings.Fields(str)
		case json.Unmarshal(raw, &list) == nil:
			for _, s := range list {
				want = append(want, strings.Fields(s)...)
			}
		default:
			t.Fatalf("accepted scopes %s", raw)
		}
		if strings.Join(id.Scopes(), " ") != strings.Join(want, " ") {
			t.Fatalf("scopes %q, encoding/json gives %q for %q", id.Scopes(), want, payload)
		}
	})
}
