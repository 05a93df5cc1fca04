package mcpstdio

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// This file is one stdio MCP server process: how it starts (with the bridge's own initialize),
// how messages reach it (one writer, a write deadline) and come back (one reader that routes
// responses by the bridge's id and progress notifications by the bridge's token), and how it
// ends (stdin closed, then SIGTERM, then SIGKILL, always to the whole process group).

// Errors a call can end with; the handler turns them into JSON-RPC errors or HTTP statuses.
var (
	// errExited: the process ended (crashed, was killed, or was stopped) before answering.
	errExited = errors.New("the MCP server process exited")
	// errTooManyCalls: the process already has max_concurrent_calls calls in flight.
	errTooManyCalls = errors.New("too many calls in flight for this user's MCP server process")
)

// procConfig is what every process of one handler shares.
type procConfig struct {
	command        string
	args           []string
	dir            string
	startTimeout   time.Duration
	stopTimeout    time.Duration
	writeTimeout   time.Duration
	maxCalls       int
	maxLineBytes   int
	stderrPerMin   int
	clientInfo     json.RawMessage
	clientCaps     json.RawMessage
	protocolWanted string
	logger         *zap.Logger
	now            func() time.Time
}

// procSpec is what makes one user's process: its user key, its full environment, the values
// to redact from its stderr, and a hash of the expanded environment that tells a changed token.
type procSpec struct {
	key     string
	env     []string
	secrets []string
	hash    [32]byte
}

// call is one request in flight to the process. The reader never blocks on it: final has
// room for the one answer, and progress notifications that find notes full are dropped.
type call struct {
	pid         string          // the bridge's id, as the process sees it
	clientID    json.RawMessage // the client's id, restored in the answer
	session     string          // the client's session ("" for stateless requests)
	clientToken json.RawMessage // the client's progress token, nil if none
	tokenKey    string          // the bridge's progress token, as a map key
	internal    bool            // the bridge's own request (initialize, ping)
	relay       bool            // its client takes server-to-client requests on this call's stream
	n           int64           // the bridge's id as a number: later calls have larger ones
	final       chan []byte
	notes       chan []byte
}

// proc is one running stdio MCP server.
type proc struct {
	cfg    *procConfig
	key    string
	hash   [32]byte
	serial uint64
	logger *zap.Logger

	cmd         *exec.Cmd
	stdin       *os.File
	writeMu     sync.Mutex
	stdinClosed bool // guarded by writeMu
	nextID      atomic.Int64

	ready    chan struct{} // closed when start has finished, successfully or not
	startErr error         // set before ready is closed
	initRes  json.RawMessage
	initVer  string

	mu       sync.Mutex
	pending  map[string]*call
	progress map[string]*call
	dead     error

	exited  chan struct{} // closed once the process has exited and its calls have failed
	endOnce sync.Once
	pinging atomic.Bool

	// serverReqs maps the bridge's id of a relayed server-to-client request to the
	// process's own id and the call whose stream carried it (guarded by mu).
	serverReqs map[string]serverReq
	nextSrv    int64

	// onNotify receives notifications that belong to no call (logging, list changes) and
	// server-to-client requests no call can carry; it reports whether a stream took msg.
	onNotify func(p *proc, msg []byte) bool
	// onExit runs once, after the process has exited and before exited is closed.
	onExit func(p *proc)

	// Bookkeeping owned by the pool (guarded by pool.mu).
	inflight int
	lastUsed time.Time
	retired  bool
}

var procSerial atomic.Uint64

func newProc(cfg *procConfig, spec procSpec) *proc {
	return &proc{
		cfg: cfg, key: spec.key, hash: spec.hash, serial: procSerial.Add(1),
		logger:     cfg.logger.With(zap.String("user_id", spec.key)),
		ready:      make(chan struct{}),
		exited:     make(chan struct{}),
		pending:    map[string]*call{},
		progress:   map[string]*call{},
		serverReqs: map[string]serverReq{},
	}
}

