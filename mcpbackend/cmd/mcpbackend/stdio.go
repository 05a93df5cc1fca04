package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/mcpgate/mcpbackend"
)

// This file serves MCP over stdio and makes its end graceful. mcp-go's StdioServer.Listen cancels
// every request in flight as soon as its input ends (EOF) or its context is cancelled, so a client
// that writes its last call and closes stdin, or a SIGTERM, cut GitHub calls short and logged
// them as network errors. stdioGate sits between Listen and the real stdin/stdout instead: it
// counts the requests Listen has read and the responses it has written, and when stdin ends or
// the program is told to stop it withholds EOF from Listen until every request has its response
// or shutdownGrace has passed. Listen's own context is never cancelled; EOF is how it stops.

// runStdio serves the MCP server on stdin/stdout until stdin ends or ctx is done, then lets the
// calls in flight finish for up to grace before returning.
func runStdio(ctx context.Context, opts mcpbackend.Options, stdin io.Reader, stdout io.Writer, logger *slog.Logger, grace time.Duration) error {
	if opts.EnvToken == "" {
		logger.Warn(envToken + " is not set: every tool call will answer that no GitHub account is linked")
	}
	s, err := mcpbackend.NewServer(opts)
	if err != nil {
		return err
	}
	stdio := server.NewStdioServer(s)
	stdio.SetErrorLogger(slog.NewLogLogger(logger.Handler(), slog.LevelError))
	gate := newStdioGate(ctx, stdin, stdout, grace, logger)
	logger.Info("serving MCP over stdio", "github_api", opts.GitHubAPIURL)
	err = stdio.Listen(context.WithoutCancel(ctx), gate, gate.out)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// stdioGate is the stdin (Read) and, through out, the stdout of a StdioServer. See the file
// comment.
type stdioGate struct {
	ctx    context.Context // done: stop reading, as at EOF
	lines  <-chan []byte   // lines of the real stdin; closed at its end
	endErr error           // why the real stdin ended; set before lines is closed
	cur    []byte          // the rest of the line being handed to the server
	grace  time.Duration
	logger *slog.Logger
	out    *gateWriter

	mu      sync.Mutex
	pending map[string]int // JSON-RPC ids of requests read and not yet answered
	changed chan struct{}  // closed and replaced whenever pending shrinks
	ended   bool
}

func newStdioGate(ctx context.Context, stdin io.Reader, stdout io.Writer, grace time.Duration, logger *slog.Logger) *stdioGate {
	lines := make(chan []byte)
	g := &stdioGate{ctx: ctx, lines: lines, grace: grace, logger: logger,
		pending: map[string]int{}, changed: make(chan struct{})}
	g.out = &gateWriter{w: stdout, gate: g}
	// The pump may stay blocked on a stdin that never ends after ctx is done; the process exits
	// anyway. It stops at the next line once nobody reads (ctx done or EOF returned).
	go func() {
		r := bufio.NewReader(stdin)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				g.endErr = err
				close(lines)
				return
			}
		}
	}()
	return g
}

// Read hands the server the real stdin line by line. At the end of stdin, or once ctx is done, it
// waits for the requests in flight (drain) and then reports the end: io.EOF, or the read error.
func (g *stdioGate) Read(p []byte) (int, error) {
	if len(g.cur) == 0 {
		if g.ended {
			return 0, io.EOF
		}
		select {
		case line, ok := <-g.lines:
			if !ok {
				err := g.endErr
				if errors.Is(err, io.EOF) {
					err = io.EOF
				}
				g.end("stdin closed")
				return 0, err
			}
			g.track(line)
			g.cur = line
		case <-g.ctx.Done():
			g.end("shutting down")
			return 0, io.EOF
		}
	}
	n := copy(p, g.cur)
	g.cur = g.cur[n:]
	return n, nil
}

// end waits until every request read has been answered, for at most grace.
func (g *stdioGate) end(why string) {
	g.ended = true
	g.mu.Lock()
	n := len(g.pending)
	g.mu.Unlock()
	if n == 0 {
		return
	}
	g.logger.Info(why+": letting the calls in flight finish", "in_flight", n, "grace", g.grace)
	timer := time.NewTimer(g.grace)
	defer timer.Stop()
	for {
		g.mu.Lock()
		n, changed := len(g.pending), g.changed
		g.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			g.logger.Warn(why+": calls still in flight after the grace period are cancelled", "in_flight", n, "grace", g.grace)
			return
		}
	}
}

// message is the part of a JSON-RPC message the gate looks at.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		RequestID json.RawMessage `json:"requestId"`
	} `json:"params"`
}

// track records a request (a message with a method and an id) read from stdin, and forgets one
// the client cancels (the server need not answer it). subscriptions/listen is not waited for: it
// lasts until the session ends. A last line without a newline is not a message: mcp-go drops it.
func (g *stdioGate) track(line []byte) {
	if !bytes.HasSuffix(line, []byte("\n")) {
		return
	}
	var m message
	if json.Unmarshal(line, &m) != nil {
		return // not an object (a batch, garbage): mcp-go answers it before reading on
	}
	switch {
	case m.Method == "notifications/cancelled":
		g.answered(m.Params.RequestID)
	case m.Method != "" && m.Method != "subscriptions/listen":
		if id, ok := idKey(m.ID); ok {
			g.mu.Lock()
			g.pending[id]++
			g.mu.Unlock()
		}
	}
}

// answered forgets one request with this id.
func (g *stdioGate) answered(rawID json.RawMessage) {
	id, ok := idKey(rawID)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending[id] == 0 {
		return
	}
	if g.pending[id]--; g.pending[id] == 0 {
		delete(g.pending, id)
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// idKey is a JSON-RPC id in one spelling (1, 1.0 and 1e0 are the same id), or false for none.
func idKey(raw json.RawMessage) (string, bool) {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v == nil {
		return "", false
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// gateWriter is the server's stdout: it writes through and marks each response written as answered.
type gateWriter struct {
	w    io.Writer
	gate *stdioGate
	mu   sync.Mutex
	buf  []byte // an incomplete line (mcp-go writes one whole line per Write)
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.w.Write(p)
	w.buf = append(w.buf, p[:n]...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		var m message
		if json.Unmarshal(w.buf[:i], &m) == nil && m.Method == "" {
			w.gate.answered(m.ID)
		}
		w.buf = w.buf[i+1:]
	}
	return n, err
}
