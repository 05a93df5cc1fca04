package mcpstdio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// The fake stdio MCP server: the test binary itself, re-executed with MCPSTDIO_FAKE_SERVER=1
// (TestMain runs fakeServer instead of the tests). Its tools let a test make it answer out of
// order, report its environment and pid, send progress and notifications, block until
// cancelled, hang, crash, write stderr, and ping its client.

const fakeServerEnv = "MCPSTDIO_FAKE_SERVER"

type fakeServer struct {
	outMu     sync.Mutex
	mu        sync.Mutex
	inits     int
	cancelled []string
	blocked   map[string]chan struct{}
	pings     map[string]chan json.RawMessage
	nextPing  int
	caps      string // the client capabilities of the initialize
}

func (s *fakeServer) write(v any) {
	b, _ := json.Marshal(v)
	s.outMu.Lock()
	defer s.outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func (s *fakeServer) result(id json.RawMessage, v any) {
	s.write(map[string]any{"jsonrpc": "2.0", "id": id, "result": v})
}

func text(t string) map[string]any {
	return map[string]any{"content": []any{map[string]any{"type": "text", "text": t}}}
}

// runFakeServer serves stdin until EOF.
func runFakeServer() {
	s := &fakeServer{blocked: map[string]chan struct{}{}, pings: map[string]chan json.RawMessage{}}
	fmt.Fprintln(os.Stderr, "fake server starting")
	switch os.Getenv("MCPSTDIO_FAKE_MODE") {
	case "exit":
		os.Exit(2) // dies before answering initialize
	case "badinit":
		// Answers initialize with an error.
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var m message
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Method == "initialize" {
				s.write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32603,
					"message": "bad token " + os.Getenv("TOKEN")}})
			}
		}
		os.Exit(0)
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			fmt.Fprintln(os.Stderr, "bad line")
			continue
		}
		if s.handle(&m) {
			select {} // "hang": stop reading and answering
		}
	}
	os.Exit(0)
}

// handle serves one message; it returns true when the server must hang.
func (s *fakeServer) handle(m *message) bool {
	switch m.kind() {
	case kindResponse:
		s.mu.Lock()
		ch := s.pings[idKey(m.ID)]
		s.mu.Unlock()
		if ch != nil {
			ch <- append(m.Result, m.Error...)
		}
		return false
	case kindNotification:
		if m.Method == "notifications/cancelled" {
			p := decodeParams(m.Params)
			id := idKey(p["requestId"])
			s.mu.Lock()
			s.cancelled = append(s.cancelled, id)
			if ch := s.blocked[id]; ch != nil {
				close(ch)
				delete(s.blocked, id)
			}
			s.mu.Unlock()
		}
		return false
	}
	p := decodeParams(m.Params)
	switch m.Method {
	case "initialize":
		s.mu.Lock()
		s.inits++
		n := s.inits
		s.mu.Unlock()
		s.caps = string(p["capabilities"])
		if n > 1 {
			s.write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32600, "message": "initialized twice"}})
			return false
		}
		s.result(m.ID, map[string]any{
			"protocolVersion": p.str("protocolVersion"),
			"capabilities":    map[string]any{"tools": map[string]any{}, "logging": map[string]any{}},
			"serverInfo":      map[string]any{"name": "fake", "version": "1.0"},
			"instructions":    "a fake server for tests",
		})
	case "ping":
		s.result(m.ID, map[string]any{})
	case "tools/call":
		return s.tool(m, p)
	default:
		s.write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32601, "message": "no " + m.Method}})
	}
	return false
}

func (s *fakeServer) tool(m *message, p params) bool {
	args := decodeParams(p["arguments"])
	switch p.str("name") {
	case "echo":
		// Answer from a goroutine after a delay that depends on the text, so answers overtake
		// each other.
		t := args.str("text")
		go func() {
			time.Sleep(time.Duration(len(t)%7) * time.Millisecond)
			s.result(m.ID, text(t))
		}()
	case "env":
		s.result(m.ID, text(os.Getenv(args.str("name"))))
	case "pid":
		s.result(m.ID, text(fmt.Sprint(os.Getpid())))
	case "inits":
		s.mu.Lock()
		n := s.inits
		s.mu.Unlock()
		s.result(m.ID, text(fmt.Sprint(n)))
	case "caps":
		s.mu.Lock()
		c := s.caps
		s.mu.Unlock()
		s.result(m.ID, text(c))
	case "cancelled":
		s.mu.Lock()
		list := strings.Join(s.cancelled, ",")
		s.mu.Unlock()
		s.result(m.ID, text(list))
	case "progress":
		tok := p.meta()["progressToken"]
		go func() {
			for i := 1; i <= 3; i++ {
				if tok != nil {
					s.write(map[string]any{"jsonrpc": "2.0", "method": "notifications/progress",
						"params": map[string]any{"progressToken": tok, "progress": i, "total": 3}})
				}
				time.Sleep(2 * time.Millisecond)
			}
			s.result(m.ID, text("done "+args.str("text")))
		}()
	case "notify":
		s.write(map[string]any{"jsonrpc": "2.0", "method": "notifications/message",
			"params": map[string]any{"level": "info", "data": args.str("text")}})
		s.result(m.ID, text("notified"))
	case "block":
		ch := make(chan struct{})
		s.mu.Lock()
		s.blocked[idKey(m.ID)] = ch
		s.mu.Unlock()
		go func() {
			select {
			case <-ch:
				// cancelled: no answer, as MCP says
			case <-time.After(time.Minute):
				s.result(m.ID, text("unblocked"))
			}
		}()
	case "stderr":
		fmt.Fprintln(os.Stderr, args.str("text"))
		s.result(m.ID, text("written"))
	case "pingclient", "ask":
		// Send the client a request (ping, or args.method) and answer with its response.
		method := "ping"
		if p.str("name") == "ask" {
			method = args.str("method")
		}
		s.mu.Lock()
		s.nextPing++
		id := fmt.Sprintf(`"srv-%d"`, s.nextPing)
		ch := make(chan json.RawMessage, 1)
		s.pings[id] = ch
		s.mu.Unlock()
		s.write(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "method": method,
			"params": map[string]any{"messages": []any{}, "maxTokens": 10}})
		go func() {
			select {
			case res := <-ch:
				if method == "ping" {
					s.result(m.ID, text("pong received"))
					return
				}
				s.result(m.ID, text(string(res)))
			case <-time.After(10 * time.Second):
				s.result(m.ID, text("no answer"))
			}
		}()
	case "hang":
		return true
	case "crash":
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		os.Exit(3)
	default:
		s.result(m.ID, map[string]any{"isError": true, "content": []any{map[string]any{"type": "text", "text": "unknown tool"}}})
	}
	return false
}
