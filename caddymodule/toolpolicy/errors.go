package toolpolicy

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// JSON-RPC error codes the engine answers with.
const (
	// CodeInvalidRequest is JSON-RPC's "Invalid Request" (and, for a body
	// that is not JSON, the gateway may equally use -32700 Parse error;
	// we use one code for both).
	CodeInvalidRequest = -32600
	// CodeInvalidParams is JSON-RPC's "Invalid params": a call that must
	// name a tool, prompt or resource does not.
	CodeInvalidParams = -32602
	// CodeHeaderMismatch is MCP 2026-07-28's HeaderMismatch: the
	// Mcp-Method / Mcp-Name headers are malformed, or disagree with the
	// body (answered with HTTP 400).
	CodeHeaderMismatch = -32020
	// CodeForbidden is this gateway's code for a call its policy refuses
	// and that more scopes cannot fix. MCP defines no such code; -32003
	// lies in JSON-RPC's implementation-defined server error range and is
	// not used by the MCP specification.
	CodeForbidden = -32003
)

// Sentinels wrapped by *RequestError (errors.Is).
var (
	// ErrBodyTooLarge: the body exceeds MaxBodyBytes (HTTP 413).
	ErrBodyTooLarge = errors.New("toolpolicy: request body too large")
	// ErrMalformed: the body is not a JSON-RPC message or batch the engine
	// can decide on: not JSON, an empty batch, a member given twice, a
	// method that is not a string, a tools/call without a string name
	// (HTTP 400).
	ErrMalformed = errors.New("toolpolicy: malformed JSON-RPC request")
	// ErrHeaderMismatch: Mcp-Method or Mcp-Name is malformed or disagrees
	// with the body (HTTP 400, JSON-RPC -32020).
	ErrHeaderMismatch = errors.New("toolpolicy: Mcp-Method/Mcp-Name headers do not match the body")
)

// RequestError is a request the engine refuses before any decision. Its
// message is a fixed text written here: it never quotes the body or the
// headers.
type RequestError struct {
	Kind   error  // ErrBodyTooLarge, ErrMalformed or ErrHeaderMismatch
	Status int    // HTTP status for the response: 413 or 400
	Code   int    // JSON-RPC error code for ErrorBody
	Detail string // fixed, human-readable
	// ID is the raw JSON-RPC id of the request when it could be read
	// (a single message), else nil; ErrorBody uses null then.
	ID json.RawMessage
}

func (e *RequestError) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *RequestError) Unwrap() error { return e.Kind }

// ErrorBody is the JSON-RPC error response to send with Status
// (Content-Type: application/json).
func (e *RequestError) ErrorBody() []byte {
	return appendError(nil, e.ID, e.Code, e.Detail, "", "")
}

func tooLarge(limit int64) *RequestError {
	return &RequestError{Kind: ErrBodyTooLarge, Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidRequest,
		Detail: "the request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

func malformed(code int, detail string, id json.RawMessage) *RequestError {
	return &RequestError{Kind: ErrMalformed, Status: http.StatusBadRequest, Code: code, Detail: detail, ID: id}
}

func mismatch(detail string, id json.RawMessage) *RequestError {
	return &RequestError{Kind: ErrHeaderMismatch, Status: http.StatusBadRequest, Code: CodeHeaderMismatch, Detail: detail, ID: id}
}

// appendError appends one JSON-RPC error response. id nil → null. method
// and name, when set, go into error.data so a client can show which call
// was refused.
func appendError(b []byte, id json.RawMessage, code int, message, method, name string) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if len(id) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, id...)
	}
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, message)
	if method != "" {
		b = append(b, `,"data":{"method":`...)
		b = appendJSONString(b, method)
		if name != "" {
			b = append(b, `,"name":`...)
			b = appendJSONString(b, name)
		}
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
