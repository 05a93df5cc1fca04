// Command mcpgate-loadbench measures what the mcp_auth gateway adds to every
// request, on loopback, in one run:
//
//	(a) the MCP backend directly;
//	(b) Caddy's reverse_proxy alone;
//	(c) Caddy with mcp_auth, one valid token (verification cached) and the
//	    upstream token injected from the cache;
//	(d) the same with a distinct, pre-minted RS256 token on every request,
//	    so every request takes the signature path;
//
// then throughput against concurrency, throughput and Caddy's RSS as
// distinct users grow, and the latency of the first SSE event through the
// gateway against direct. It prints a markdown report.
//
//	go run ./caddymodule/cmd/mcpgate-loadbench [flags]
//
// Caddy runs as a separate process: by default this same binary re-executed
// as Caddy (its main imports Caddy's standard modules and mcpgate's
// caddymodule, as xcaddy would), or the binary given by -caddy (e.g. bin/caddy
// from ./xcaddy.sh). The backend is a separate process too. The fake issuer
// (JWKS and RFC 8693 token exchange) runs in the load generator's process;
// it is called once per JWKS fetch and once per user whose upstream token is
// not cached.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules and mcp_auth, for the re-executed Caddy.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mcpgate/mcpgate/caddymodule"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "caddy":
			os.Args = append(os.Args[:1:1], os.Args[2:]...)
			caddycmd.Main()
			return
		case "backend":
			os.Exit(serveBackend(os.Args[2:]))
		}
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	if err := bench(context.Background(), cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mcpgate-loadbench:", err)
		os.Exit(1)
	}
}

// serveBackend runs the backend child: it prints its address, then serves
// until interrupted (the parent stops it).
func serveBackend(args []string) int {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	l, err := listenLoopback(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		return 1
	}
	fmt.Println(l.Addr().String())
	srv := &http.Server{Handler: backendHandler(), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		return 1
	}
	return 0
}

// config is the benchmark's settings (flags).
type config struct {
	Duration     time.Duration
	ScanDuration time.Duration
	Rounds       int
	Conc         int
	ConcList     []int
	Users        []int
	FreshTokens  int
	VerifyCache  int
	UpstreamLRU  int
	SSE          int
	Loads        []float64
	Pin          bool
	MainOnly     bool
	Instructions int
	Caddy        string
	ProfileDir   string
	Out          string
	Args         []string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("mcpgate-loadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured time of each of (b), (b'), (c), and of each case of the open-loop phase, split in -rounds interleaved rounds; also of (a), up to 60s, and the longest (d) runs")
	fs.DurationVar(&c.ScanDuration, "scan-duration", 2*time.Second, "measured time of each users step, and of (b) and of (c) at each concurrency step (interleaved in -rounds)")
	fs.IntVar(&c.Rounds, "rounds", 60, "interleaved rounds of (b), (b'), (c) (and of (b), (c) in the open-loop phase, and up to 12 in the concurrency scan), in a balanced order so drift on the shared machine hits all alike; a multiple of 6 balances fully. Many short rounds give a narrower confidence interval than a few long ones of the same total")
	fs.IntVar(&c.Conc, "c", 32, "concurrency (connections) of (a)-(d) and the users scan")
	concList := fs.String("conc", "1,4,16,64,256", "concurrency scan, comma-separated")
	users := fs.String("users", "1,100,1000,10000,100000", "distinct-users scan, comma-separated (ES256 tokens, one per user)")
	fs.IntVar(&c.FreshTokens, "fresh-tokens", 20000, "RS256 tokens pre-minted for (d); (d) ends early when they run out")
	fs.IntVar(&c.VerifyCache, "verify-cache", 10000, "mcp_auth verify_cache_size")
	fs.IntVar(&c.UpstreamLRU, "upstream-cache", 10000, "mcp_auth upstream_cache_size")
	fs.IntVar(&c.SSE, "sse", 300, "sequential SSE requests per path for first-event latency")
	loads := fs.String("load", "0.25,0.5", "open-loop latency phase: request rates as fractions of (b)'s measured throughput, comma-separated, each in (0, 1]")
	fs.IntVar(&c.Instructions, "instructions", 0, "if > 0: instead of the timed phases, run Caddy under valgrind's callgrind and count the instructions it executes for this many requests of (b), (b'), (c), (d) and (b) again; use a few thousand, since each case must span many GC cycles (4000: about 4 minutes)")
	fs.BoolVar(&c.MainOnly, "main-only", false, "run only (a), the interleaved rounds of (b), (b'), (c), and (d): for long runs that narrow c/b's confidence interval (e.g. -duration 450s -rounds 900)")
	fs.BoolVar(&c.Pin, "pin", true, "run Caddy on CPUs of its own (the upper half of those allowed, via taskset) and the load generator, issuer and backend on the others; false: all share every CPU")
	fs.StringVar(&c.Caddy, "caddy", "", "Caddy binary with mcp_auth (e.g. bin/caddy); default: this program re-executed as Caddy")
	fs.StringVar(&c.ProfileDir, "profile-dir", "", "if set, write Caddy's CPU and alloc profiles of extra (b) and (c) runs and of (d) here (via its admin /debug/pprof); profiling slows (d). With -instructions: the callgrind dump of each case")
	fs.StringVar(&c.Out, "out", "", "also write the markdown report to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.ConcList, err = intList(*concList); err != nil {
		return c, fmt.Errorf("-conc: %w", err)
	}
	if c.Users, err = intList(*users); err != nil {
		return c, fmt.Errorf("-users: %w", err)
	}
	if c.Loads, err = fractionList(*loads); err != nil {
		return c, fmt.Errorf("-load: %w", err)
	}
	if c.Duration <= 0 || c.ScanDuration <= 0 || c.Rounds < 1 || c.Conc < 1 || c.FreshTokens < 1 || c.SSE < 1 || c.Instructions < 0 {
		err = fmt.Errorf("durations, -rounds, -c, -fresh-tokens and -sse must be positive, -instructions not negative")
		fmt.Fprintln(stderr, err)
		return c, err
	}
	c.Args = args
	return c, nil
}

