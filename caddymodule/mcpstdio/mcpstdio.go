package mcpstdio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the Handler fields.
const (
	DefaultUserKey             = "{http.auth.user.iss}|{http.auth.user.id}"
	DefaultMaxProcesses        = 64
	DefaultMaxProcessesPerUser = 2
	DefaultMaxConcurrentCalls  = 256
	DefaultIdleTimeout         = 10 * time.Minute
	DefaultSessionTimeout      = time.Hour
	DefaultCallTimeout         = 60 * time.Second
	DefaultStartTimeout        = 30 * time.Second
	DefaultStopTimeout         = 5 * time.Second
	DefaultPingTimeout         = 5 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
	DefaultMaxMessageBytes     = 4 << 20
	DefaultStderrBytesPerMin   = 16 << 10
	DefaultRetryAfter          = 5 * time.Second
)

// Handler is the Caddy HTTP handler http.handlers.mcp_stdio: it terminates MCP streamable
// HTTP and serves it from a stdio MCP server process per user. See the package documentation
// for the model; docs/mcp_stdio.md for configuration examples.
//
// It must run after mcp_auth (the Caddyfile directive is ordered before reverse_proxy, so
// after mcp_auth, with no `order` line), which authenticates the user, sets
// {http.auth.user.id} and puts the user's upstream token in a request header. mcp_stdio is
// terminal: it never calls the next handler and never forwards a request header anywhere.
type Handler struct {
	// Command is the program to run, looked up in PATH as exec.LookPath does. Required.
	// Taken literally: placeholders are not expanded here.
	Command string `json:"command,omitempty"`

	// Args are the program's arguments, taken literally (placeholders are not expanded, so no
	// token can end up on a command line, visible in ps). Default: none.
	Args []string `json:"args,omitempty"`

	// Dir is the working directory of the process. Default: Caddy's working directory.
	Dir string `json:"dir,omitempty"`

	// Env sets environment variables of the process. Values may use placeholders, expanded
	// per request, e.g. {"GITHUB_PERSONAL_ACCESS_TOKEN": "{http.request.header.X-GitHub-Token}"}
	// for the token mcp_auth injected. A user's process is replaced when the expanded values
	// change (a refreshed token). Values that contain a placeholder are redacted from the
	// process's stderr log. Default: none.
	Env map[string]string `json:"env,omitempty"`

	// PassEnv names the variables of Caddy's own environment that the process inherits.
	// Default: DefaultPassEnv (PATH, HOME, USER, LANG, LC_ALL, TMPDIR, TZ). Nothing else of
	// Caddy's environment reaches the process.
	PassEnv []string `json:"pass_env,omitempty"`

	// UserKey is the placeholder that names the user: one process per distinct value. A
	// request for which it expands to "" (or to the separator alone) is refused with 403.
	// Default: "{http.auth.user.iss}|{http.auth.user.id}", the issuer with the subject, since
	// two of mcp_auth's issuers may give out the same sub; issuers come from the configuration,
	// so the separator cannot be forged.
	UserKey string `json:"user_key,omitempty"`

	// MaxProcesses limits processes in all (retired ones still draining included). When it is
	// reached, the least recently used idle process is ended to make room; if none is idle the
	// request gets 503 with Retry-After. Default: 64.
	MaxProcesses int `json:"max_processes,omitempty"`

	// MaxProcessesPerUser limits one user's processes: the current one plus those retired
	// after a token change that are still finishing calls. Beyond it: 503 with Retry-After.
	// Default: 2, or max_processes if that is 1.
	MaxProcessesPerUser int `json:"max_processes_per_user,omitempty"`

	// MaxConcurrentCalls limits the calls in flight to one process; beyond it: 503 with
	// Retry-After. Default: 256.
	MaxConcurrentCalls int `json:"max_concurrent_calls,omitempty"`

	// IdleTimeout ends a process that has had no call for this long. Default: 10m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// SessionTimeout forgets an Mcp-Session-Id unused for this long (the client then gets 404
	// and initializes again, as the transport specifies). Default: 1h.
	SessionTimeout caddy.Duration `json:"session_timeout,omitempty"`

	// CallTimeout is how long a request waits for the process's answer; a progress
	// notification starts it again. On expiry the caller gets a JSON-RPC error (-32001), the
	// process gets notifications/cancelled, and a ping checks that it is alive. Default: 60s.
	CallTimeout caddy.Duration `json:"call_timeout,omitempty"`

	// StartTimeout bounds starting a process and its initialize. Default: 30s.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`

	// StopTimeout is each grace period when a process ends: after its stdin is closed, and
	// again after SIGTERM, before SIGKILL. Default: 5s.
	StopTimeout caddy.Duration `json:"stop_timeout,omitempty"`

	// PingTimeout: a process that does not answer a ping this long after a call timed out is
	// killed and replaced. Default: 5s.
	PingTimeout caddy.Duration `json:"ping_timeout,omitempty"`

	// WriteTimeout: a process that does not read a message from its stdin within this time is
	// hung and is killed. Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// MaxMessageBytes limits a request body (413 beyond) and a line the process writes to
	// stdout (beyond it the process is ended). Default: 4 MiB.
	MaxMessageBytes int `json:"max_message_bytes,omitempty"`

	// StderrBytesPerMinute limits how much of one process's stderr is logged per minute; the
	// rest is counted in a warning. Default: 16 KiB.
	StderrBytesPerMinute int `json:"stderr_bytes_per_minute,omitempty"`

	// ClientCapabilities are the client capabilities the bridge declares to every process in
	// its initialize: any of "sampling", "elicitation", "roots". A server then may send such
	// requests; the bridge relays each to a client (on the event stream of that user's
	// newest call from a 2025-xx client, else on the user's GET streams) and the client's
	// answer back. Declare only what the clients of this site support: a client that lacks it
	// answers with an error. Default: none, so servers send no requests but ping, which the
	// bridge answers itself.
	ClientCapabilities []string `json:"client_capabilities,omitempty"`

	// RetryAfter is the Retry-After of a 503 when a limit is reached. Default: 5s.
	RetryAfter caddy.Duration `json:"retry_after,omitempty"`

	logger *zap.Logger
	now    func() time.Time
	// noUserKey is UserKey expanded without any user: a request whose key equals it is refused.
	noUserKey string
	ctx       context.Context
	base      []string
	pool      *pool
	sessions  *sessionStore
	hub       *hub
	stop      context.CancelFunc
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_stdio",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and prepares the (empty) process pool; no process starts here.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.logger == nil {
		h.logger = ctx.Logger()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.UserKey == "" {
		h.UserKey = DefaultUserKey
	}
	// What the key expands to when no user is known ("|" for the default): refused like "".
	h.noUserKey = caddy.NewReplacer().ReplaceAll(h.UserKey, "")
	if h.PassEnv == nil {
		h.PassEnv = DefaultPassEnv
	}
	setInt(&h.MaxProcesses, DefaultMaxProcesses)
	setInt(&h.MaxProcessesPerUser, min(DefaultMaxProcessesPerUser, h.MaxProcesses))
	setInt(&h.MaxConcurrentCalls, DefaultMaxConcurrentCalls)
	setInt(&h.MaxMessageBytes, DefaultMaxMessageBytes)
	setInt(&h.StderrBytesPerMinute, DefaultStderrBytesPerMin)
	setDur(&h.IdleTimeout, DefaultIdleTimeout)
	setDur(&h.SessionTimeout, DefaultSessionTimeout)
	setDur(&h.CallTimeout, DefaultCallTimeout)
	setDur(&h.StartTimeout, DefaultStartTimeout)
	setDur(&h.StopTimeout, DefaultStopTimeout)
	setDur(&h.PingTimeout, DefaultPingTimeout)
	setDur(&h.WriteTimeout, DefaultWriteTimeout)
	setDur(&h.RetryAfter, DefaultRetryAfter)

	if _, err := exec.LookPath(h.Command); h.Command != "" && err != nil {
		// Not an error: the command may appear later (a volume, an install step); the first
		// request will fail with 502 until it does.
		h.logger.Warn("mcp_stdio: command not found now", zap.String("command", h.Command), zap.Error(err))
	}
	h.base = baseEnv(h.PassEnv)
	info, _ := json.Marshal(map[string]string{"name": "mcpgate-mcp_stdio", "version": "1"})
	caps := map[string]json.RawMessage{}
	for _, c := range h.ClientCapabilities {
		caps[c] = json.RawMessage("{}")
	}
	capsJSON, _ := json.Marshal(caps)
	cfg := &procConfig{
		command: h.Command, args: h.Args, dir: h.Dir,
		startTimeout: time.Duration(h.StartTimeout), stopTimeout: time.Duration(h.StopTimeout),
		writeTimeout: time.Duration(h.WriteTimeout), maxCalls: h.MaxConcurrentCalls,
		maxLineBytes: h.MaxMessageBytes, stderrPerMin: h.StderrBytesPerMinute,
		clientInfo: info, clientCaps: capsJSON, protocolWanted: processProtocolVersion, logger: h.logger, now: h.now,
	}
	runCtx, stop := context.WithCancel(ctx)
	h.ctx, h.stop = runCtx, stop
	h.sessions = newSessionStore(time.Duration(h.SessionTimeout), h.now)
	h.hub = newHub()
	h.pool = newPool(runCtx, cfg, h.MaxProcesses, h.MaxProcessesPerUser, time.Duration(h.IdleTimeout),
		time.Duration(h.CallTimeout)+time.Duration(h.StopTimeout))
	h.pool.onNotify = func(p *proc, msg []byte) bool {
		if h.hub.publish(p.key, msg) == 0 {
			p.logger.Debug("message from the stdio MCP server with no open event stream; dropped")
			return false
		}
		return true
	}
	go h.reapLoop(runCtx)
	return nil
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setDur(v *caddy.Duration, def time.Duration) {
	if *v == 0 {
		*v = caddy.Duration(def)
	}
}

// reapLoop ends idle processes and forgets unused sessions until the handler is cleaned up.
func (h *Handler) reapLoop(ctx context.Context) {
	every := min(time.Duration(h.IdleTimeout)/2, 30*time.Second)
	every = max(every, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := h.now()
			h.pool.reap(now)
			h.sessions.reap(now)
		}
	}
}

