package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report collects everything the markdown output shows.
type report struct {
	cfg       config
	caddyBin  string
	placement placement
	// roundRatios are c/b throughput per round of the main comparison;
	// cb, b2b and cb2 are c/b, b'/b and c/b' estimated from those rounds.
	roundRatios  []float64
	cb, b2b, cb2 estimate
	// noiseP99 is the p99 of (b)'s odd rounds minus that of its even
	// rounds: the same configuration measured twice, the noise floor of
	// any p99 difference.
	noiseP99   time.Duration
	open       []openLoop // one per -load
	main       []result   // a, b, b', c, d
	freshNote  string
	conc       [][3]result // per concurrency: b, b', c
	users      []userStep
	sse        [2]result // direct, gateway
	memIdle    memory
	heapIdle   int64
	memMain    memory
	mintRS     time.Duration
	mintES     time.Duration
	exchanges0 int64
	// policy and stdio are the -policy-only and -stdio-only phases; nil
	// when they did not run.
	policy *policyReport
	stdio  *stdioReport
}

// openLoop is the open-loop phase at one request rate.
type openLoop struct {
	load, rate float64
	cases      [3]result // a, b, c
	noiseP99   time.Duration
}

// userStep is the users scan at one number of distinct users.
type userStep struct {
	users     int
	r         result
	mem       memory
	heap      int64 // Go heap in use, from Caddy's admin /metrics
	exchanges int64
}