// directDuration is how long (a) runs, in the main comparison and at each
// open-loop rate: -duration, at most a minute, since (a) is measured once
// for b/a and as the load generator's floor, not compared round by round.
func (c config) directDuration() time.Duration { return min(c.Duration, time.Minute) }

// fractionList parses comma-separated numbers in (0, 1].
func fractionList(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(x > 0 && x <= 1) {
			return nil, fmt.Errorf("%q is not a number in (0, 1]", f)
		}
		out = append(out, x)
	}
	return out, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

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
	main       []result   // a, b, c, d
	freshNote  string
	conc       [][2]result // per concurrency: b, c
	users      []userStep
	sse        [2]result // direct, gateway
	memIdle    memory
	heapIdle   int64
	memMain    memory
	mintRS     time.Duration
	mintES     time.Duration
	exchanges0 int64
}

// openLoop is the open-loop phase at one request rate.
type openLoop struct {
	load, rate float64
	cases      [3]result // a, b, c
	noiseP99   time.Duration
}

type userStep struct {
	users     int
	r         result
	mem       memory
	heap      int64 // Go heap in use, from Caddy's admin /metrics
	exchanges int64
}

func bench(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	dir, err := os.MkdirTemp("", "mcpgate-loadbench-")
	if err != nil {
		return err
	}
	logf("logs in %s", dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}

	var pl placement
	if cfg.Pin {
		cpus, err := allowedCPUs()
		if err != nil {
			return err
		}
		if pl, err = planPlacement(cpus); err != nil {
			return err
		}
		if err := pinSelf(pl.rest); err != nil {
			return err
		}
		logf("%s", pl.describe())
	}

	fi, err := newFakeIssuer()
	if err != nil {
		return err
	}
	defer fi.Close()

	bin, args, err := pinnedCommand(pl.rest, self, []string{"backend"})
	if err != nil {
		return err
	}
	backend, backendAddr, err := startChild("backend", dir, bin, args, true)
	if err != nil {
		return err
	}
	defer backend.stop()

	var ports [3]string
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	proxyAddr, gwAddr, adminAddr := ports[0], ports[1], ports[2]
	resource := "http://" + gwAddr + "/mcp"
	cfgJSON, err := caddyConfig(caddyParams{Backend: backendAddr, ProxyAddr: proxyAddr, GatewayAddr: gwAddr, AdminAddr: adminAddr,
		Issuer: fi.URL(), Resource: resource, VerifyCache: cfg.VerifyCache, UpstreamLRU: cfg.UpstreamLRU})
	if err != nil {
		return err
	}
	cfgPath := dir + "/caddy.json"
	if err := os.WriteFile(cfgPath, cfgJSON, 0o600); err != nil {
		return err
	}
	bin, args = self, []string{"caddy", "run", "--config", cfgPath}
	caddyBin := "this program re-executed as Caddy (standard modules + caddymodule)"
	if cfg.Caddy != "" {
		bin, args, caddyBin = cfg.Caddy, args[1:], cfg.Caddy
	}
	ready := 30 * time.Second
	prevGODEBUG, hadGODEBUG := os.LookupEnv("GODEBUG")
	if cfg.Instructions > 0 {
		if bin, args, err = callgrindCommand(dir, bin, args); err != nil {
			return err
		}
		caddyBin += ", under valgrind --tool=callgrind"
		ready = 5 * time.Minute
		// Only Caddy's runtime reads it (at start), and only this mode.
		os.Setenv("GODEBUG", strings.TrimPrefix(prevGODEBUG+",asyncpreemptoff=1", ","))
	}
	if bin, args, err = pinnedCommand(pl.caddy, bin, args); err != nil {
		return err
	}
	caddy, _, err := startChild("caddy", dir, bin, args, false)
	if hadGODEBUG {
		os.Setenv("GODEBUG", prevGODEBUG)
	} else {
		os.Unsetenv("GODEBUG")
	}
	if err != nil {
		return err
	}
	defer caddy.stop()
	for _, u := range []struct {
		url  string
		want int
	}{
		{"http://" + backendAddr + pathSSE, 200},
		{"http://" + proxyAddr + pathSSE, 200},
		{"http://" + gwAddr + "/.well-known/oauth-protected-resource/mcp", 200},
		{"http://" + gwAddr + pathMCP, 401},
	} {
		if err := waitHTTP(ctx, u.url, u.want, ready); err != nil {
			return fmt.Errorf("%w (Caddy log: %s)", err, caddy.log)
		}
	}
	rep := &report{cfg: cfg, caddyBin: caddyBin, placement: pl}
	pid := caddy.cmd.Process.Pid
	// withCPU runs f and adds the Caddy process's CPU time during it to the
	// result: CPU per request depends less than req/s on what else shares
	// the cores (though cache and SMT contention still move it).
	withCPU := func(f func() (result, []time.Duration)) (result, []time.Duration) {
		c0, err0 := processCPU(pid)
		r, l := f()
		c1, err1 := processCPU(pid)
		if err0 == nil && err1 == nil {
			r.CaddyCPU = c1 - c0
		}
		return r, l
	}
	rep.memIdle, _ = readMemory(pid)
	rep.heapIdle, _ = heapInuse(ctx, adminAddr)

	m := minter{fi: fi, resource: resource, now: time.Now()}
	cached, err := m.token("RS256", "bench-user", -1)
	if err != nil {
		return err
	}
	nFresh := cfg.FreshTokens
	if cfg.Instructions > 0 {
		nFresh = cfg.Instructions
	}
	logf("minting %d RS256 tokens for (d)", nFresh)
	t0 := time.Now()
	fresh, err := m.mint("RS256", nFresh, func(int) string { return "bench-user" })
	if err != nil {
		return err
	}
	rep.mintRS = time.Since(t0) / time.Duration(nFresh)

	direct := target{addr: backendAddr, path: pathMCP}
	proxied := target{addr: proxyAddr, path: pathMCP}
	gated := target{addr: gwAddr, path: pathMCP, expectUpstream: true}
	cases := []struct {
		name string
		t    target
		p    func() *picker
	}{
		{"(a) backend direct", direct, func() *picker { return fixed("") }},
		{"(b) Caddy reverse_proxy", proxied, func() *picker { return fixed("") }},
		// (b) with the same bearer token, forwarded unchecked: separates
		// the cost of carrying a ~750-byte header from checking it.
		{"(b') reverse_proxy, same bearer header, unchecked", proxied, func() *picker { return fixed(cached) }},
		{"(c) mcp_auth, cached token + upstream", gated, func() *picker { return fixed(cached) }},
	}
	// Warm-up: connections, the JWKS fetch, the one token exchange.
	for _, cs := range cases {
		if r := run("warm-up", cs.t, cs.p(), cfg.Conc, 500*time.Millisecond); r.Errors > 0 {
			return fmt.Errorf("warm-up of %s: %d errors, first: %s (logs in %s)", cs.name, r.Errors, r.firstError, dir)
		}
	}
	rep.exchanges0 = fi.exchanges.Load()

	if cfg.Instructions > 0 {
		rs, err := countInstructions(cfg, &callgrind{pid: pid, dir: dir}, proxied, gated, cached, fresh, logf)
		if err != nil {
			return fmt.Errorf("%w (logs in %s)", err, dir)
		}
		var out strings.Builder
		instructionsMarkdown(&out, cfg, pl, rs)
		if err := emit(stdout, cfg.Out, out.String()); err != nil {
			return err
		}
		_ = os.RemoveAll(dir)
		return nil
	}

	// (a) first and on its own: Caddy idles during it, and whichever case
	// came next would start on a rested machine.
	logf("(a) backend direct for %s at concurrency %d", cfg.directDuration(), cfg.Conc)
	a, _ := runRaw(cases[0].name, cases[0].t, cases[0].p(), cfg.Conc, cfg.directDuration())
	rep.main = append(rep.main, a)

	logf("main comparison: %d rounds of (b), (b'), (c) at concurrency %d", cfg.Rounds, cfg.Conc)
	viaCaddy := cases[1:]
	per := cfg.Duration / time.Duration(cfg.Rounds)
	rounds, lats := interleave(len(viaCaddy), cfg.Rounds, func(i int) (result, []time.Duration) {
		cs := viaCaddy[i]
		return withCPU(func() (result, []time.Duration) { return runRaw(cs.name, cs.t, cs.p(), cfg.Conc, per) })
	}, logf)
	for i := range viaCaddy {
		rep.main = append(rep.main, combine(rounds[i], lats[i]))
	}
	rep.roundRatios = pairedRatios(rounds[0], rounds[2])
	rep.cb, rep.b2b, rep.cb2 = pairedEstimate(rounds[0], rounds[2]), pairedEstimate(rounds[0], rounds[1]), pairedEstimate(rounds[1], rounds[2])
	rep.noiseP99 = halvesP99(rounds[0], lats[0])

	// Latency at a fixed request rate below saturation (open loop): (a)
	// on its own, then (b) and (c) interleaved the same way.
	if !cfg.MainOnly {
		for _, load := range cfg.Loads {
			ol := openLoop{load: load, rate: load * rep.main[1].RPS()}
			logf("open loop: %.0f req/s (%.2f of (b)'s throughput): (a), then %d rounds of (b), (c)", ol.rate, load, cfg.Rounds)
			ol.cases[0], _ = runRate(cases[0].name, cases[0].t, cases[0].p(), cfg.Conc, ol.rate, cfg.directDuration())
			olRounds, olLats := interleave(2, cfg.Rounds, func(i int) (result, []time.Duration) {
				cs := cases[[]int{1, 3}[i]]
				return withCPU(func() (result, []time.Duration) { return runRate(cs.name, cs.t, cs.p(), cfg.Conc, ol.rate, per) })
			}, nil)
			ol.cases[1] = combine(olRounds[0], olLats[0])
			ol.cases[2] = combine(olRounds[1], olLats[1])
			ol.noiseP99 = halvesP99(olRounds[0], olLats[0])
			rep.open = append(rep.open, ol)
		}
	}
	var stopProfile func(string)
	if cfg.ProfileDir != "" {
		// A separate (c) run, not part of the table, so the profile holds
		// only the gateway's cached path.
		// (b) too, as the base of a diff: go tool pprof -diff_base b c.
		for _, pc := range []struct {
			name, tok string
			t         target
		}{{"b", "", proxied}, {"c", cached, gated}} {
			logf("profiling (%s) for %s", pc.name, cfg.Duration)
			stopProfile = startProfile(ctx, adminAddr, cfg.ProfileDir, pc.name, cfg.Duration, logf)
			r, _ := withCPU(func() (result, []time.Duration) {
				return runRaw("profile", pc.t, fixed(pc.tok), cfg.Conc, cfg.Duration)
			})
			stopProfile(pc.name)
			logf("profile (%s): %d requests, Caddy CPU %s µs/req", pc.name, r.Reqs, usNum(r.CPUPerReq()))
		}
	}
	logf("(d): fresh RS256 token per request")
	if cfg.ProfileDir != "" {
		stopProfile = startProfile(ctx, adminAddr, cfg.ProfileDir, "d", cfg.Duration, logf)
	}
	dp := &picker{toks: fresh}
	d, _ := withCPU(func() (result, []time.Duration) {
		return runRaw("(d) mcp_auth, fresh RS256 token each request", gated, dp, cfg.Conc, cfg.Duration)
	})
	if stopProfile != nil {
		stopProfile("d")
	}
	if d.Reqs+d.Errors >= len(fresh) {
		rep.freshNote = fmt.Sprintf("(d) used all %d pre-minted tokens in %.1fs (ended before -duration).", len(fresh), d.Elapsed.Seconds())
	}
	rep.main = append(rep.main, d)
	rep.memMain, _ = readMemory(pid)

	if !cfg.MainOnly {
		logf("streaming: %d first-event measurements per path", cfg.SSE)
		if rep.sse[0], err = firstEvent(backendAddr, pathSSE, "", false, cfg.SSE); err != nil {
			return fmt.Errorf("sse direct: %w", err)
		}
		if rep.sse[1], err = firstEvent(gwAddr, pathSSE, cached, true, cfg.SSE); err != nil {
			return fmt.Errorf("sse gateway: %w", err)
		}

		maxUsers := 0
		for _, n := range cfg.Users {
			maxUsers = max(maxUsers, n)
		}
		logf("minting %d ES256 tokens (one per user) for the users scan", maxUsers)
		t0 = time.Now()
		userToks, err := m.mint("ES256", maxUsers, func(i int) string { return "user-" + strconv.Itoa(i) })
		if err != nil {
			return err
		}
		rep.mintES = time.Since(t0) / time.Duration(maxUsers)
		for _, n := range cfg.Users {
			logf("users scan: %d", n)
			ex := fi.exchanges.Load()
			r := run("users", gated, &picker{toks: userToks[:n], wrap: true, fullPass: true}, cfg.Conc, cfg.ScanDuration)
			mem, _ := readMemory(pid)
			heap, _ := heapInuse(ctx, adminAddr)
			rep.users = append(rep.users, userStep{users: n, r: r, mem: mem, heap: heap, exchanges: fi.exchanges.Load() - ex})
		}

		logf("concurrency scan %v", cfg.ConcList)
		for _, n := range cfg.ConcList {
			// (b) and (c) interleaved in rounds, like the main comparison.
			slice := max(cfg.ScanDuration/time.Duration(scanRounds(cfg)), 100*time.Millisecond)
			rs, ls := interleave(2, scanRounds(cfg), func(i int) (result, []time.Duration) {
				t, tok := []target{proxied, gated}[i], []string{"", cached}[i]
				return withCPU(func() (result, []time.Duration) {
					return runRaw([]string{"(b)", "(c)"}[i], t, fixed(tok), n, slice)
				})
			}, nil)
			rep.conc = append(rep.conc, [2]result{combine(rs[0], ls[0]), combine(rs[1], ls[1])})
		}
	}

	var out strings.Builder
	rep.markdown(&out)
	if err := emit(stdout, cfg.Out, out.String()); err != nil {
		return err
	}
	checked := rep.main
	for _, ol := range rep.open {
		checked = append(checked, ol.cases[:]...)
	}
	for _, r := range checked {
		if r.Errors > 0 {
			return fmt.Errorf("%s had %d errors (first: %s); logs in %s", r.Name, r.Errors, r.firstError, dir)
		}
	}
	_ = os.RemoveAll(dir)
	return nil
}

