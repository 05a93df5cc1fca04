package mcpstdio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// This file holds the JSON-RPC 2.0 message shape and the few rewrites the bridge makes to a
// message on its way through: the request id, the progress token, and the protocol version of an
// initialize result. Everything else in a message passes unchanged.

// JSON-RPC and MCP error codes the bridge answers with.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInternalError  = -32603
	// codeServerUnavailable is a JSON-RPC server error (the -32000..-32099 range): the stdio
	// process could not be started, exited, or stopped answering.
	codeServerUnavailable = -32000
	// codeRequestTimeout is the error of a call that got no answer within call_timeout.
	codeRequestTimeout = -32001
	// codeHeaderMismatch is MCP 2026-07-28's answer to Mcp-Method/Mcp-Name headers that
	// disagree with the body.
	codeHeaderMismatch = -32020
)

// message is one JSON-RPC 2.0 message in either direction. A request has Method and ID, a
// notification Method only, a response ID and Result or Error.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

type kind int

const (
	kindInvalid kind = iota
	kindRequest
	kindNotification
	kindResponse
)

func (m *message) kind() kind {
	switch {
	case m.JSONRPC != "2.0":
		return kindInvalid
	case m.Method != "" && len(m.ID) > 0:
		if !validID(m.ID) {
			return kindInvalid
		}
		return kindRequest
	case m.Method != "":
		return kindNotification
	case len(m.ID) > 0 && (len(m.Result) > 0 || len(m.Error) > 0):
		return kindResponse
	}
	return kindInvalid
}

// validID accepts what MCP allows as a request id: a string or a number (never null).
func validID(id json.RawMessage) bool {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return false
	}
	switch id[0] {
	case '"':
		var s string
		return json.Unmarshal(id, &s) == nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		return json.Unmarshal(id, &n) == nil
	}
	return false
}

// errParse is a body that is not one JSON-RPC message.
var errParse = errors.New("the body is not a JSON-RPC message")

// errBatch is a JSON array: batches left MCP with 2025-06-18 and the bridge does not take them.
var errBatch = errors.New("JSON-RPC batches are not supported (MCP 2025-06-18 and later send one message per POST)")

// parseMessage decodes one message from an HTTP body.
func parseMessage(body []byte) (*message, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		return nil, errBatch
	}
	var m message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errParse
	}
	return &m, nil
}

// encode marshals m; a message built from decoded parts always marshals.
func encode(m *message) []byte {
	m.JSONRPC = "2.0"
	b, err := json.Marshal(m)
	if err != nil {
		// Only invalid RawMessage content can fail, and every RawMessage here came from
		// json.Unmarshal or json.Marshal.
		panic("mcpstdio: encode: " + err.Error())
	}
	return b
}

// rpcError is the error object of a JSON-RPC response.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// errorResponse builds a JSON-RPC error response for id (null when id is empty).
func errorResponse(id json.RawMessage, code int, msg string) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	e, _ := json.Marshal(rpcError{Code: code, Message: msg})
	return encode(&message{ID: id, Error: e})
}

// resultResponse builds a JSON-RPC result response.
func resultResponse(id json.RawMessage, result any) []byte {
	b, err := json.Marshal(result)
	if err != nil {
		panic("mcpstdio: resultResponse: " + err.Error())
	}
	return encode(&message{ID: id, Result: b})
}

// procID is the id the bridge gives a message it sends to the process: a JSON number unique
// within that process's life.
func procID(n int64) json.RawMessage { return json.RawMessage(strconv.FormatInt(n, 10)) }

// idKey normalises an id for a map key: the process echoes the id it got, but a
// re-serialising server may change spacing.
func idKey(id json.RawMessage) string { return string(bytes.TrimSpace(id)) }

// params is a request's params as an object whose members are kept raw.
type params map[string]json.RawMessage

func decodeParams(raw json.RawMessage) params {
	p := params{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &p)
	}
	return p
}

func (p params) encode() json.RawMessage {
	b, _ := json.Marshal(map[string]json.RawMessage(p))
	return b
}

// str returns the string member name, or "".
func (p params) str(name string) string {
	var s string
	if raw, ok := p[name]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// meta returns params._meta as an object (empty if absent).
func (p params) meta() params {
	if raw, ok := p["_meta"]; ok {
		return decodeParams(raw)
	}
	return params{}
}

// envelopeKeys are the _meta members of the 2026-07-28 stateless envelope. The bridge speaks
// the handshake protocol to its processes (it initialized them itself), and a server of that
// era may refuse a request that carries them (the Python SDK does), so they are not passed on.
var envelopeKeys = []string{
	metaVersionKey,
	"io.modelcontextprotocol/clientInfo",
	"io.modelcontextprotocol/clientCapabilities",
	"io.modelcontextprotocol/logLevel",
}

// rewriteMeta prepares a client's params for the process: it drops the stateless envelope
// from params._meta and replaces params._meta.progressToken with token, returning the client's
// original token (nil if the request had none). Params without either are returned unchanged.
func rewriteMeta(raw json.RawMessage, token json.RawMessage) (json.RawMessage, json.RawMessage) {
	p := decodeParams(raw)
	meta := p.meta()
	changed := false
	for _, k := range envelopeKeys {
		if _, ok := meta[k]; ok {
			delete(meta, k)
			changed = true
		}
	}
	orig, ok := meta["progressToken"]
	if ok {
		meta["progressToken"] = token
		changed = true
	}
	if !changed {
		return raw, nil
	}
	if len(meta) == 0 {
		delete(p, "_meta")
	} else {
		p["_meta"] = meta.encode()
	}
	return p.encode(), orig
}
