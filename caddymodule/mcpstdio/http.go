package mcpstdio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
	"go.uber.org/zap"
)

// This file is the streamable HTTP side: POST carries one JSON-RPC message, GET opens an
// event stream of the user's process notifications (2025-xx clients), DELETE ends a session.

// Protocol versions.
const (
	// processProtocolVersion is what the bridge asks of the stdio process.
	processProtocolVersion = "2025-11-25"
	// latestLegacyVersion answers an initialize that asks for a version the bridge does not know.
	latestLegacyVersion = "2025-11-25"
	// statelessVersion is MCP's stateless revision: no initialize, no session, no GET stream.
	statelessVersion = "2026-07-28"
)

// legacyVersions are the versions an initialize may negotiate, oldest first.
var legacyVersions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}

const (
	headerSession  = "Mcp-Session-Id"
	headerProtocol = "Mcp-Protocol-Version"
	headerMethod   = "Mcp-Method"
	headerName     = "Mcp-Name"
	metaVersionKey = "io.modelcontextprotocol/protocolVersion"
)

// ServeHTTP implements caddyhttp.MiddlewareHandler. It is terminal: next is never called.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	key := repl.ReplaceAll(h.UserKey, "")
	if key == "" || key == h.noUserKey {
		h.logger.Error("mcp_stdio: user_key is empty for this request; is mcp_auth in front of mcp_stdio?",
			zap.String("user_key", h.UserKey))
		writeJSON(w, http.StatusForbidden, errorResponse(nil, codeInvalidRequest, "no authenticated user"))
		return nil
	}
	switch r.Method {
	case http.MethodPost:
		h.servePost(w, r, repl, key)
	case http.MethodGet:
		h.serveGet(w, r, key)
	case http.MethodDelete:
		h.serveDelete(w, r, key)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse(nil, codeInvalidRequest, "method not allowed"))
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// unavailable answers 503 with Retry-After and a JSON-RPC error.
func (h *Handler) unavailable(w http.ResponseWriter, id json.RawMessage, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int((time.Duration(h.RetryAfter)+time.Second-1)/time.Second)))
	writeJSON(w, http.StatusServiceUnavailable, errorResponse(id, codeServerUnavailable, msg))
}

func (h *Handler) servePost(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, key string) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, errorResponse(nil, codeInvalidRequest, "Content-Type must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.MaxMessageBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse(nil, codeInvalidRequest, "the message is too large"))
			return
		}
		writeJSON(w, http.StatusBadRequest, errorResponse(nil, codeParseError, "could not read the body"))
		return
	}
	m, err := parseMessage(body)
	if err != nil {
		code := codeParseError
		if errors.Is(err, errBatch) {
			code = codeInvalidRequest
		}
		writeJSON(w, http.StatusBadRequest, errorResponse(nil, code, err.Error()))
		return
	}
	k := m.kind()
	if k == kindInvalid {
		writeJSON(w, http.StatusBadRequest, errorResponse(nil, codeInvalidRequest, "not a valid JSON-RPC 2.0 message"))
		return
	}
	if msg := headerMismatch(r.Header, body); msg != "" {
		writeJSON(w, http.StatusBadRequest, errorResponse(m.ID, codeHeaderMismatch, msg))
		return
	}
	stateless := isStateless(r.Header, m)
	sessionID := ""
	if sid := r.Header.Get(headerSession); sid != "" && !stateless {
		if _, ok := h.sessions.get(sid, key); !ok {
			writeJSON(w, http.StatusNotFound, errorResponse(m.ID, codeInvalidRequest, "session not found"))
			return
		}
		sessionID = sid
	}

	switch k {
	case kindNotification:
		h.notify(key, sessionID, m)
		w.WriteHeader(http.StatusAccepted)
		return
	case kindResponse:
		// A client's answer to a relayed server-to-client request: only this user's processes
		// are searched, so an answer can never reach another user's process.
		found := false
		for _, p := range h.pool.procsOf(key) {
			if p.answerServerRequest(m) {
				found = true
				break
			}
		}
		if !found {
			h.logger.Debug("mcp_stdio: an answer to no pending server request; dropped", zap.String("user_id", key))
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}

	spec := buildSpec(key, h.base, h.Env, repl)
	p, err := h.pool.acquire(r.Context(), spec)
	switch {
	case errors.Is(err, errFull), errors.Is(err, errClosed):
		h.logger.Info("mcp_stdio: no process available", zap.String("user_id", key), zap.Error(err))
		h.unavailable(w, m.ID, err.Error())
		return
	case err != nil && r.Context().Err() != nil:
		return
	case err != nil:
		h.logger.Error("mcp_stdio: the MCP server did not start", zap.String("user_id", key), zap.Error(err))
		writeJSON(w, http.StatusBadGateway, errorResponse(m.ID, codeServerUnavailable, "the MCP server could not be started"))
		return
	}
	defer h.pool.release(p)

	switch m.Method {
	case "initialize":
		h.initialize(w, key, p, m)
	case "server/discover":
		h.discover(w, p, m)
	default:
		h.forward(w, r, p, m, sessionID, stateless)
	}
}

