package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The -stdio-only phase (issue 16): the same MCP request served by
// mcpbackend through mcp_auth + mcp_stdio (a process per user) and through
// mcp_auth + reverse_proxy to mcpbackend over HTTP.

// toolsListBody is the request of the stdio phase: tools/list calls no
// GitHub API, so both paths do the same work in mcpbackend and nothing
// waits on a fake GitHub.
const toolsListBody = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

// mcpbackendPkg is what -stdio-only builds when -mcpbackend is not given.
const mcpbackendPkg = "github.com/mcpgate/mcpgate/mcpbackend/cmd/mcpbackend"

// mcpbackendBinary returns the mcpbackend binary to run: cfg.MCPBackend, or
// one built with go build into dir (from the module the current directory
// is in, as `go run ./caddymodule/cmd/mcpgate-loadbench` is).
func mcpbackendBinary(ctx context.Context, cfg config, dir string) (string, error) {
	if cfg.MCPBackend != "" {
		return filepath.Abs(cfg.MCPBackend)
	}
	out := filepath.Join(dir, "mcpbackend")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, mcpbackendPkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (run from the mcpgate module, or pass -mcpbackend): %v: %s", mcpbackendPkg, err, bytes.TrimSpace(b))
	}
	return out, nil
}

// stdioReport is the -stdio-only phase's part of the report.
type stdioReport struct {
	// warmHTTP and warmStdio are the interleaved rounds with one user
	// whose process runs; sh is stdio/HTTP throughput from them.
	warmHTTP, warmStdio result
	sh                  estimate
	shCPU               estimate // h/s Caddy CPU per request
	noiseP99            time.Duration
	// coldHTTP and coldStdio are the first calls of new users (one each,
	// sequential, interleaved between the two paths).
	coldHTTP, coldStdio result
	// procs is what /proc says of Caddy's children after the cold starts.
	procs       childMemory
	caddyBefore memory // Caddy's RSS before the cold starts
	caddyAfter  memory
	backendRSS  memory // the HTTP mcpbackend, idle after the phase
}

// stdioPhase measures issue 16: warm throughput and latency of stdio
// against HTTP, the cold start of new users on both, and the memory of the
// idle stdio processes.
func (s *session) stdioPhase() error {
	cfg := s.cfg
	warm, err := s.m.token("RS256", "stdio-warm", -2)
	if err != nil {
		return err
	}
	h := target{addr: s.st.mcpHTTPAddr, path: pathMCP, body: toolsListBody}
	st := target{addr: s.st.stdioAddr, path: pathMCP, body: toolsListBody}
	for _, t := range []target{h, st} {
		if err := checkToolsList(s.ctx, t, warm); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, s.dir)
		}
		if r := run("warm-up", t, fixed(warm), cfg.Conc, 500*time.Millisecond); r.Errors > 0 {
			return fmt.Errorf("warm-up of %s: %d errors, first: %s (logs in %s)", t.addr, r.Errors, r.firstError, s.dir)
		}
	}
	cases := []benchCase{
		{"(h) mcp_auth + reverse_proxy to mcpbackend (HTTP)", h, func() *picker { return fixed(warm) }},
		{"(s) mcp_auth + mcp_stdio, process running", st, func() *picker { return fixed(warm) }},
	}
	rep := &stdioReport{}
	s.rep.stdio = rep
	s.logf("stdio: %d rounds of (h), (s) at concurrency %d", cfg.Rounds, cfg.Conc)
	rounds, lats := interleave(2, cfg.Rounds, func(i int) (result, []time.Duration) {
		cs := cases[i]
		return s.withCPU(func() (result, []time.Duration) { return runRaw(cs.name, cs.t, cs.p(), cfg.Conc, s.roundDuration()) })
	}, s.logf)
	rep.warmHTTP, rep.warmStdio = combine(rounds[0], lats[0]), combine(rounds[1], lats[1])
	rep.sh, rep.shCPU, rep.noiseP99 = pairedEstimate(rounds[0], rounds[1]), pairedCPUEstimate(rounds[0], rounds[1]), halvesP99(rounds[0], lats[0])

	n := cfg.StdioUsers
	s.logf("stdio: minting %d tokens, then the first call of %d new users on each path, one at a time", 2*n, n)
	toks, err := s.m.mint("RS256", 2*n, func(i int) string { return []string{"cold-http-", "cold-stdio-"}[i%2] + strconv.Itoa(i/2) })
	if err != nil {
		return err
	}
	rep.caddyBefore, _ = readMemory(s.st.caddyPID())
	var next [2]int
	coldT := []target{h, st}
	names := []string{"(h) first call of a new user", "(s) first call of a new user: process start"}
	rs, ls := interleave(2, n, func(i int) (result, []time.Duration) {
		tok := toks[2*next[i]+i]
		next[i]++
		// One request: the picker ends after its one token, fullPass
		// sends it although the deadline has passed.
		return runRaw(names[i], coldT[i], &picker{toks: []string{tok}, fullPass: true}, 1, 0)
	}, nil)
	rep.coldHTTP, rep.coldStdio = combine(rs[0], ls[0]), combine(rs[1], ls[1])
	if err := checkToolsList(s.ctx, st, toks[2*n-1]); err != nil {
		return fmt.Errorf("after the cold starts: %w (logs in %s)", err, s.dir)
	}
	rep.caddyAfter, _ = readMemory(s.st.caddyPID())
	if rep.procs, err = childrenMemory("/proc", s.st.caddyPID()); err != nil {
		return err
	}
	rep.backendRSS, _ = readMemory(s.st.mcpBackend.cmd.Process.Pid)
	return nil
}

