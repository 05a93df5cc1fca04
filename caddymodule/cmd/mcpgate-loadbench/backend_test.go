package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBackendHandler(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantBody   string
	}{
		{"tools call", http.MethodPost, pathMCP, nil, 200, `"result"`},
		{"checked and injected", http.MethodPost, pathMCP, map[string]string{expectHeader: "1", upstreamHeader: upstreamPrefix + "1"}, 200, `"result"`},
		{"checked, not injected", http.MethodPost, pathMCP, map[string]string{expectHeader: "1"}, 500, "missing"},
		{"checked, authorization kept", http.MethodPost, pathMCP, map[string]string{expectHeader: "1", upstreamHeader: upstreamPrefix + "1", "Authorization": "Bearer x"}, 500, "missing"},
		{"sse", http.MethodGet, pathSSE, nil, 200, "event: message\n"},
		{"sse checked, not injected", http.MethodGet, pathSSE, map[string]string{expectHeader: "1"}, 500, "missing"},
	}
	h := backendHandler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(toolsCallBody))
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}