// headerMismatch checks 2026-07-28's Mcp-Method and Mcp-Name headers against the body, by
// the same rules as mcp_auth's tool policy (package toolpolicy): which member each method's
// Mcp-Name mirrors, the =?base64?…?= form, methods that name nothing. A request that carries
// neither header (a client before 2026-07-28) is not read twice.
func headerMismatch(hdr http.Header, body []byte) string {
	if len(hdr.Values(toolpolicy.HeaderMethod)) == 0 && len(hdr.Values(toolpolicy.HeaderName)) == 0 {
		return ""
	}
	_, err := toolpolicy.Inspect(hdr, body)
	var re *toolpolicy.RequestError
	if errors.As(err, &re) && errors.Is(err, toolpolicy.ErrHeaderMismatch) {
		return re.Detail
	}
	return ""
}

// isStateless reports a 2026-07-28 request: by its MCP-Protocol-Version header or its _meta.
func isStateless(hdr http.Header, m *message) bool {
	if hdr.Get(headerProtocol) == statelessVersion {
		return true
	}
	return decodeParams(m.Params).meta().str(metaVersionKey) == statelessVersion
}

// notify handles a client notification: initialized is the bridge's business (the process
// was initialized once, by the bridge), cancelled is mapped to the bridge's id, others go to
// the user's current process if there is one.
func (h *Handler) notify(key, sessionID string, m *message) {
	switch m.Method {
	case "notifications/initialized":
		return
	case "notifications/cancelled":
		// The call may be on a retired process that is finishing its calls.
		pr := decodeParams(m.Params)
		for _, p := range h.pool.procsOf(key) {
			if c := p.findCall(sessionID, pr["requestId"]); c != nil {
				p.cancel(c, pr.str("reason"))
				deliver(c.final, errorResponse(c.clientID, codeRequestTimeout, "request cancelled by the client"))
			}
		}
		return
	}
	if p := h.pool.lookup(key); p != nil {
		select {
		case <-p.ready:
			if p.startErr == nil {
				_ = p.send(encode(m))
			}
		default:
		}
	}
}

// initialize answers a client's initialize from the process's recorded result, with the
// protocol version negotiated for this client, and issues a session.
func (h *Handler) initialize(w http.ResponseWriter, key string, p *proc, m *message) {
	requested := decodeParams(m.Params).str("protocolVersion")
	version := latestLegacyVersion
	if slices.Contains(legacyVersions, requested) {
		version = requested
	}
	res := decodeParams(p.initRes)
	res["protocolVersion"], _ = json.Marshal(version)
	sid := h.sessions.create(key, version)
	w.Header().Set(headerSession, sid)
	writeJSON(w, http.StatusOK, encode(&message{ID: m.ID, Result: res.encode()}))
}

// discover answers 2026-07-28's server/discover from the process's initialize result.
func (h *Handler) discover(w http.ResponseWriter, p *proc, m *message) {
	init := decodeParams(p.initRes)
	res := params{"resultType": json.RawMessage(`"complete"`)}
	versions := []string{statelessVersion}
	for i := len(legacyVersions) - 1; i >= 0; i-- {
		versions = append(versions, legacyVersions[i])
	}
	res["supportedVersions"], _ = json.Marshal(versions)
	for _, k := range []string{"capabilities", "serverInfo", "instructions"} {
		if v, ok := init[k]; ok {
			res[k] = v
		}
	}
	writeJSON(w, http.StatusOK, encode(&message{ID: m.ID, Result: res.encode()}))
}