// checkToolsList sends one tools/list to t with net/http and checks that
// the answer is a JSON-RPC result with tools: the load generator counts a
// 200 as a success, and a bridge error (a process that failed) is a 200
// too.
func checkToolsList(ctx context.Context, t target, tok string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.addr+t.path, strings.NewReader(toolsListBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"tools":[`)) || bytes.Contains(b, []byte(`"error":`)) {
		return fmt.Errorf("tools/list via %s: status %d, not a tools result (%d bytes)", t.addr, resp.StatusCode, len(b))
	}
	return nil
}

// childMemory is the resident memory of a process's children.
type childMemory struct {
	N   int   // children
	RSS int64 // their VmRSS, summed, in bytes
	// PSS is their proportional set size (smaps_rollup), summed: RSS with
	// each page shared between processes (the binary's text, mostly)
	// divided among them, so that the sum is what they hold together. 0
	// when not readable.
	PSS int64
}

// perChild is x divided by the number of children (0 without any).
func (cm childMemory) perChild(x int64) int64 {
	if cm.N == 0 {
		return 0
	}
	return x / int64(cm.N)
}

// childrenMemory sums VmRSS over the processes under root (a /proc) whose
// parent is ppid: mcp_stdio starts each server as Caddy's child, and
// mcpbackend starts none of its own.
func childrenMemory(root string, ppid int) (childMemory, error) {
	pids, err := childPIDs(root, ppid)
	if err != nil {
		return childMemory{}, err
	}
	var cm childMemory
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "status"))
		if err != nil {
			continue // it ended since
		}
		m, err := parseStatus(string(b))
		if err != nil {
			return cm, fmt.Errorf("process %d: %w", pid, err)
		}
		cm.N++
		cm.RSS += m.RSS
		if b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "smaps_rollup")); err == nil {
			if pss, err := kBField(string(b), "Pss"); err == nil {
				cm.PSS += pss
			}
		}
	}
	return cm, nil
}

// kBField reads a "Name:   123 kB" line of a /proc file, in bytes.
func kBField(s, name string) (int64, error) {
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", name, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("no %s line", name)
}

// childPIDs lists the processes under root whose parent is ppid.
func childPIDs(root string, ppid int) ([]int, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue // it ended since
		}
		if pp, err := parseStatPPID(string(b)); err == nil && pp == ppid {
			out = append(out, pid)
		}
	}
	return out, nil
}

// parseStatPPID reads the parent pid from a /proc/<pid>/stat line: the
// fourth field, counted after the command name's closing parenthesis
// (the name itself may hold spaces and parentheses).
func parseStatPPID(s string) (int, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in stat line")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("short stat line")
	}
	return strconv.Atoi(f[1])
}
