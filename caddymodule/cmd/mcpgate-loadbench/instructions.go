package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The instructions mode (-instructions N) runs Caddy under valgrind's
// callgrind and counts the user-space instructions Caddy executes for N
// requests of each case. Unlike req/s and CPU time, an instruction count does
// not move with what else the host runs, so it shows what mcp_auth adds per
// request precisely enough to compare one change with the next. It leaves out
// the kernel's share (syscalls, loopback TCP), which is the same in every
// case, so a ratio of instruction counts overstates the relative cost in
// time. Callgrind slows Caddy down too much for timings: the mode measures
// nothing else.

// callgrindCommand wraps bin and args so that Caddy runs under callgrind,
// writing its dumps to dir. Go's asynchronous preemption signals trip an
// assertion in callgrind 3.19, so the caller must start the child with
// GODEBUG=asyncpreemptoff=1.
func callgrindCommand(dir, bin string, args []string) (string, []string, error) {
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		return "", nil, errors.New("-instructions needs valgrind (Debian package valgrind)")
	}
	if _, err := exec.LookPath("callgrind_control"); err != nil {
		return "", nil, errors.New("-instructions needs callgrind_control (Debian package valgrind)")
	}
	return vg, append([]string{"--tool=callgrind", "--callgrind-out-file=" + filepath.Join(dir, "callgrind.out"), bin}, args...), nil
}

// callgrind controls a Caddy process running under callgrind.
type callgrind struct {
	pid   int
	dir   string
	dumps int
}

// measure zeroes the counters, runs f, dumps, and returns the instructions
// executed in between.
func (c *callgrind) measure(f func()) (int64, error) {
	if err := c.control("-z"); err != nil {
		return 0, err
	}
	f()
	if err := c.control("-d"); err != nil {
		return 0, err
	}
	c.dumps++
	path := filepath.Join(c.dir, "callgrind.out."+strconv.Itoa(c.dumps))
	// The dump is written by the valgrind process after it has answered.
	var lastErr error
	for range 100 {
		f, err := os.Open(path)
		if err == nil {
			n, err := dumpTotal(f)
			f.Close()
			if err == nil {
				return n, nil
			}
			lastErr = err
		} else {
			lastErr = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("callgrind dump %s: %w", path, lastErr)
}

// keepLast copies the latest dump to dir/name.
func (c *callgrind) keepLast(dir, name string) error {
	b, err := os.ReadFile(filepath.Join(c.dir, "callgrind.out."+strconv.Itoa(c.dumps)))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), b, 0o644)
}

