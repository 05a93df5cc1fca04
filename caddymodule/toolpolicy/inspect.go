package toolpolicy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
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

// Call is one JSON-RPC request or notification of a request body: only what
// a decision needs. Responses a client sends (to server-initiated requests)
// are not calls.
type Call struct {
	// Method is the JSON-RPC method.
	Method string
	// Name is params.name (tools/call, prompts/get) or params.uri (the
	// resources methods that name a resource); empty for other methods.
	Name string
	// ID is the raw JSON text of the id (a sub-slice of the body), nil for
	// a notification.
	ID json.RawMessage
}

// Request is what Inspect read from a body.
type Request struct {
	// Calls are the requests and notifications, in body order.
	Calls []Call
	// Batch: the body was a JSON array (protocol versions before
	// 2025-06-18); answers must then be an array too.
	Batch bool

	one [1]Call // Calls of a single message, without a second allocation
}

// ReadBody reads a request body of at most limit bytes (0: the default,
// DefaultMaxBodyBytes) and returns its bytes, which the gateway must then
// hand on to the backend unchanged. A longer body yields a *RequestError
// wrapping ErrBodyTooLarge (413) after reading at most limit+1 bytes; the
// gateway should also refuse a Content-Length above the limit before
// reading. Errors of r are returned as they are.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}

// ReadRequestBody is ReadBody for an HTTP request: a Content-Length above
// limit (0: the default) is refused before anything is read, a declared
// length is read into one allocation, and r.Body is replaced by a reader of
// the same bytes (r.ContentLength set to match) so the backend receives
// exactly what was inspected.
func ReadRequestBody(r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	var b []byte
	var err error
	if r.ContentLength > 0 {
		b = make([]byte, r.ContentLength)
		var n int
		n, err = io.ReadFull(r.Body, b)
		b = b[:n]
		if err == nil {
			// The body must end where it said it would.
			var one [1]byte
			if m, _ := r.Body.Read(one[:]); m > 0 {
				err = io.ErrUnexpectedEOF
			}
		}
	} else {
		b, err = ReadBody(r.Body, limit)
	}
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return b, nil
}

// Inspect reads a JSON-RPC request body (one message or a batch) and checks
// it against the Mcp-Method and Mcp-Name headers when the client sent them
// (MCP 2026-07-28); older clients send none and the body alone decides.
// It reads only jsonrpc's envelope, the method, the id and params.name /
// params.uri; arguments are validated as JSON but not decoded.
//
// Errors are *RequestError: ErrMalformed (400) for a body that is not valid
// JSON-RPC or that gives a member twice (in any letter case, as Go decodes
// keys), ErrHeaderMismatch (400, -32020) when a header is repeated,
// malformed, or differs from the body, or when the headers are sent with a
// batch or a response, which they cannot describe.
func Inspect(h http.Header, body []byte) (*Request, error) {
	req, err := parseBody(body)
	if err != nil {
		return nil, err
	}
	if err := checkHeaders(h, req); err != nil {
		return nil, err
	}
	return req, nil
}

// parseBody parses one message or a batch.
func parseBody(body []byte) (*Request, error) {
	s := &scanner{b: body}
	req := &Request{}
	switch s.peek() {
	case '{':
		c, isCall, err := parseMessage(s)
		if err != nil {
			return nil, err
		}
		if isCall {
			req.one[0] = c
			req.Calls = req.one[:]
		}
	case '[':
		req.Batch = true
		n := 0
		err := s.array(func() error {
			n++
			if s.peek() != '{' {
				return malformed(CodeInvalidRequest, "a batch element is not an object", nil)
			}
			c, isCall, err := parseMessage(s)
			if err == nil && isCall {
				req.Calls = append(req.Calls, c)
			}
			return err
		})
		if err != nil {
			return nil, asRequestError(err, nil)
		}
		if n == 0 {
			return nil, malformed(CodeInvalidRequest, "empty batch", nil)
		}
	default:
		return nil, malformed(CodeInvalidRequest, "the body is not a JSON-RPC message", nil)
	}
	if s.end() != nil {
		return nil, malformed(CodeInvalidRequest, "the body has data after the JSON-RPC message", nil)
	}
	return req, nil
}

