package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultDrainTimeout is the default ProxyOptions.DrainTimeout.
const DefaultDrainTimeout = 10 * time.Second

// DefaultMaxMessageBytes is the default ProxyOptions.MaxMessageBytes.
const DefaultMaxMessageBytes = 32 << 20

// ProxyErrorCode is the JSON-RPC error code of the answers the proxy makes up itself when the
// remote server could not answer a request (unreachable, a failed login, an HTTP error without
// a JSON-RPC body). It lies in JSON-RPC 2.0's implementation-defined server error range.
const ProxyErrorCode = -32000

// sessionEndTimeout bounds the DELETE that ends the remote session when the proxy stops.
const sessionEndTimeout = 5 * time.Second

// ProxyOptions tune Proxy. The zero value uses the defaults.
type ProxyOptions struct {
	// DrainTimeout bounds how long requests still in flight may take to finish once the host
	// closes stdin or ctx is canceled; then they are abandoned. Default 10s.
	DrainTimeout time.Duration
	// MaxMessageBytes bounds one JSON-RPC message, from the host or from the server. Default
	// 32 MiB.
	MaxMessageBytes int
}

// Proxy relays MCP between a host that speaks the stdio transport (newline-delimited JSON-RPC
// on in and out, as Claude Desktop runs local servers) and the remote server at MCPURL over
// streamable HTTP, with the same discovery, registration, browser login, token cache and
// refresh as the other methods. It is a byte-level relay, not an MCP implementation:
//
//   - each message from in is POSTed on its own (concurrently: the host may send several
//     requests before the answers come), with the Mcp-Session-Id and MCP-Protocol-Version of
//     the initialize exchange and the Mcp-Method and Mcp-Name headers mirrored from the body;
//   - a JSON answer, or each event of an SSE answer, is written to out as one line; writes
//     are serialized; a notification's 202 writes nothing;
//   - after notifications/initialized, the server's GET stream (if it offers one; 405: none)
//     is relayed too, for server-initiated messages;
//   - a request the server could not answer gets a JSON-RPC error with its id (ProxyErrorCode);
//   - an expired session (404) is replaced by replaying the host's initialize, transparently;
//   - a token refresh or a new login happens inside the HTTP transport: the stdio session
//     goes on.
//
// Human-facing output (the login URL, progress) goes to Config.Stderr, never to out. Proxy
// returns when in ends or ctx is canceled, after the requests in flight finished (bounded by
// DrainTimeout) and the remote session was ended; the error is nil unless reading in failed.
// When ctx ends first, the goroutine reading in stays blocked until in returns (os.Stdin: at
// exit).
func (c *Client) Proxy(ctx context.Context, in io.Reader, out io.Writer, opts ProxyOptions) error {
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	// Requests outlive ctx by up to DrainTimeout so that a SIGTERM lets them finish.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	listenCtx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	p := &proxy{
		c: c, hc: c.bearerHTTPClient(true), out: out, max: opts.MaxMessageBytes,
		reqCtx: reqCtx, listenCtx: listenCtx, gate: closedGate(),
	}

	lines := make(chan []byte)
	done := make(chan struct{})
	defer close(done)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), opts.MaxMessageBytes)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			select {
			case lines <- bytes.Clone(line):
			case <-done:
				return
			}
		}
		readErr <- sc.Err()
	}()

	// Log in before the host's initialize arrives, as mcp-remote does: a host that waits for
	// the initialize answer then waits for the login, not for a login plus a timeout.
	if err := c.ensureToken(ctx); err != nil && ctx.Err() == nil {
		p.logf("%v (the next request tries again)", oneLine(err))
	}

	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case line, ok := <-lines:
			if !ok {
				err = <-readErr
				break loop
			}
			p.dispatch(line)
		}
	}
	stopListening()
	finished := make(chan struct{})
	go func() { p.wg.Wait(); close(finished) }()
	t := time.NewTimer(opts.DrainTimeout)
	select {
	case <-finished:
		t.Stop()
	case <-t.C:
		p.logf("abandoning the requests still in flight after %s", fmtDuration(opts.DrainTimeout))
		cancelReqs()
		<-finished
	}
	p.endSession()
	p.lwg.Wait() // no write to out after Proxy returns
	if err != nil {
		return fmt.Errorf("reading the host's messages: %w", err)
	}
	return nil
}