// markdown writes the report.
func (rep *report) markdown(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	cfg := rep.cfg
	p("## mcpgate load benchmark")
	p("")
	p("- command: `go run ./caddymodule/cmd/mcpgate-loadbench %s`", strings.Join(cfg.Args, " "))
	p("- machine: %d CPUs (%s), %s", runtime.NumCPU(), cpuModel(), runtime.Version())
	p("- placement: %s", rep.placement.describe())
	p("- Caddy: %s; backend: separate Go process; issuer + token exchange: in the load generator", rep.caddyBin)
	p("- mcp_auth: verify_cache_size %d, upstream_cache_size %d, token_exchange source", cfg.VerifyCache, cfg.UpstreamLRU)
	if rep.stdio == nil {
		p("- request: POST /mcp, %d-byte JSON-RPC tools/call; backend answers a fixed %d-byte result at once", len(toolsCallBody), len(toolsCallResult))
	}
	if rep.policy != nil || rep.stdio != nil {
		rep.policyMarkdown(p)
		rep.stdioMarkdown(p)
		rep.errorsMarkdown(p, nil)
		return
	}
	if !cfg.ScanOnly {
		p("")
		p("### Gateway cost at concurrency %d ((a) alone for %s, then %d interleaved rounds of b/b'/c; %s each case)", cfg.Conc, cfg.directDuration(), cfg.Rounds, cfg.Duration)
		p("")
		p("| case | req/s | p50 ms | p99 ms | Caddy CPU µs/req | requests | errors |")
		p("|---|---:|---:|---:|---:|---:|---:|")
		for _, r := range rep.main {
			p("| %s | %.0f | %s | %s | %s | %d | %d |", r.Name, r.RPS(), ms(r.P50), ms(r.P99), usNum(r.CPUPerReq()), r.Reqs, r.Errors)
		}
		if len(rep.main) == 5 {
			b, b2, c, d := rep.main[1], rep.main[2], rep.main[3], rep.main[4]
			p("")
			p("- c/b throughput, pooled over all rounds: %.3f; p99 added by mcp_auth: **%s ms** (goal <= 0.2 ms); noise floor: (b)'s odd rounds against its even rounds differ by %s ms in p99", ratio(c.RPS(), b.RPS()), msSigned(c.P99-b.P99), msSigned(rep.noiseP99))
			if len(rep.roundRatios) > 0 {
				rr := slices.Sorted(slices.Values(rep.roundRatios))
				p("- c/b throughput per round: median %.3f, range %.3f–%.3f over %d rounds", median(rr), rr[0], rr[len(rr)-1], len(rr))
				p("- **c/b throughput from the paired rounds: %s**: the goal (>= 0.95) %s", rep.cb, rep.cb.atLeast(0.95))
				p("- split of that cost, paired the same way: b'/b (carrying the bearer header) %s; c/b' %s (what mcp_auth does, less what (b') pays to forward the header that (c) removes, so it understates mcp_auth's own cost)", rep.b2b, rep.cb2)
			}
			p("- **d/b throughput: %.3f**; p99 added: %s ms", ratio(d.RPS(), b.RPS()), msSigned(d.P99-b.P99))
			p("- Caddy CPU per request: c adds %s µs to b's %s µs (b/c CPU ratio %.3f: the throughput ratio Caddy would reach on cores of its own); d adds %s µs",
				usNum(c.CPUPerReq()-b.CPUPerReq()), usNum(b.CPUPerReq()), ratio(float64(b.CPUPerReq()), float64(c.CPUPerReq())), usNum(d.CPUPerReq()-b.CPUPerReq()))
			p("- b'/b throughput: %.3f, Caddy CPU %s µs/req: the cost of the bearer header alone (read, parsed, copied, forwarded); c/b' throughput: %.3f",
				ratio(b2.RPS(), b.RPS()), usSigned(b2.CPUPerReq()-b.CPUPerReq()), ratio(c.RPS(), b2.RPS()))
			p("- b/a throughput (Caddy's own proxy cost): %.3f", ratio(b.RPS(), rep.main[0].RPS()))
			if rep.freshNote != "" {
				p("- %s", rep.freshNote)
			}
			p("- token exchanges during the main comparison: %d (all served from the upstream cache)", rep.exchanges0)
		}
		if len(rep.open) > 0 {
			p("")
			p("### Latency at a fixed rate (open loop, %d connections; at each rate (a) alone for %s, then %d interleaved rounds of b/c; %s each case)", cfg.Conc, cfg.directDuration(), cfg.Rounds, cfg.Duration)
			p("")
			p("Latency counts from when each request was due, so waiting behind a slow one is included. (a) shows what the load generator and the backend add on their own. The noise floor is (b)'s odd rounds against its even rounds.")
			p("")
			p("| load (of (b)'s req/s) | req/s | (a) p99 ms | (b) p50 ms | (b) p99 ms | (c) p50 ms | (c) p99 ms | **p99 added** (goal <= 0.2 ms) | p99 noise floor | (b) CPU µs/req | (c) CPU µs/req | errors |")
			p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
			for _, ol := range rep.open {
				a, b, c := ol.cases[0], ol.cases[1], ol.cases[2]
				p("| %.2f | %.0f | %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %d |", ol.load, ol.rate, ms(a.P99), ms(b.P50), ms(b.P99), ms(c.P50), ms(c.P99),
					msSigned(c.P99-b.P99), msSigned(ol.noiseP99), usNum(b.CPUPerReq()), usNum(c.CPUPerReq()), a.Errors+b.Errors+c.Errors)
			}
			p("")
		}
		p("- Caddy RSS: idle %s, after (a)-(d) %s", mib(rep.memIdle.RSS), mib(rep.memMain.RSS))
		if rep.mintES > 0 {
			p("- minting (before the phases, not measured): RS256 %s/token, ES256 %s/token", us(rep.mintRS), us(rep.mintES))
		} else {
			p("- minting (before the phases, not measured): RS256 %s/token", us(rep.mintRS))
		}
	}
	if !cfg.MainOnly {
		p("")
		p("### Concurrency (%s each of (b), (b') and (c) per step, %d interleaved rounds)", cfg.ScanDuration, scanRounds(cfg))
		p("")
		p("(b') is the baseline that receives the same requests as (c), bearer header included; c/b, against a (b) whose requests carry no token, is kept for comparison with earlier runs.")
		p("")
		p("The CPU columns divide Caddy's CPU time per request, b' by c and b by c: the throughput ratios Caddy would reach on a CPU of its own, which other jobs on the host move less than req/s.")
		p("")
		p("| concurrency | (b) req/s | (b) CPU µs/req | (b') req/s | (b') CPU µs/req | (c) req/s | (c) p50 ms | (c) p99 ms | (c) CPU µs/req | **c/b'** | c/b | CPU b'/c | CPU b/c | c-b' p99 ms |")
		p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, bc := range rep.conc {
			b, b2, c := bc[0], bc[1], bc[2]
			p("| %d | %.0f | %s | %.0f | %s | %.0f | %s | %s | %s | **%.3f** | %.3f | %.3f | %.3f | %s |", b.Conc, b.RPS(), usNum(b.CPUPerReq()),
				b2.RPS(), usNum(b2.CPUPerReq()), c.RPS(), ms(c.P50), ms(c.P99), usNum(c.CPUPerReq()),
				ratio(c.RPS(), b2.RPS()), ratio(c.RPS(), b.RPS()),
				ratio(float64(b2.CPUPerReq()), float64(c.CPUPerReq())), ratio(float64(b.CPUPerReq()), float64(c.CPUPerReq())),
				msSigned(c.P99-b2.P99))
		}
		if !cfg.ScanOnly {
			p("")
			p("### Distinct users (concurrency %d, ES256 token per user, >= %s and at least one request per user)", cfg.Conc, cfg.ScanDuration)
			p("")
			p("| users | req/s | p50 ms | p99 ms | requests | token exchanges | Caddy live heap (after GC) | Caddy RSS | Caddy peak RSS |")
			p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
			for _, u := range rep.users {
				p("| %d | %.0f | %s | %s | %d | %d | %s | %s | %s |", u.users, u.r.RPS(), ms(u.r.P50), ms(u.r.P99), u.r.Reqs, u.exchanges, mib(u.heap), mib(u.mem.RSS), mib(u.mem.HWM))
			}
			p("")
			p("Idle Caddy before the run: live heap %s, RSS %s. Users already seen in a smaller step are cached, so each step adds only the new ones' token exchanges.", mib(rep.heapIdle), mib(rep.memIdle.RSS))
			p("")
			p("### Streaming: first SSE event (%d sequential requests per path)", cfg.SSE)
			p("")
			p("| path | p50 ms | p99 ms |")
			p("|---|---:|---:|")
			p("| backend direct | %s | %s |", ms(rep.sse[0].P50), ms(rep.sse[0].P99))
			p("| through mcp_auth + reverse_proxy | %s | %s |", ms(rep.sse[1].P50), ms(rep.sse[1].P99))
			p("")
			p("- added: p50 %s ms, p99 %s ms (goal: within 5 ms)", msSigned(rep.sse[1].P50-rep.sse[0].P50), msSigned(rep.sse[1].P99-rep.sse[0].P99))
		}
	}
	rep.errorsMarkdown(p, append(append([]result{}, rep.main...), rep.sse[0], rep.sse[1]))
}

