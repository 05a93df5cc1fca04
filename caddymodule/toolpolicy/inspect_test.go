package toolpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestInspectBodies(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		calls  []Call
		batch  bool
		errIs  error
		code   int
		idSeen string // the id carried by the error, if any
	}{
		{"tools/call", toolCall("echo"), []Call{{Method: "tools/call", Name: "echo", ID: []byte("1")}}, false, nil, 0, ""},
		{"prompts/get", `{"jsonrpc":"2.0","id":"p1","method":"prompts/get","params":{"name":"sum","arguments":{}}}`,
			[]Call{{Method: "prompts/get", Name: "sum", ID: []byte(`"p1"`)}}, false, nil, 0, ""},
		{"resources/read uses the uri", `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a","name":"ignored"}}`,
			[]Call{{Method: "resources/read", Name: "file:///a", ID: []byte("2")}}, false, nil, 0, ""},
		{"members in any order", `{"params":{"arguments":{"name":"decoy"},"name":"echo"},"method":"tools/call","id":3,"jsonrpc":"2.0"}`,
			[]Call{{Method: "tools/call", Name: "echo", ID: []byte("3")}}, false, nil, 0, ""},
		{"escaped name", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"r\u006d_rf"}}`,
			[]Call{{Method: "tools/call", Name: "rm_rf", ID: []byte("1")}}, false, nil, 0, ""},
		{"escaped key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"rm_rf"}}`,
			[]Call{{Method: "tools/call", Name: "rm_rf", ID: []byte("1")}}, false, nil, 0, ""},
		{"key in other case, as Go decodes it", `{"jsonrpc":"2.0","id":1,"Method":"tools/call","PARAMS":{"Name":"rm_rf"}}`,
			[]Call{{Method: "tools/call", Name: "rm_rf", ID: []byte("1")}}, false, nil, 0, ""},
		{"dotless i is not i (bytes.EqualFold, as encoding/json)", `{"jsonrpc":"2.0","id":1,"İd":2,"method":"resources/read","params":{"uri":"file:///pub","urı":"file:///private"}}`,
			[]Call{{Method: "resources/read", Name: "file:///pub", ID: []byte("1")}}, false, nil, 0, ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			[]Call{{Method: "notifications/initialized"}}, false, nil, 0, ""},
		{"response to a server request", `{"jsonrpc":"2.0","id":5,"result":{"action":"accept"}}`, nil, false, nil, 0, ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a"}}]`,
			[]Call{{Method: "ping", ID: []byte("1")}, {Method: "tools/call", Name: "a", ID: []byte("2")}}, true, nil, 0, ""},

		{"duplicate name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"rm_rf"}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"duplicate name by case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"rm_rf"}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"duplicate name by escape", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","n\u0061me":"rm_rf"}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"duplicate params by Unicode folding", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"paramſ":{"name":"rm_rf"}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"x"}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":7}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"tools/call without name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, nil, false, ErrMalformed, CodeInvalidParams, "1"},
		{"tools/call name not a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["rm"]}}`, nil, false, ErrMalformed, CodeInvalidParams, "1"},
		{"tools/call params not an object", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["rm"]}`, nil, false, ErrMalformed, CodeInvalidParams, "1"},
		{"resources/read without uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}`, nil, false, ErrMalformed, CodeInvalidParams, "1"},
		{"no method, no result", `{"jsonrpc":"2.0","id":1}`, nil, false, ErrMalformed, CodeInvalidRequest, "1"},
		{"empty batch", `[]`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"batch of non-objects", `[1]`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"not JSON", `tools/call`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"empty", ``, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"truncated", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"trailing data", toolCall("echo") + `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm"}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"bad escape in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":"\q"}}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"control character in string", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"a\x01\"}}", nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"bad number", `{"jsonrpc":"2.0","id":01,"method":"ping"}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"byte order mark", "\xef\xbb\xbf" + toolCall("echo"), nil, false, ErrMalformed, CodeInvalidRequest, ""},
		{"too deep", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}}`, nil, false, ErrMalformed, CodeInvalidRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Inspect(nil, []byte(tt.body))
			if tt.errIs != nil {
				var re *RequestError
				if !errors.As(err, &re) || !errors.Is(err, tt.errIs) {
					t.Fatalf("err = %v, want a *RequestError wrapping %v", err, tt.errIs)
				}
				if re.Status != http.StatusBadRequest || re.Code != tt.code || string(re.ID) != tt.idSeen {
					t.Errorf("status %d code %d id %s, want 400 %d %s", re.Status, re.Code, re.ID, tt.code, tt.idSeen)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Batch != tt.batch || len(req.Calls) != len(tt.calls) {
				t.Fatalf("got %+v", req)
			}
			for i, c := range req.Calls {
				w := tt.calls[i]
				if c.Method != w.Method || c.Name != w.Name || !bytes.Equal(c.ID, w.ID) {
					t.Errorf("call %d = %q %q %s, want %q %q %s", i, c.Method, c.Name, c.ID, w.Method, w.Name, w.ID)
				}
			}
		})
	}
}

// TestKeyIsAgreesWithEncodingJSON checks keyIs against encoding/json for
// every ASCII character and every rune that folds, cases or lowers to one
// (ſ, K, İ, ı...), in every position of every key the engine reads.
func TestKeyIsAgreesWithEncodingJSON(t *testing.T) {
	candidates := []rune{'"', '\\', 0}
	for r := rune(0x20); r <= unicode.MaxRune; r++ {
		if r < utf8.RuneSelf || unicode.ToUpper(unicode.ToLower(r)) < utf8.RuneSelf ||
			unicode.SimpleFold(r) < utf8.RuneSelf || unicode.ToLower(r) < utf8.RuneSelf {
			candidates = append(candidates, r)
		}
	}
	for _, want := range []string{"id", "uri", "name", "method", "params", "jsonrpc", "result", "error"} {
		for pos := range want {
			for _, r := range candidates {
				key := want[:pos] + string(r) + want[pos+1:]
				raw, _ := json.Marshal(key)
				doc := `{` + string(raw) + `:1}`
				// Does encoding/json give the member to a field tagged want?
				field := reflect.StructOf([]reflect.StructField{{Name: "F", Type: reflect.TypeFor[*int](), Tag: reflect.StructTag(`json:"` + want + `"`)}})
				ptr := reflect.New(field)
				if err := json.Unmarshal([]byte(doc), ptr.Interface()); err != nil {
					t.Fatal(err)
				}
				goMatches := !ptr.Elem().Field(0).IsNil()
				plain := r < utf8.RuneSelf && r != '"' && r != '\\' && r >= 0x20
				plain = plain && !bytes.ContainsRune(raw[1:len(raw)-1], '\\')
				if got := keyIs(raw, plain, want); got != goMatches {
					t.Errorf("key %q for %q: keyIs %v, encoding/json %v", key, want, got, goMatches)
				}
				// envelopeBit, which picks candidates by length, agrees.
				for _, k := range envelopeKeys {
					if k.key == want {
						if got := envelopeBit(raw, plain) == k.bit; got != goMatches {
							t.Errorf("key %q: envelopeBit gives %s: %v, encoding/json %v", key, want, got, goMatches)
						}
					}
				}
			}
		}
	}
}