// startProfile fetches Caddy's CPU profile and alloc delta for about d in
// the background; the returned func waits for both.
func startProfile(ctx context.Context, admin, dir, name string, d time.Duration, logf func(string, ...any)) func(string) {
	secs := max(1, int(d/time.Second)-1)
	done := make(chan struct{}, 2)
	fetch := func(kind string) {
		defer func() { done <- struct{}{} }()
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", admin, kind, secs)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			logf("profile %s: %v", kind, err)
			return
		}
		defer resp.Body.Close()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			logf("profile: %v", err)
			return
		}
		f, err := os.Create(fmt.Sprintf("%s/caddy-%s-%s.pprof", dir, name, kind))
		if err != nil {
			logf("profile: %v", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil || resp.StatusCode != 200 {
			logf("profile %s: status %d, %v", kind, resp.StatusCode, err)
		}
	}
	go fetch("profile")
	go fetch("allocs")
	return func(string) { <-done; <-done }
}

// scanRounds is the number of interleaved rounds per concurrency step: at
// most 12, so that a round of a 2 s step still lasts a sixth of a second.
func scanRounds(cfg config) int { return min(cfg.Rounds, 12) }

// balancedOrder is the order in which the n cases of a round run, from a
// Williams design: over n rounds (2n for odd n) every case runs in every
// position equally often and follows every other case equally often, so
// that neither a drift of the machine's speed nor what ran just before
// favours one case. -rounds a multiple of 6 balances n = 2 and n = 3.
func balancedOrder(n, round int) []int {
	first := make([]int, n) // 0, 1, n-1, 2, n-2, ...
	lo, hi := 1, n-1
	for i := 1; i < n; i++ {
		if i%2 == 1 {
			first[i] = lo
			lo++
		} else {
			first[i] = hi
			hi--
		}
	}
	rows := n
	if n%2 == 1 {
		rows = 2 * n
	}
	r := round % rows
	order := make([]int, n)
	for i := range order {
		order[i] = (first[i] + r) % n
	}
	if r >= n {
		slices.Reverse(order)
	}
	return order
}