// asRequestError keeps a *RequestError and turns anything else (a syntax
// error) into ErrMalformed.
func asRequestError(err error, id json.RawMessage) error {
	if re, ok := err.(*RequestError); ok {
		return re
	}
	return malformed(CodeInvalidRequest, "the body is not valid JSON", id)
}

// Members of a message the engine reads or must see once.
const (
	mJSONRPC = 1 << iota
	mID
	mMethod
	mParams
	mResult
	mError
	mName
	mURI
)

var envelopeKeys = [...]struct {
	key string
	bit int
}{{"jsonrpc", mJSONRPC}, {"id", mID}, {"method", mMethod}, {"params", mParams}, {"result", mResult}, {"error", mError}}

// parseMessage reads one JSON-RPC object. isCall is false for a response.
func parseMessage(s *scanner) (c Call, isCall bool, err error) {
	seen := 0
	var name, uri string
	var nameRaw, uriRaw []byte // set when params.name / params.uri is present
	err = s.object(func(key []byte, plain bool) error {
		bit := 0
		for _, k := range envelopeKeys {
			if keyIs(key, plain, k.key) {
				bit = k.bit
				break
			}
		}
		if bit == 0 {
			return s.skip()
		}
		if seen&bit != 0 {
			return malformed(CodeInvalidRequest, "a JSON-RPC member is given twice", nil)
		}
		seen |= bit
		switch bit {
		case mID:
			v, err := s.value()
			c.ID = v
			return err
		case mMethod:
			if s.peek() != '"' {
				return malformed(CodeInvalidRequest, "the method is not a string", nil)
			}
			raw, plain, err := s.str()
			if err != nil {
				return err
			}
			if plain {
				// A known method costs no allocation: the map's own key
				// is used (the lookup by string(bytes) does not copy).
				if k, ok := methodNames[string(raw[1:len(raw)-1])]; ok {
					c.Method = k
					return nil
				}
			}
			c.Method, err = decodeString(raw, plain)
			return err
		case mParams:
			if s.peek() != '{' {
				return s.skip()
			}
			pseen := 0
			return s.object(func(key []byte, plain bool) error {
				bit := 0
				switch {
				case keyIs(key, plain, "name"):
					bit = mName
				case keyIs(key, plain, "uri"):
					bit = mURI
				default:
					return s.skip()
				}
				if pseen&bit != 0 {
					return malformed(CodeInvalidRequest, "a params member is given twice", nil)
				}
				pseen |= bit
				v, err := s.value()
				if bit == mName {
					nameRaw = v
				} else {
					uriRaw = v
				}
				return err
			})
		}
		return s.skip()
	})
	if err != nil {
		return Call{}, false, asRequestError(err, nil)
	}
	if seen&mMethod == 0 {
		if seen&(mResult|mError) != 0 {
			return Call{}, false, nil // a response to a server-initiated request
		}
		return Call{}, false, malformed(CodeInvalidRequest, "a message has no method", c.ID)
	}
	switch methodNameKind(c.Method) {
	case nameField:
		if name, err = stringMember(nameRaw); err != nil {
			return Call{}, false, malformed(CodeInvalidParams, c.Method+" needs params.name, a string", c.ID)
		}
		c.Name = name
	case uriField:
		if uri, err = stringMember(uriRaw); err != nil {
			return Call{}, false, malformed(CodeInvalidParams, c.Method+" needs params.uri, a string", c.ID)
		}
		c.Name = uri
	}
	return c, true, nil
}

// stringMember decodes a raw member that must be a JSON string.
func stringMember(raw []byte) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", errSyntax
	}
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	return decodeString(raw, plain)
}

// checkHeaders compares Mcp-Method / Mcp-Name with the body.
func checkHeaders(h http.Header, req *Request) error {
	methods, names := h.Values(HeaderMethod), h.Values(HeaderName)
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