// start runs the process and performs its initialize. It closes p.ready in every case. The
// environment (with the user's token) goes to the process only; p keeps the redaction list.
func (p *proc) start(ctx context.Context, spec procSpec) {
	defer close(p.ready)
	if err := p.spawn(spec); err != nil {
		p.startErr = err
		if p.onExit != nil {
			p.onExit(p)
		}
		close(p.exited)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.startTimeout)
	defer cancel()
	params := map[string]any{
		"protocolVersion": p.cfg.protocolWanted,
		"capabilities":    p.cfg.clientCaps,
		"clientInfo":      p.cfg.clientInfo,
	}
	raw, _ := json.Marshal(params)
	res, err := p.roundTrip(ctx, "initialize", raw)
	if err == nil {
		var r struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if jerr := json.Unmarshal(res, &r); jerr != nil || r.ProtocolVersion == "" {
			err = errors.New("the MCP server's initialize result has no protocolVersion")
		} else {
			p.initRes, p.initVer = res, r.ProtocolVersion
			err = p.send(encode(&message{Method: "notifications/initialized"}))
		}
	}
	if err != nil {
		// The server's own error text may quote its environment: redact as stderr is.
		msg := newStderrLogger(p.logger, spec.secrets, 0, p.cfg.now).redact(err.Error(), false)
		p.startErr = errors.New("initializing the MCP server: " + msg)
		p.kill()
		return
	}
	p.logger.Debug("stdio MCP server started", zap.Uint64("process", p.serial),
		zap.Int("pid", p.cmd.Process.Pid), zap.String("protocol_version", p.initVer))
}

// spawn starts the command with its own pipes (so that stdin has a write deadline and Wait
// does not wait on copying goroutines) in a process group of its own.
func (p *proc) spawn(spec procSpec) error {
	cmd := exec.Command(p.cfg.command, p.cfg.args...)
	cmd.Dir = p.cfg.dir
	cmd.Env = spec.env
	setProcessGroup(cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		// exec's error names the command, never the environment.
		return fmt.Errorf("starting the MCP server: %w", err)
	}
	p.cmd, p.stdin = cmd, inW
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		p.readStdout(outR)
	}()
	go newStderrLogger(p.logger, spec.secrets, p.cfg.stderrPerMin, p.cfg.now).run(errR)
	go p.wait(readerDone, outR)
	return nil
}

// wait reaps the process, kills what is left of its group (a wrapper such as npx leaves its
// child behind), lets the reader drain the last answers, then fails every call still waiting.
func (p *proc) wait(readerDone chan struct{}, outR *os.File) {
	err := p.cmd.Wait()
	killGroup(p.cmd, true)
	select {
	case <-readerDone:
	case <-time.After(time.Second):
		// A descendant outside the group still holds stdout open.
		outR.Close()
		<-readerDone
	}
	p.writeMu.Lock()
	p.stdinClosed = true
	p.stdin.Close()
	p.writeMu.Unlock()
	reason := errExited
	p.mu.Lock()
	if p.dead == nil {
		p.dead = reason
	}
	pending := p.pending
	p.pending, p.progress = map[string]*call{}, map[string]*call{}
	p.mu.Unlock()
	for _, c := range pending {
		deliver(c.final, errorResponse(c.clientID, codeServerUnavailable, "the MCP server process exited before answering"))
	}
	p.logger.Debug("stdio MCP server exited", zap.Uint64("process", p.serial), zap.NamedError("wait", err))
	if p.onExit != nil {
		p.onExit(p)
	}
	close(p.exited)
}

// deliver puts b into ch unless ch is full (a call gets one answer; extra notes are dropped).
func deliver(ch chan []byte, b []byte) bool {
	select {
	case ch <- b:
		return true
	default:
		return false
	}
}

// readStdout reads newline-delimited JSON-RPC messages until EOF. A line longer than
// max_message_bytes is a protocol fault that ends the process.
func (p *proc) readStdout(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), p.cfg.maxLineBytes)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		p.dispatch(line)
	}
	if err := sc.Err(); err != nil {
		p.logger.Error("stdio MCP server wrote an unreadable message; ending it",
			zap.Uint64("process", p.serial), zap.Error(err))
		p.kill()
	}
}

