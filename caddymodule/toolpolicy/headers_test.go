package toolpolicy

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestInspectHeaders(t *testing.T) {
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	single := toolCall("echo")
	tests := []struct {
		name string
		h    http.Header
		body string
		ok   bool
	}{
		{"no headers: the body decides", nil, single, true},
		{"matching headers", headers("Mcp-Method", "tools/call", "Mcp-Name", "echo"), single, true},
		{"lying client: header names an allowed tool, body calls another", headers("Mcp-Method", "tools/call", "Mcp-Name", "echo"), toolCall("rm_rf"), false},
		{"lying method", headers("Mcp-Method", "tools/list"), single, false},
		{"method case differs", headers("Mcp-Method", "Tools/Call", "Mcp-Name", "echo"), single, false},
		{"name missing for tools/call", headers("Mcp-Method", "tools/call"), single, false},
		{"name without method", headers("Mcp-Name", "echo"), single, false},
		{"method twice", headers("Mcp-Method", "tools/call", "Mcp-Method", "tools/call", "Mcp-Name", "echo"), single, false},
		{"name twice", headers("Mcp-Method", "tools/call", "Mcp-Name", "echo", "Mcp-Name", "echo"), single, false},
		{"base64 name", headers("Mcp-Method", "tools/call", "Mcp-Name", b64("café")),
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"café"}}`, true},
		{"base64 name of another tool", headers("Mcp-Method", "tools/call", "Mcp-Name", b64("echo")), toolCall("rm_rf"), false},
		{"bad base64", headers("Mcp-Method", "tools/call", "Mcp-Name", "=?base64?!!!?="), single, false},
		{"base64 without end", headers("Mcp-Method", "tools/call", "Mcp-Name", "=?base64?ZWNobw=="), single, false},
		{"name with control character", headers("Mcp-Method", "tools/call", "Mcp-Name", "ec\x01ho"), single, false},
		{"headers with a batch", headers("Mcp-Method", "tools/call", "Mcp-Name", "echo"), "[" + single + "]", false},
		{"headers with a response", headers("Mcp-Method", "tools/call"), `{"jsonrpc":"2.0","id":1,"result":{}}`, false},
		{"resource uri", headers("Mcp-Method", "resources/read", "Mcp-Name", "file:///a"),
			`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}`, true},
		{"resource uri differs", headers("Mcp-Method", "resources/read", "Mcp-Name", "file:///a"),
			`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///b"}}`, false},
		{"name for a method that names nothing is not ours to check", headers("Mcp-Method", "tasks/get", "Mcp-Name", "t1"),
			`{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t1"}}`, true},
		{"notification", headers("Mcp-Method", "notifications/initialized"), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Inspect(tt.h, []byte(tt.body))
			if tt.ok {
				if err != nil || req == nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) || !errors.Is(err, ErrHeaderMismatch) {
				t.Fatalf("err = %v, want ErrHeaderMismatch", err)
			}
			if re.Status != http.StatusBadRequest || re.Code != CodeHeaderMismatch {
				t.Errorf("status %d code %d", re.Status, re.Code)
			}
			body := string(re.ErrorBody())
			if !strings.Contains(body, `"code":-32020`) {
				t.Errorf("error body %s", body)
			}
			if strings.Contains(body, "rm_rf") || strings.Contains(err.Error(), "rm_rf") {
				t.Errorf("the error quotes the body: %v / %s", err, body)
			}
		})
	}
}