// forward sends a client request to the process and relays its answer: as application/json
// when the answer comes first, or as an event stream once a progress notification for the
// call arrives before it (when the client accepts text/event-stream).
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, p *proc, m *message, sessionID string, stateless bool) {
	canStream := acceptsEventStream(r.Header.Get("Accept"))
	c, out, err := p.newCall(m, sessionID, false, canStream && !stateless)
	switch {
	case errors.Is(err, errTooManyCalls):
		h.unavailable(w, m.ID, err.Error())
		return
	case err != nil:
		writeJSON(w, http.StatusOK, errorResponse(m.ID, codeServerUnavailable, "the MCP server process exited"))
		return
	}
	if err := p.send(out); err != nil {
		p.dropCall(c)
		writeJSON(w, http.StatusOK, errorResponse(m.ID, codeServerUnavailable, "the MCP server process is not reading its input"))
		return
	}
	rc := http.NewResponseController(w)
	streaming := false
	timeout := time.Duration(h.CallTimeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	finish := func(b []byte) {
		if stateless {
			b = withResultType(b)
		}
		if streaming {
			writeEvent(w, rc, b)
			return
		}
		writeJSON(w, http.StatusOK, b)
	}
	for {
		select {
		case b := <-c.final:
			finish(b)
			return
		case n := <-c.notes:
			if !canStream {
				continue
			}
			if !streaming {
				streaming = true
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				w.Header().Set("X-Accel-Buffering", "no")
				w.WriteHeader(http.StatusOK)
			}
			writeEvent(w, rc, n)
			timer.Reset(timeout)
		case <-timer.C:
			p.cancel(c, "mcp_stdio: call_timeout")
			go p.checkAlive(h.ctx, time.Duration(h.PingTimeout))
			h.logger.Warn("mcp_stdio: call timed out", zap.String("user_id", p.key), zap.String("method", m.Method))
			finish(errorResponse(m.ID, codeRequestTimeout, fmt.Sprintf("the MCP server did not answer within %s", timeout)))
			return
		case <-r.Context().Done():
			// The client went away: the process must not keep working for nobody.
			p.cancel(c, "the client went away")
			return
		case <-p.exited:
			select {
			case b := <-c.final:
				finish(b)
			default:
				finish(errorResponse(m.ID, codeServerUnavailable, "the MCP server process exited before answering"))
			}
			return
		}
	}
}

// acceptsEventStream reports whether an Accept header allows text/event-stream (an absent
// header allows anything).
func acceptsEventStream(accept string) bool {
	if accept == "" {
		return true
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		if mt == "text/event-stream" || mt == "*/*" || mt == "text/*" {
			return true
		}
	}
	return false
}

func writeEvent(w io.Writer, rc *http.ResponseController, b []byte) {
	_, _ = fmt.Fprintf(w, "event: message\ndata: %s\n\n", b)
	_ = rc.Flush()
}

// withResultType adds 2026-07-28's resultType "complete" to a result that lacks it.
func withResultType(b []byte) []byte {
	var m message
	if json.Unmarshal(b, &m) != nil || len(m.Result) == 0 || m.Result[0] != '{' {
		return b
	}
	res := decodeParams(m.Result)
	if _, ok := res["resultType"]; ok {
		return b
	}
	res["resultType"] = json.RawMessage(`"complete"`)
	m.Result = res.encode()
	return encode(&m)
}

// serveGet opens the event stream of the user's process notifications.
func (h *Handler) serveGet(w http.ResponseWriter, r *http.Request, key string) {
	if r.Header.Get(headerProtocol) == statelessVersion {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse(nil, codeInvalidRequest, "no event stream in the stateless protocol"))
		return
	}
	if sid := r.Header.Get(headerSession); sid != "" {
		if _, ok := h.sessions.get(sid, key); !ok {
			writeJSON(w, http.StatusNotFound, errorResponse(nil, codeInvalidRequest, "session not found"))
			return
		}
	}
	if !acceptsEventStream(r.Header.Get("Accept")) {
		writeJSON(w, http.StatusNotAcceptable, errorResponse(nil, codeInvalidRequest, "GET must accept text/event-stream"))
		return
	}
	ch, unsubscribe, err := h.hub.subscribe(key)
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(time.Duration(h.RetryAfter)/time.Second)))
		writeJSON(w, http.StatusTooManyRequests, errorResponse(nil, codeInvalidRequest, err.Error()))
		return
	}
	defer unsubscribe()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	keepAlive := time.NewTicker(25 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case b := <-ch:
			writeEvent(w, rc, b)
		case <-keepAlive.C:
			_, _ = io.WriteString(w, ": keep-alive\n\n")
			_ = rc.Flush()
		case <-r.Context().Done():
			return
		case <-h.ctx.Done():
			return
		}
	}
}

// serveDelete ends the client's session (the user's process stays: it is per user).
func (h *Handler) serveDelete(w http.ResponseWriter, r *http.Request, key string) {
	sid := r.Header.Get(headerSession)
	if sid == "" {
		writeJSON(w, http.StatusBadRequest, errorResponse(nil, codeInvalidRequest, "DELETE needs an Mcp-Session-Id"))
		return
	}
	if !h.sessions.remove(sid, key) {
		writeJSON(w, http.StatusNotFound, errorResponse(nil, codeInvalidRequest, "session not found"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