// dispatch routes one message from the process.
func (p *proc) dispatch(line []byte) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		p.logger.Debug("stdio MCP server wrote a line that is not JSON-RPC; ignored", zap.Uint64("process", p.serial))
		return
	}
	switch m.kind() {
	case kindResponse:
		p.mu.Lock()
		c := p.pending[idKey(m.ID)]
		if c != nil {
			p.forgetLocked(c)
		}
		p.mu.Unlock()
		if c == nil {
			return // cancelled or timed out meanwhile
		}
		m.ID = c.clientID
		deliver(c.final, encode(&m))
	case kindRequest:
		if m.Method == "ping" {
			// The bridge is the process's client: it answers pings itself.
			reply := resultResponse(m.ID, struct{}{})
			go func() { _ = p.send(reply) }()
			return
		}
		orig := m.ID
		if msg := p.relayRequest(&m); msg != "" {
			reply := errorResponse(orig, codeInternalError, msg)
			go func() { _ = p.send(reply) }()
		}
	case kindNotification:
		if m.Method == "notifications/progress" {
			pr := decodeParams(m.Params)
			p.mu.Lock()
			c := p.progress[idKey(pr["progressToken"])]
			p.mu.Unlock()
			if c != nil {
				pr["progressToken"] = c.clientToken
				m.Params = pr.encode()
				deliver(c.notes, encode(&m))
			}
			return
		}
		if m.Method == "notifications/cancelled" {
			return // about a request the bridge sent; nothing waits for it
		}
		if p.onNotify != nil {
			_ = p.onNotify(p, encode(&m))
		}
	}
}

// maxServerRequests bounds the relayed server-to-client requests awaiting an answer.
const maxServerRequests = 64

// send writes one message. A process that does not read its stdin within write_timeout is
// hung: it is killed, and its calls fail.
func (p *proc) send(b []byte) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if p.stdinClosed {
		return errExited
	}
	// The deadline ends the write where pipes take deadlines; the timer kills the process
	// group everywhere, which ends the write too (its reader is gone).
	_ = p.stdin.SetWriteDeadline(time.Now().Add(p.cfg.writeTimeout))
	hung := time.AfterFunc(p.cfg.writeTimeout, p.kill)
	defer hung.Stop()
	buf := make([]byte, 0, len(b)+1)
	buf = append(append(buf, b...), '\n')
	if _, err := p.stdin.Write(buf); err != nil {
		p.kill()
		return errExited
	}
	return nil
}

// checkAlive pings the process after a call timed out; a process that does not answer within
// timeout is killed, so the next request starts a new one. One check at a time.
func (p *proc) checkAlive(ctx context.Context, timeout time.Duration) {
	if !p.pinging.CompareAndSwap(false, true) {
		return
	}
	defer p.pinging.Store(false)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := p.roundTrip(ctx, "ping", nil); err != nil && ctx.Err() != nil {
		p.logger.Error("stdio MCP server does not answer ping; killing it", zap.Uint64("process", p.serial))
		p.kill()
	}
}

// kill ends the process group at once (SIGKILL).
func (p *proc) kill() {
	select {
	case <-p.exited:
		// Reaped: its pid, and so its group id, may belong to another process by now.
		return
	default:
	}
	if p.cmd != nil && p.cmd.Process != nil {
		killGroup(p.cmd, true)
	}
}

// end stops the process gracefully, as the MCP stdio transport says: close its stdin, then
// SIGTERM after stop_timeout, then SIGKILL after another stop_timeout. It returns once the
// process has exited. Safe to call more than once and concurrently.
func (p *proc) end() {
	<-p.ready
	p.endOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.writeMu.Lock()
		p.stdinClosed = true
		p.stdin.Close()
		p.writeMu.Unlock()
		select {
		case <-p.exited:
			return
		case <-time.After(p.cfg.stopTimeout):
		}
		killGroup(p.cmd, false)
		select {
		case <-p.exited:
			return
		case <-time.After(p.cfg.stopTimeout):
		}
		killGroup(p.cmd, true)
	})
	<-p.exited
}

// isDead reports whether the process has exited or is exiting.
func (p *proc) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead != nil
}