// errorsMarkdown ends the report with every phase's errors, from rs and
// the scans.
func (rep *report) errorsMarkdown(p func(string, ...any), rs []result) {
	if st := rep.stdio; st != nil {
		rs = append(rs, st.warmHTTP, st.warmStdio, st.coldHTTP, st.coldStdio)
	}
	if pr := rep.policy; pr != nil {
		rs = append(rs, pr.c, pr.p1, pr.p)
	}
	var errs []string
	for _, r := range rs {
		if r.Errors > 0 {
			errs = append(errs, fmt.Sprintf("%s: %d errors (first: %s)", r.Name, r.Errors, r.firstError))
		}
	}
	for _, bc := range rep.conc {
		for _, r := range bc {
			if r.Errors > 0 {
				errs = append(errs, fmt.Sprintf("%s at %d: %d errors (first: %s)", r.Name, r.Conc, r.Errors, r.firstError))
			}
		}
	}
	for _, u := range rep.users {
		if u.r.Errors > 0 {
			errs = append(errs, fmt.Sprintf("users %d: %d errors (first: %s)", u.users, u.r.Errors, u.r.firstError))
		}
	}
	if len(errs) > 0 {
		p("")
		p("**Errors:** %s", strings.Join(errs, "; "))
	}
}

// policyMarkdown writes the -policy-only section.
func (rep *report) policyMarkdown(p func(string, ...any)) {
	pr := rep.policy
	if pr == nil {
		return
	}
	cfg := rep.cfg
	p("")
	p("### Tool policy of %d rules over the cached path (%d interleaved rounds of c/p at concurrency %d; %s each case)", policyRules, cfg.Rounds, cfg.Conc, cfg.Duration)
	p("")
	p("(p) is (c) with a `tool_policy` of %d rules (globs and exact names, default allow); the tool called, get_me, is matched by the last rule. (p1) has that last rule alone: any policy makes mcp_auth read and parse the body, which (p1) pays and (c) does not.", policyRules)
	p("")
	p("| case | req/s | p50 ms | p99 ms | Caddy CPU µs/req | requests | errors |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range []result{pr.c, pr.p1, pr.p} {
		p("| %s | %.0f | %s | %s | %s | %d | %d |", r.Name, r.RPS(), ms(r.P50), ms(r.P99), usNum(r.CPUPerReq()), r.Reqs, r.Errors)
	}
	p("")
	p("- **p/c throughput from the paired rounds: %s**: the goal (>= 0.97, a cost of at most 3 %%) %s", pr.pc, pr.pc.atLeast(0.97))
	p("- **c/p Caddy CPU per request from the same rounds (the p/c throughput Caddy would reach on a CPU of its own): %s**: the goal %s", pr.pcCPU, pr.pcCPU.atLeast(0.97))
	p("- split: p1/c (reading the body, one rule) throughput %s, CPU %s; p/p1 (19 more rules) throughput %s, CPU %s", pr.p1c, pr.p1cCPU, pr.pp1, pr.pp1CPU)
	p("- Caddy CPU per request: the policy adds %s µs to (c)'s %s µs; p99 added: %s ms (noise floor, (c)'s odd rounds against its even rounds: %s ms)",
		usSigned(pr.p.CPUPerReq()-pr.c.CPUPerReq()), usNum(pr.c.CPUPerReq()), msSigned(pr.p.P99-pr.c.P99), msSigned(pr.noiseP99))
}

