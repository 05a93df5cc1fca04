package toolpolicy

import (
	"net/http"
	"testing"
)

// mustCompile compiles cfg or fails the test.
func mustCompile(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mustIdentity builds an Identity from a JSON payload or fails the test.
func mustIdentity(t testing.TB, p *Policy, payload string) *Identity {
	t.Helper()
	id, err := p.Identity([]byte(payload))
	if err != nil {
		t.Fatalf("Identity(%s): %v", payload, err)
	}
	return id
}

// mustInspect inspects a body without headers or fails the test.
func mustInspect(t testing.TB, body string) *Request {
	t.Helper()
	req, err := Inspect(nil, []byte(body))
	if err != nil {
		t.Fatalf("Inspect(%s): %v", body, err)
	}
	return req
}

// headers builds an http.Header from name/value pairs.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// toolCall is a tools/call body for name with id 1.
func toolCall(name string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":{"path":"/tmp/x","n":[1,2,{"deep":true}]}}}`
}
