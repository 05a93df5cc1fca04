package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Backend paths and the fixed exchange result the gateway injects.
const (
	pathMCP = "/mcp"
	pathSSE = "/sse"

	// expectHeader asks the backend to check the gateway's header rewrite:
	// the upstream token must be present and the client's Authorization
	// gone, else it answers 500 (counted as an error by the load generator).
	expectHeader   = "X-Expect-Upstream"
	upstreamHeader = "X-GitHub-Token"
	upstreamPrefix = "gho_bench_"
)

// toolsCallBody is the fixed MCP tools/call request the load generator sends.
const toolsCallBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{}}}`

// toolsCallResult is the backend's fixed answer to it.
var toolsCallResult = []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"login\":\"octocat\"}"}],"isError":false}}`)

// sseEvent is the first (and only) event of the streaming endpoint.
var sseEvent = []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n")

// backendHandler is the MCP backend stand-in: POST /mcp answers the fixed
// tools/call result at once; GET /sse writes one SSE event, flushes, and
// ends the stream.
func backendHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathMCP, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !upstreamOK(r) {
			http.Error(w, "gateway header rewrite missing", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(toolsCallResult))}
		_, _ = w.Write(toolsCallResult)
	})
	mux.HandleFunc(pathSSE, func(w http.ResponseWriter, r *http.Request) {
		if !upstreamOK(r) {
			http.Error(w, "gateway header rewrite missing", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(sseEvent)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	})
	return mux
}

// upstreamOK reports whether a request that asks for the check carries the
// injected upstream token and no Authorization header.
func upstreamOK(r *http.Request) bool {
	if r.Header.Get(expectHeader) != "1" {
		return true
	}
	return strings.HasPrefix(r.Header.Get(upstreamHeader), upstreamPrefix) && r.Header.Get("Authorization") == ""
}
