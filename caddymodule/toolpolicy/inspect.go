package toolpolicy

import (
	"encoding/json"
	"net/http"
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

	rule   *rule   // the rule that decided the call, noted by Decide
	ruleOf *Policy // the policy rule belongs to; nil before Decide
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

// envelopeBit returns the bit of the envelope member a key names, 0 for
// any other. A plain key is told by its length first: one comparison
// where a list of six would take up to six.
func envelopeBit(key []byte, plain bool) int {
	candidates := envelopeKeys[:]
	if plain {
		switch len(key) - 2 { // without the quotes
		case 2:
			candidates = envelopeKeys[1:2] // id
		case 5:
			candidates = envelopeKeys[5:6] // error
		case 6:
			candidates = envelopeKeys[2:5] // method, params, result
		case 7:
			candidates = envelopeKeys[0:1] // jsonrpc
		default:
			return 0
		}
	}
	for _, k := range candidates {
		if keyIs(key, plain, k.key) {
			return k.bit
		}
	}
	return 0
}

var envelopeKeys = [...]struct {
	key string
	bit int
}{{"jsonrpc", mJSONRPC}, {"id", mID}, {"method", mMethod}, {"params", mParams}, {"result", mResult}, {"error", mError}}

// parseMessage reads one JSON-RPC object. isCall is false for a response.
func parseMessage(s *scanner) (c Call, isCall bool, err error) {
	seen := 0
	var name, uri string
	var nameRaw, uriRaw []byte // set when params.name / params.uri is present
	more, err := s.open('{')
	for err == nil && more {
		var key []byte
		var plain bool
		if key, plain, err = s.key(); err != nil {
			break
		}
		bit := envelopeBit(key, plain)
		if seen&bit != 0 {
			return Call{}, false, malformed(CodeInvalidRequest, "a JSON-RPC member is given twice", nil)
		}
		seen |= bit
		switch bit {
		case mID:
			c.ID, err = s.value()
		case mMethod:
			c.Method, err = methodValue(s)
		case mParams:
			nameRaw, uriRaw, err = paramsValue(s)
		default:
			err = s.skip()
		}
		if err == nil {
			more, err = s.next('{')
		}
	}
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

// methodValue reads a message's method, which must be a string.
func methodValue(s *scanner) (string, error) {
	if s.peek() != '"' {
		return "", malformed(CodeInvalidRequest, "the method is not a string", nil)
	}
	raw, plain, err := s.str()
	if err != nil {
		return "", err
	}
	if plain {
		// A known method costs no allocation: the map's own key is used
		// (the lookup by string(bytes) does not copy).
		if k, ok := methodNames[string(raw[1:len(raw)-1])]; ok {
			return k, nil
		}
	}
	return decodeString(raw, plain)
}

// paramsValue reads a message's params and returns the raw values of
// params.name and params.uri (nil when absent). Params that are not an
// object (an array, or a value JSON-RPC does not allow) are only scanned:
// the method's needs decide whether that is an error.
func paramsValue(s *scanner) (nameRaw, uriRaw []byte, err error) {
	if s.peek() != '{' {
		return nil, nil, s.skip()
	}
	seen := 0
	more, err := s.open('{')
	for err == nil && more {
		var key []byte
		var plain bool
		if key, plain, err = s.key(); err != nil {
			break
		}
		bit := 0
		switch {
		case keyIs(key, plain, "name"):
			bit = mName
		case keyIs(key, plain, "uri"):
			bit = mURI
		}
		switch {
		case bit == 0:
			err = s.skip()
		case seen&bit != 0:
			return nil, nil, malformed(CodeInvalidRequest, "a params member is given twice", nil)
		case bit == mName:
			nameRaw, err = s.value()
		default:
			uriRaw, err = s.value()
		}
		seen |= bit
		if err == nil {
			more, err = s.next('{')
		}
	}
	return nameRaw, uriRaw, err
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
