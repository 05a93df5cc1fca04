package toolpolicy

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Header names of MCP 2026-07-28's Streamable HTTP transport that mirror the
// JSON-RPC body.
const (
	HeaderMethod = "Mcp-Method"
	HeaderName   = "Mcp-Name"
)

// checkHeaders compares Mcp-Method / Mcp-Name with the body.
func checkHeaders(h http.Header, req *Request) error {
	// Both names are canonical, so they index the map directly (what
	// Header.Values does after canonicalising its argument).
	methods, names := h[HeaderMethod], h[HeaderName]
	if len(methods) == 0 && len(names) == 0 {
		return nil // a client before 2026-07-28: the body decides
	}
	var id json.RawMessage
	if !req.Batch && len(req.Calls) == 1 {
		id = req.Calls[0].ID
	}
	if len(methods) != 1 {
		if len(methods) == 0 {
			return mismatch("Mcp-Name is sent without Mcp-Method", id)
		}
		return mismatch("Mcp-Method is sent more than once", id)
	}
	if req.Batch || len(req.Calls) != 1 {
		return mismatch("Mcp-Method describes one request; the body is a batch or a response", id)
	}
	c := req.Calls[0]
	if strings.TrimSpace(methods[0]) != c.Method {
		return mismatch("the Mcp-Method header does not match the body's method", id)
	}
	if methodNameKind(c.Method) == noName {
		return nil // Mcp-Name, if any, mirrors something no rule reads (e.g. a task id)
	}
	if len(names) != 1 {
		if len(names) == 0 {
			return mismatch("Mcp-Name is required for "+c.Method, id)
		}
		return mismatch("Mcp-Name is sent more than once", id)
	}
	name, ok := decodeHeaderValue(names[0])
	if !ok {
		return mismatch("the Mcp-Name header is not a valid header value", id)
	}
	if name != c.Name {
		return mismatch("the Mcp-Name header does not match the body's name", id)
	}
	return nil
}

// decodeHeaderValue undoes the 2026-07-28 encoding of a mirrored value: a
// value that cannot travel as plain header text is sent as
// "=?base64?<base64 of its UTF-8>?=". A plain value is taken as sent, after
// trimming surrounding spaces (HTTP drops them anyway).
func decodeHeaderValue(v string) (string, bool) {
	v = strings.Trim(v, " \t")
	if strings.HasPrefix(v, "=?base64?") {
		enc, ok := strings.CutSuffix(v[len("=?base64?"):], "?=")
		if !ok {
			return "", false
		}
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
				return "", false
			}
		}
		if !utf8.Valid(b) {
			return "", false
		}
		return string(b), true
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f {
			return "", false
		}
	}
	return v, true
}