func (c *callgrind) control(flag string) error {
	out, err := exec.Command("callgrind_control", flag, strconv.Itoa(c.pid)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		return fmt.Errorf("callgrind_control %s: %v: %s", flag, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dumpTotal reads the "totals:" (or "summary:") line of a callgrind dump:
// the instructions executed (event Ir) since the counters were zeroed.
func dumpTotal(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range []string{"totals:", "summary:"} {
			if rest, ok := strings.CutPrefix(line, p); ok {
				f := strings.Fields(rest)
				if len(f) == 0 {
					return 0, fmt.Errorf("empty %s line", p)
				}
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no totals line (dump not complete yet?)")
}

// instrCase is one case the instructions mode counts.
type instrCase struct {
	name string
	t    target
	p    *picker
}

// mainInstrCases are the instructions mode's cases: n requests of (b),
// (b'), (c), (d) (one fresh token each) and (b) again.
func mainInstrCases(n int, proxied, gated target, cached string, fresh []string) []instrCase {
	return []instrCase{
		{"(b) Caddy reverse_proxy", proxied, countPicker(n, "")},
		{"(b') reverse_proxy, same bearer header, unchecked", proxied, countPicker(n, cached)},
		{"(c) mcp_auth, cached token + upstream", gated, countPicker(n, cached)},
		{"(d) mcp_auth, fresh RS256 token each request", gated, &picker{toks: fresh}},
		{"(b) again", proxied, countPicker(n, "")},
	}
}

// policyInstrCases are the cases of -instructions with -policy-only: n
// requests of (c), (p1), (p) and (c) again.
func policyInstrCases(n int, gated, policy1, policy target, cached string) []instrCase {
	return []instrCase{
		{"(c) mcp_auth, cached token + upstream", gated, countPicker(n, cached)},
		{"(p1) mcp_auth + 1-rule tool_policy", policy1, countPicker(n, cached)},
		{"(p) mcp_auth + 20-rule tool_policy", policy, countPicker(n, cached)},
		{"(c) again", gated, countPicker(n, cached)},
	}
}

// countInstructions runs each case from cfg.InstrConc connections,
// counting Caddy's instructions around each; with cfg.ProfileDir it keeps
// each dump.
func countInstructions(cfg config, cg *callgrind, cases []instrCase, logf func(string, ...any)) ([]instrResult, error) {
	var rs []instrResult
	for _, ic := range cases {
		logf("instructions: %s, %d requests", ic.name, len(ic.p.toks))
		var r result
		instr, err := cg.measure(func() { r = run(ic.name, ic.t, ic.p, cfg.InstrConc, time.Hour) })
		if err != nil {
			return nil, err
		}
		if r.Errors > 0 {
			return nil, fmt.Errorf("%s: %d errors (first: %s)", ic.name, r.Errors, r.firstError)
		}
		if cfg.ProfileDir != "" {
			// callgrind_annotate reads it: per-function instruction counts.
			name := "callgrind-" + strings.Trim(shortName(ic.name), "()") + "-" + strconv.Itoa(len(rs)) + ".out"
			if err := cg.keepLast(cfg.ProfileDir, name); err != nil {
				return nil, err
			}
		}
		rs = append(rs, instrResult{name: ic.name, reqs: r.Reqs, errors: r.Errors, instr: instr})
	}
	return rs, nil
}

// instrResult is one case of the instructions mode.
type instrResult struct {
	name   string
	reqs   int
	errors int
	instr  int64
}

func (r instrResult) perRequest() float64 {
	if r.reqs == 0 {
		return 0
	}
	return float64(r.instr) / float64(r.reqs)
}

// countPicker sends exactly n requests, with tok on each ("" for none), or
// the given tokens once each.
func countPicker(n int, tok string) *picker {
	toks := make([]string, n)
	for i := range toks {
		toks[i] = tok
	}
	return &picker{toks: toks}
}

// instructionsMarkdown writes the instructions mode's report.
func instructionsMarkdown(w io.Writer, cfg config, pl placement, rs []instrResult) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("## mcpgate load benchmark: instructions per request (callgrind)")
	p("")
	p("- command: `go run ./caddymodule/cmd/mcpgate-loadbench %s`", strings.Join(cfg.Args, " "))
	p("- placement: %s", pl.describe())
	p("- Caddy under valgrind --tool=callgrind (GODEBUG=asyncpreemptoff=1); %d requests per case from %d connections; counters zeroed before and dumped after each case", cfg.Instructions, cfg.InstrConc)
	p("- user-space instructions (event Ir) of the whole Caddy process, its garbage collector included; the kernel's work is not counted")
	p("")
	p("| case | requests | errors | instructions/request | vs (b) |")
	p("|---|---:|---:|---:|---:|")
	base := 0.0
	for i, r := range rs {
		if i == 0 {
			base = r.perRequest()
		}
		p("| %s | %d | %d | %.0f | %+.1f %% |", r.name, r.reqs, r.errors, r.perRequest(), 100*(r.perRequest()/base-1))
	}
	if cfg.PolicyOnly && len(rs) >= 4 {
		c, p1, pp, again := rs[0].perRequest(), rs[1].perRequest(), rs[2].perRequest(), rs[3].perRequest()
		p("")
		p("- **(p) adds %.0f instructions per request to (c)'s %.0f: p/c %.3f**; (p1), any policy, adds %.0f", pp-c, c, pp/c, p1-c)
		p("- (c) measured again at the end: %+.2f %% from the first, the mode's own repeatability", 100*(again/c-1))
		return
	}
	if len(rs) >= 5 {
		b, c, again := rs[0].perRequest(), rs[2].perRequest(), rs[4].perRequest()
		p("")
		p("- **(c) adds %.0f instructions per request to (b)'s %.0f: c/b %.3f**; (b') adds %.0f", c-b, b, c/b, rs[1].perRequest()-b)
		p("- (b) measured again at the end: %+.2f %% from the first, the mode's own repeatability", 100*(again/b-1))
	}
}