// proxy is the state of one Proxy run.
type proxy struct {
	c         *Client
	hc        *http.Client
	out       io.Writer
	max       int
	reqCtx    context.Context // requests: outlives the caller's ctx by the drain time
	listenCtx context.Context // the GET streams: end with the caller's ctx
	wg        sync.WaitGroup  // requests in flight
	lwg       sync.WaitGroup  // GET streams

	outMu  sync.Mutex
	outErr error

	// gate is closed when the initialize exchange (and notifications/initialized) the
	// messages read so far depend on has finished; only the reading loop replaces it.
	gate chan struct{}

	mu            sync.Mutex // guards the fields below
	sessionID     string
	version       string
	initMsg       []byte // the host's initialize, replayed when the session expires
	initializedOK bool   // the host sent notifications/initialized
	stopListen    context.CancelFunc

	reinitMu sync.Mutex // serializes session replacements
}

func closedGate() chan struct{} {
	g := make(chan struct{})
	close(g)
	return g
}

// message is what the proxy reads of a JSON-RPC message.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (m *message) hasID() bool { return len(m.ID) > 0 && string(m.ID) != "null" }

// isRequest is true for a message that expects an answer.
func (m *message) isRequest() bool { return m.hasID() && m.Method != "" }

// dispatch forwards one message from the host in a goroutine of its own. The initialize
// request and notifications/initialized hold back the messages read after them until they
// are answered, so every later message carries the session.
func (p *proxy) dispatch(line []byte) {
	var m message
	if line[0] != '[' { // a batch (2025-03-26) is relayed as it is, without id tracking
		if err := json.Unmarshal(line, &m); err != nil {
			p.write(errorResponse(nil, -32700, "parse error: the message is not JSON"))
			return
		}
	}
	prev := p.gate
	if m.Method == "initialize" || m.Method == "notifications/initialized" {
		next := make(chan struct{})
		p.gate = next
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer close(next)
			if p.wait(prev) {
				p.forward(line, &m)
			}
		}()
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if p.wait(prev) {
			p.forward(line, &m)
		}
	}()
}

// wait waits for gate; false when the requests were abandoned meanwhile.
func (p *proxy) wait(gate chan struct{}) bool {
	select {
	case <-gate:
		return true
	case <-p.reqCtx.Done():
		return false
	}
}

// forward POSTs one message and relays the answer; a request that gets none is answered with
// an error.
func (p *proxy) forward(line []byte, m *message) {
	if m.Method == "initialize" {
		p.mu.Lock()
		p.initMsg = line
		p.sessionID, p.version = "", ""
		p.mu.Unlock()
	}
	answered, err := p.exchange(line, m, true)
	if err != nil {
		if m.isRequest() {
			p.write(errorResponse(m.ID, ProxyErrorCode, "mcpgate-client: "+oneLine(err)))
		} else {
			p.logf("forwarding %s: %v", describe(m), oneLine(err))
		}
		return
	}
	if m.isRequest() && !answered {
		p.write(errorResponse(m.ID, ProxyErrorCode, "mcpgate-client: the MCP server sent no answer"))
	}
	if m.Method == "notifications/initialized" {
		p.mu.Lock()
		p.initializedOK = true
		p.mu.Unlock()
		p.startListening()
	}
}

// errSessionExpired is the server's 404 for a session it no longer knows.
var errSessionExpired = errors.New("the MCP session expired")

// exchange POSTs line and relays what comes back; it reports whether the answer to m's id
// was among it. When retry is set, an expired session is replaced and the POST sent again.
func (p *proxy) exchange(line []byte, m *message, retry bool) (bool, error) {
	p.mu.Lock()
	sid := p.sessionID
	p.mu.Unlock()
	resp, err := p.post(line, m)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && sid != "" && m.Method != "initialize" {
		drain(resp)
		if !retry {
			return false, errSessionExpired
		}
		if err := p.reinitialize(sid); err != nil {
			return false, fmt.Errorf("%w and a new one could not be opened: %v", errSessionExpired, oneLine(err))
		}
		return p.exchange(line, m, false)
	}
	if m.Method == "initialize" && resp.StatusCode/100 == 2 {
		p.mu.Lock()
		p.sessionID = resp.Header.Get("Mcp-Session-Id")
		p.mu.Unlock()
	}
	if resp.StatusCode == http.StatusAccepted {
		drain(resp)
		return false, nil
	}
	return p.relay(resp, m, p.write)
}

