package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// child is a server process started by the benchmark: Caddy or the backend.
// Each runs in its own process so the load generator never shares a Go
// runtime (scheduler, GC) with the server it measures.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string // path of its stderr
}

// startChild runs bin with args, stderr to a file in dir. stdout, if
// wantLine, must print one line (the backend's address), which is returned.
func startChild(name, dir, bin string, args []string, wantLine bool) (*child, string, error) {
	logPath := dir + "/" + name + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	var sc *bufio.Scanner
	if wantLine {
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, "", err
		}
		sc = bufio.NewScanner(out)
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath}
	if !wantLine {
		return c, "", nil
	}
	line := make(chan string, 1)
	go func() {
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			c.stop()
			return nil, "", fmt.Errorf("%s exited without printing its address (see %s)", name, logPath)
		}
		return c, l, nil
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("%s printed no address within 30s (see %s)", name, logPath)
	}
}

// stop interrupts the process and waits up to 10s before killing it.
func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// freePort reserves a loopback port by listening and closing.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers want, or the timeout passes.
func waitHTTP(ctx context.Context, url string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v", url, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stack is the servers under test: the backend and Caddy, each a child
// process, and the loopback addresses they listen on.
type stack struct {
	backend, caddy *child
	// mcpBackend is mcpbackend over HTTP (-stdio-only), else nil.
	mcpBackend *child
	// backendAddr is the backend; proxyAddr Caddy's reverse_proxy alone;
	// gwAddr mcp_auth in front of the same reverse_proxy; adminAddr
	// Caddy's admin API.
	backendAddr, proxyAddr, gwAddr, adminAddr string
	// policyAddr is the gateway with a 20-rule tool_policy, policy1Addr
	// with its last rule alone (-policy-only);
	// mcpHTTPAddr mcp_auth + reverse_proxy to mcpBackend at mcpBackendAddr
	// and stdioAddr mcp_auth + mcp_stdio (-stdio-only). Empty otherwise.
	policyAddr, policy1Addr, mcpHTTPAddr, stdioAddr, mcpBackendAddr string
	mcpBackendBin                                                   string // what mcp_stdio runs: mcpbackend itself, not taskset
	resource                                                        string // the gateway's resource URL
	caddyBin                                                        string // what runs as Caddy, as the report says it
}

// startStack starts the backend on pl.rest and Caddy on pl.caddy (this
// program re-executed, or cfg.Caddy; under callgrind with -instructions),
// Caddy configured for issuer, and waits until every server answers. Logs
// and Caddy's config go to dir. On an error it stops what it started.
func startStack(ctx context.Context, cfg config, dir, self string, pl placement, issuer string) (_ *stack, err error) {
	st := &stack{}
	defer func() {
		if err != nil {
			st.stop()
		}
	}()
	bin, args, err := pinnedCommand(pl.rest, self, []string{"backend"})
	if err != nil {
		return nil, err
	}
	if st.backend, st.backendAddr, err = startChild("backend", dir, bin, args, true); err != nil {
		return nil, err
	}

	var ports [3]string
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	st.proxyAddr, st.gwAddr, st.adminAddr = ports[0], ports[1], ports[2]
	st.resource = "http://" + st.gwAddr + "/mcp"
	params := caddyParams{Backend: st.backendAddr, ProxyAddr: st.proxyAddr, GatewayAddr: st.gwAddr, AdminAddr: st.adminAddr,
		Issuer: issuer, Resource: st.resource, VerifyCache: cfg.VerifyCache, UpstreamLRU: cfg.UpstreamLRU}
	if cfg.PolicyOnly {
		if st.policyAddr, err = freePort(); err != nil {
			return nil, err
		}
		if st.policy1Addr, err = freePort(); err != nil {
			return nil, err
		}
		params.PolicyAddr, params.Policy1Addr = st.policyAddr, st.policy1Addr
	}
	if cfg.StdioOnly {
		if err := st.startMCPBackend(ctx, cfg, dir, pl); err != nil {
			return nil, err
		}
		params.MCPBackend, params.MCPHTTPAddr, params.StdioAddr = st.mcpBackendAddr, st.mcpHTTPAddr, st.stdioAddr
		params.StdioCommand, params.StdioProcesses = st.mcpBackendBin, cfg.StdioUsers+8
	}
	cfgJSON, err := caddyConfig(params)
	if err != nil {
		return nil, err
	}
	cfgPath := dir + "/caddy.json"
	if err := os.WriteFile(cfgPath, cfgJSON, 0o600); err != nil {
		return nil, err
	}
	bin, args = self, []string{"caddy", "run", "--config", cfgPath}
	st.caddyBin = "this program re-executed as Caddy (standard modules + caddymodule)"
	if cfg.Caddy != "" {
		bin, args, st.caddyBin = cfg.Caddy, args[1:], cfg.Caddy
	}
	ready := 30 * time.Second
	prevGODEBUG, hadGODEBUG := os.LookupEnv("GODEBUG")
	if cfg.Instructions > 0 {
		if bin, args, err = callgrindCommand(dir, bin, args); err != nil {
			return nil, err
		}
		st.caddyBin += ", under valgrind --tool=callgrind"
		ready = 5 * time.Minute
		// Only Caddy's runtime reads it (at start), and only this mode.
		os.Setenv("GODEBUG", strings.TrimPrefix(prevGODEBUG+",asyncpreemptoff=1", ","))
	}
	if bin, args, err = pinnedCommand(pl.caddy, bin, args); err != nil {
		return nil, err
	}
	if cfg.ProfileDir != "" && cfg.Instructions == 0 {
		os.Setenv(contentionEnv, "1")
		defer os.Unsetenv(contentionEnv)
	}
	st.caddy, _, err = startChild("caddy", dir, bin, args, false)
	if hadGODEBUG {
		os.Setenv("GODEBUG", prevGODEBUG)
	} else {
		os.Unsetenv("GODEBUG")
	}
	if err != nil {
		return nil, err
	}
	for _, u := range []struct {
		url  string
		want int
	}{
		{"http://" + st.backendAddr + pathSSE, 200},
		{"http://" + st.proxyAddr + pathSSE, 200},
		{"http://" + st.gwAddr + "/.well-known/oauth-protected-resource/mcp", 200},
		{"http://" + st.gwAddr + pathMCP, 401},
	} {
		if err := waitHTTP(ctx, u.url, u.want, ready); err != nil {
			return nil, fmt.Errorf("%w (Caddy log: %s)", err, st.caddy.log)
		}
	}
	return st, nil
}

// startMCPBackend builds (or takes) mcpbackend and starts it over HTTP,
// pinned like Caddy: with -pin, the stdio processes, Caddy's children,
// inherit Caddy's CPUs, so the HTTP server gets the same ones and both
// paths put the MCP server on the same core as Caddy, apart from the load
// generator. It also picks the addresses of the two Caddy servers.
func (st *stack) startMCPBackend(ctx context.Context, cfg config, dir string, pl placement) error {
	bin, err := mcpbackendBinary(ctx, cfg, dir)
	if err != nil {
		return err
	}
	var ports [3]string
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	st.mcpBackendAddr, st.mcpHTTPAddr, st.stdioAddr = ports[0], ports[1], ports[2]
	pbin, args, err := pinnedCommand(pl.caddy, bin, []string{"-transport", "http", "-listen", st.mcpBackendAddr, "-log-level", "warn"})
	if err != nil {
		return err
	}
	if st.mcpBackend, _, err = startChild("mcpbackend", dir, pbin, args, false); err != nil {
		return err
	}
	st.mcpBackendBin = bin
	return waitHTTP(ctx, "http://"+st.mcpBackendAddr+"/healthz", 200, 30*time.Second)
}

// caddyPID is the Caddy process's id: taskset execs what it runs, so the
// child is Caddy itself (under callgrind, valgrind running Caddy).
func (st *stack) caddyPID() int { return st.caddy.cmd.Process.Pid }

// stop stops Caddy (which ends its stdio processes), then the backends.
func (st *stack) stop() {
	st.caddy.stop()
	st.backend.stop()
	st.mcpBackend.stop()
}
