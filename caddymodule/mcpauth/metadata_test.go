package mcpauth

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestMetadataPaths(t *testing.T) {
	for _, c := range []struct {
		path, override string
		want           []string
	}{
		{"/mcp", "", []string{wellKnownPRM + "/mcp", wellKnownPRM}},
		{"/a/b", "", []string{wellKnownPRM + "/a/b", wellKnownPRM}},
		{"", "", []string{wellKnownPRM}},
		{"/", "", []string{wellKnownPRM}},
		{"/mcp", "/custom", []string{"/custom", wellKnownPRM}},
		{"/mcp", wellKnownPRM, []string{wellKnownPRM}},
	} {
		if got := metadataPaths(c.path, c.override); !reflect.DeepEqual(got, c.want) {
			t.Errorf("metadataPaths(%q, %q) = %q, want %q", c.path, c.override, got, c.want)
		}
	}
}

func TestServeMetadata(t *testing.T) {
	env := newTestEnv(t, func(h *Handler, _ *testEnv) {
		h.ResourceName = "Example MCP"
		h.ResourceDocumentation = "https://docs.example.com/mcp"
	})
	want := protectedResourceMetadata{
		Resource:               testResource,
		AuthorizationServers:   []string{env.issuer.URL()},
		ScopesSupported:        []string{"mcp:tools", "github:repo"},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Example MCP",
		ResourceDocumentation:  "https://docs.example.com/mcp",
	}
	for _, path := range []string{wellKnownPRM + "/mcp", wellKnownPRM} {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "POST"} {
			r := httptest.NewRequest(method, path, nil)
			r.Header.Set("Origin", "https://app.example")
			w := env.do(r)
			if w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("%s %s: no CORS header", method, path)
			}
			switch method {
			case "GET":
				if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
					t.Fatalf("GET %s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
				}
				var got protectedResourceMetadata
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("GET %s:\n got %+v\nwant %+v", path, got, want)
				}
			case "HEAD":
				if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
					t.Errorf("HEAD %s: %d body %d", path, w.Code, w.Body.Len())
				}
			case "OPTIONS":
				if w.Code != 204 || w.Header().Get("Access-Control-Allow-Methods") == "" {
					t.Errorf("OPTIONS %s: %d", path, w.Code)
				}
			case "POST":
				if w.Code != 405 || w.Header().Get("Allow") == "" {
					t.Errorf("POST %s: %d", path, w.Code)
				}
			}
		}
	}
	if env.backend.Calls() != 0 {
		t.Error("metadata requests reached the backend")
	}
	// Other well-known paths are not ours: they need a token like anything else.
	if w := env.do(httptest.NewRequest("GET", wellKnownPRM+"/other", nil)); w.Code != 401 {
		t.Errorf("foreign metadata path: %d, want 401", w.Code)
	}
}
