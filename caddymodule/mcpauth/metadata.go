package mcpauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// wellKnownPRM is the RFC 9728 §3 well-known path prefix.
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// protectedResourceMetadata is the RFC 9728 §2 document mcp_auth serves.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// metadataPaths returns the paths the metadata is served at: the RFC 9728
// §3.1 path-suffixed form for a resource with a path (e.g.
// /.well-known/oauth-protected-resource/mcp for .../mcp), or the configured
// override, and always the root form, which some clients try first. The first
// path is the one advertised in challenges.
func metadataPaths(resourcePath, override string) []string {
	var paths []string
	switch {
	case override != "":
		paths = append(paths, override)
	case resourcePath != "" && resourcePath != "/":
		paths = append(paths, wellKnownPRM+"/"+strings.TrimPrefix(resourcePath, "/"))
	}
	if len(paths) == 0 || paths[0] != wellKnownPRM {
		paths = append(paths, wellKnownPRM)
	}
	return paths
}

// metadataJSON renders the document for the canonical resource.
func (h *Handler) metadataJSON(resource string) []byte {
	doc := protectedResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   h.AuthorizationServers,
		ScopesSupported:        h.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           h.ResourceName,
		ResourceDocumentation:  h.ResourceDocumentation,
	}
	b, _ := json.Marshal(doc) // cannot fail: strings and string slices
	return b
}

// isMetadataPath reports whether p is one of the served metadata paths.
func (h *Handler) isMetadataPath(p string) bool {
	for _, mp := range h.prmPaths {
		if p == mp {
			return true
		}
	}
	return false
}

// serveMetadata answers GET, HEAD and OPTIONS for the metadata document. No
// token is needed; CORS is open because browser-based MCP clients fetch it
// cross-origin.
func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodOptions:
		hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		hdr.Set("Access-Control-Allow-Headers", "*")
		hdr.Set("Access-Control-Max-Age", "86400")
		hdr.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodHead:
	default:
		hdr.Set("Allow", "GET, HEAD, OPTIONS")
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return
	}
	body := h.prmJSON
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "public, max-age=300")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// originOf returns scheme://host[:port] of an absolute URL.
func originOf(abs string) string {
	u, err := url.Parse(abs)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