// Validate checks the configuration without changing it.
func (h Handler) Validate() error {
	if h.Command == "" {
		return errors.New("mcp_stdio: command is required")
	}
	for _, s := range append([]string{h.Command, h.Dir}, h.Args...) {
		if strings.Contains(s, "{http.") {
			return fmt.Errorf("mcp_stdio: %q: placeholders are expanded only in env, so that no token "+
				"is ever on a command line (visible in ps); pass it as an env entry", s)
		}
	}
	for name := range h.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("mcp_stdio: env name %q is not a valid variable name", name)
		}
	}
	for _, name := range h.PassEnv {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("mcp_stdio: pass_env name %q is not a valid variable name", name)
		}
	}
	if h.MaxProcesses < 1 || h.MaxProcessesPerUser < 1 || h.MaxConcurrentCalls < 1 {
		return errors.New("mcp_stdio: max_processes, max_processes_per_user and max_concurrent_calls must be at least 1")
	}
	if h.MaxProcessesPerUser > h.MaxProcesses {
		return errors.New("mcp_stdio: max_processes_per_user cannot exceed max_processes")
	}
	for _, c := range h.ClientCapabilities {
		if c != "sampling" && c != "elicitation" && c != "roots" {
			return fmt.Errorf("mcp_stdio: client_capabilities: %q is not sampling, elicitation or roots", c)
		}
	}
	if !strings.Contains(h.UserKey, "{") {
		return fmt.Errorf("mcp_stdio: user_key %q has no placeholder, so every user would share one process", h.UserKey)
	}
	return nil
}

// Cleanup ends every process gracefully (stdin closed, SIGTERM, SIGKILL) and returns once
// all have exited: on a config reload the new handler starts fresh processes, and on stop none
// outlives Caddy. Safe after a partial Provision.
func (h *Handler) Cleanup() error {
	if h.stop != nil {
		h.stop()
	}
	if h.pool != nil {
		h.pool.close()
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