// pairedRatios is y/x throughput for each round.
func pairedRatios(x, y []result) []float64 {
	out := make([]float64, 0, len(x))
	for i := range min(len(x), len(y)) {
		out = append(out, ratio(y[i].RPS(), x[i].RPS()))
	}
	return out
}

// shortName is a case's label, "(b)" of "(b) Caddy reverse_proxy".
func shortName(name string) string {
	if i := strings.IndexByte(name, ' '); i > 0 {
		return name[:i]
	}
	return name
}

// halvesP99 is the p99 of the odd rounds minus the p99 of the even rounds
// (counting from 1) of one case.
func halvesP99(rounds []result, lats [][]time.Duration) time.Duration {
	var h [2][]time.Duration
	for i := range rounds {
		h[i%2] = append(h[i%2], lats[i]...)
	}
	return percentile(h[0], 0.99) - percentile(h[1], 0.99)
}

// interleave runs n cases in rounds, each round in balancedOrder, and
// returns each case's results and latencies per round. With logf, it logs
// every round's throughput and Caddy CPU per request.
func interleave(n, rounds int, run func(i int) (result, []time.Duration), logf func(string, ...any)) ([][]result, [][][]time.Duration) {
	rs := make([][]result, n)
	ls := make([][][]time.Duration, n)
	for round := range rounds {
		var line strings.Builder
		for _, i := range balancedOrder(n, round) {
			r, l := run(i)
			rs[i] = append(rs[i], r)
			ls[i] = append(ls[i], l)
			fmt.Fprintf(&line, " %s %.0f/s %sµs", shortName(r.Name), r.RPS(), usNum(r.CPUPerReq()))
		}
		if logf != nil {
			logf("round %d:%s", round+1, line.String())
		}
	}
	return rs, ls
}

// emit prints the report and, with path, also writes it there.
func emit(stdout io.Writer, path, report string) error {
	fmt.Fprint(stdout, report)
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(report), 0o644)
}