// stdioMarkdown writes the -stdio-only section.
func (rep *report) stdioMarkdown(p func(string, ...any)) {
	st := rep.stdio
	if st == nil {
		return
	}
	cfg := rep.cfg
	p("")
	p("### mcp_stdio against HTTP: warm (%d interleaved rounds of h/s at concurrency %d; %s each case)", cfg.Rounds, cfg.Conc, cfg.Duration)
	p("")
	p("The request is a %d-byte tools/list to mcpbackend (no GitHub call), through mcp_auth (cached token and upstream token) and either reverse_proxy to mcpbackend over HTTP (h) or mcp_stdio to the user's running `mcpbackend -transport stdio` (s). With -pin, both MCP servers share Caddy's CPU. Caddy CPU counts Caddy alone, not the MCP servers.", len(toolsListBody))
	p("")
	p("| case | req/s | p50 ms | p99 ms | Caddy CPU µs/req | requests | errors |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range []result{st.warmHTTP, st.warmStdio} {
		p("| %s | %.0f | %s | %s | %s | %d | %d |", r.Name, r.RPS(), ms(r.P50), ms(r.P99), usNum(r.CPUPerReq()), r.Reqs, r.Errors)
	}
	p("")
	p("- **s/h throughput from the paired rounds: %s**", st.sh)
	p("- h/s Caddy CPU per request from the same rounds: %s (Caddy's share only; the MCP servers' CPU is not counted)", st.shCPU)
	p("- p99: stdio %s ms against HTTP (noise floor, (h)'s odd rounds against its even rounds: %s ms)", msSigned(st.warmStdio.P99-st.warmHTTP.P99), msSigned(st.noiseP99))
	p("")
	p("### mcp_stdio: cold start (first call of %d new users on each path, one at a time, interleaved)", cfg.StdioUsers)
	p("")
	p("Each user's first call verifies a new token (RS256 signature) and makes a token exchange on both paths; on (s) it also starts the user's process and initializes it.")
	p("")
	p("| case | p50 ms | p99 ms | calls | errors |")
	p("|---|---:|---:|---:|---:|")
	for _, r := range []result{st.coldHTTP, st.coldStdio} {
		p("| %s | %s | %s | %d | %d |", r.Name, ms(r.P50), ms(r.P99), r.Reqs, r.Errors)
	}
	p("")
	p("- **memory per idle stdio process: %s RSS, %s PSS** (VmRSS of Caddy's %d children summed, %s, divided by their number, the warm user's process included; PSS, from smaps_rollup, shares the pages they have in common, the binary's text mostly, among them: %s in all)",
		mib(st.procs.perChild(st.procs.RSS)), mib(st.procs.perChild(st.procs.PSS)), st.procs.N, mib(st.procs.RSS), mib(st.procs.PSS))
	p("- Caddy RSS: %s before the cold starts, %s after; the HTTP mcpbackend, idle: %s", mib(st.caddyBefore.RSS), mib(st.caddyAfter.RSS), mib(st.backendRSS.RSS))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()*1e3) }

func msSigned(d time.Duration) string { return fmt.Sprintf("%+.3f", d.Seconds()*1e3) }

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", d.Seconds()*1e6) }

func usSigned(d time.Duration) string { return fmt.Sprintf("%+.0f", d.Seconds()*1e6) }

func usNum(d time.Duration) string { return fmt.Sprintf("%.0f", d.Seconds()*1e6) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// emit prints the report and, with path, also writes it there.
func emit(stdout io.Writer, path, report string) error {
	fmt.Fprint(stdout, report)
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(report), 0o644)
}