// relay writes the JSON-RPC messages of resp (a JSON body, or the events of an SSE stream)
// with emit and reports whether the answer to m was among them.
func (p *proxy) relay(resp *http.Response, m *message, emit func([]byte)) (bool, error) {
	answered := false
	deliver := func(msg []byte) {
		var got message
		if json.Unmarshal(msg, &got) == nil && got.Method == "" && m.hasID() && sameID(got.ID, m.ID) {
			answered = true
			if m.Method == "initialize" {
				p.noteVersion(got.Result)
			}
		}
		emit(msg)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "text/event-stream" && resp.StatusCode/100 == 2 {
		err := p.readEvents(resp.Body, deliver, nil)
		if err != nil && !answered {
			return false, fmt.Errorf("the MCP server's event stream broke off: %w", err)
		}
		return answered, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(p.max)+1))
	if err != nil {
		return false, fmt.Errorf("reading the MCP server's answer: %w", err)
	}
	if len(body) > p.max {
		return false, fmt.Errorf("the MCP server's answer is larger than %d bytes", p.max)
	}
	var buf bytes.Buffer
	if isJSONRPC(body) || (len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '[') {
		if json.Compact(&buf, body) == nil {
			deliver(buf.Bytes())
			return answered, nil
		}
	}
	if resp.StatusCode/100 == 2 && len(bytes.TrimSpace(body)) == 0 {
		return false, nil
	}
	s := resp.StatusCode
	return false, fmt.Errorf("the MCP server at %s answered %d %s", p.c.cfg.MCPURL, s, http.StatusText(s))
}

// readEvents reads an SSE stream and passes the data of each event (compacted to one line) to
// deliver. lastID, if not nil, tracks the last event id for a reconnection.
func (p *proxy) readEvents(r io.Reader, deliver func([]byte), lastID *string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), p.max)
	var data bytes.Buffer
	hasData := false
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if hasData {
				var buf bytes.Buffer
				if err := json.Compact(&buf, data.Bytes()); err == nil {
					deliver(buf.Bytes())
				} else {
					p.logf("skipping an event of the MCP server that is not JSON")
				}
			}
			data.Reset()
			hasData = false
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			if lastID != nil {
				*lastID = string(value)
			}
		}
	}
	return sc.Err()
}

// post sends one message with the session's headers.
func (p *proxy) post(body []byte, m *message) (*http.Response, error) {
	req, err := http.NewRequestWithContext(p.reqCtx, http.MethodPost, p.c.cfg.MCPURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	p.sessionHeaders(req, m.Method != "initialize")
	if m.Method != "" {
		req.Header.Set("Mcp-Method", m.Method)
		if name := mcpName(m); name != "" {
			req.Header.Set("Mcp-Name", name)
		}
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, clean(unwrapURLError(err))
	}
	return resp, nil
}

// mcpName is the Mcp-Name header of the 2026-07-28 transport (SEP-2243): params.name of
// tools/call and prompts/get, params.uri of resources/read, subscribe and unsubscribe. A value
// that is not printable ASCII is left out rather than mangled.
func mcpName(m *message) string {
	var params struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	if len(m.Params) == 0 || json.Unmarshal(m.Params, &params) != nil {
		return ""
	}
	var v string
	switch m.Method {
	case "tools/call", "prompts/get":
		v = params.Name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		v = params.URI
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return ""
		}
	}
	return v
}

// maxListenFailures is how many GET stream attempts in a row may fail before the proxy gives
// the stream up (the POST answers still work without it).
const maxListenFailures = 5

// write sends one message to the host as one line. Writes are serialized; after a failed
// write (the host is gone) nothing more is written.
func (p *proxy) write(msg []byte) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if p.outErr != nil {
		return
	}
	line := make([]byte, 0, len(msg)+1)
	line = append(append(line, msg...), '\n')
	if _, err := p.out.Write(line); err != nil {
		p.outErr = err
		p.logf("cannot write to the host: %v", err)
	}
}

func (p *proxy) logf(format string, args ...any) {
	fmt.Fprintf(p.c.cfg.Stderr, "mcpgate-client proxy: "+format+"\n", args...)
}

// errorResponse builds a JSON-RPC error answer; a nil id becomes null.
func errorResponse(id json.RawMessage, code int, msg string) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	return b
}

// sameID compares two JSON-RPC ids as compact JSON.
func sameID(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

func describe(m *message) string {
	if m.Method != "" {
		return m.Method
	}
	if m.hasID() {
		return "the answer to " + string(m.ID)
	}
	return "a message"
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
