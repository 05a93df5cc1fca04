package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// config is the benchmark's settings, one field per flag; parseFlags
// states each one's meaning and default.
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
	ScanOnly     bool
	PolicyOnly   bool
	StdioOnly    bool
	StdioUsers   int
	MCPBackend   string
	Instructions int
	InstrConc    int
	Caddy        string
	ProfileDir   string
	Out          string
	Args         []string
}

// parseFlags parses the command line into a config, printing usage and
// errors to stderr; Args keeps args for the report.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("mcpgate-loadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured time of each of (b), (b'), (c), and of each case of the open-loop phase, split in -rounds interleaved rounds; also of (a), up to 60s, and the longest (d) runs")
	fs.DurationVar(&c.ScanDuration, "scan-duration", 2*time.Second, "measured time of each users step, and of each of (b), (b') and (c) at each concurrency step (interleaved in -rounds)")
	fs.IntVar(&c.Rounds, "rounds", 60, "interleaved rounds of (b), (b'), (c) (and of (b), (c) in the open-loop phase, and up to 12 in the concurrency scan), in a balanced order so drift on the shared machine hits all alike; a multiple of 6 balances fully. Many short rounds give a narrower confidence interval than a few long ones of the same total")
	fs.IntVar(&c.Conc, "c", 32, "concurrency (connections) of (a)-(d) and the users scan")
	concList := fs.String("conc", "1,4,16,64,256", "concurrency scan, comma-separated")
	users := fs.String("users", "1,100,1000,10000,100000", "distinct-users scan, comma-separated (ES256 tokens, one per user)")
	fs.IntVar(&c.FreshTokens, "fresh-tokens", 20000, "RS256 tokens pre-minted for (d); (d) ends early when they run out")
	fs.IntVar(&c.VerifyCache, "verify-cache", 10000, "mcp_auth verify_cache_size")
	fs.IntVar(&c.UpstreamLRU, "upstream-cache", 10000, "mcp_auth upstream_cache_size")
	fs.IntVar(&c.SSE, "sse", 300, "sequential SSE requests per path for first-event latency")
	loads := fs.String("load", "0.25,0.5", "open-loop latency phase: request rates as fractions of (b)'s measured throughput, comma-separated, each in (0, 1]")
	fs.IntVar(&c.Instructions, "instructions", 0, "if > 0: instead of the timed phases, run Caddy under valgrind's callgrind and count the instructions it executes for this many requests of (b), (b'), (c), (d) and (b) again (with -policy-only: of (c), (p1), (p) and (c) again); use a few thousand, since each case must span many GC cycles (4000: about 4 minutes)")
	fs.IntVar(&c.InstrConc, "instructions-conc", 4, "with -instructions: connections the counted requests come from")
	fs.BoolVar(&c.MainOnly, "main-only", false, "run only (a), the interleaved rounds of (b), (b'), (c), and (d): for long runs that narrow c/b's confidence interval (e.g. -duration 450s -rounds 900)")
	fs.BoolVar(&c.ScanOnly, "scan-only", false, "run only the concurrency scan (-conc), after the warm-up; with -profile-dir, first profile (b) and (c) at -c connections for -duration each")
	fs.BoolVar(&c.PolicyOnly, "policy-only", false, "run only the tool-policy phase after the warm-up: (c) against (c) with a 20-rule tool_policy, in -rounds interleaved rounds of -duration in all per case (issue 17)")
	fs.BoolVar(&c.StdioOnly, "stdio-only", false, "run only the mcp_stdio phase after the warm-up: tools/list through mcp_auth + mcp_stdio against mcp_auth + reverse_proxy to mcpbackend over HTTP, in -rounds interleaved rounds; then the first call of -stdio-users new users on each; then the idle processes' memory (issue 16)")
	fs.IntVar(&c.StdioUsers, "stdio-users", 40, "with -stdio-only: new users whose first call is timed on each path (each starts a stdio process that stays idle)")
	fs.StringVar(&c.MCPBackend, "mcpbackend", "", "with -stdio-only: the mcpbackend binary; default: go build "+mcpbackendPkg+" into the run's temporary directory")
	fs.BoolVar(&c.Pin, "pin", true, "run Caddy on CPUs of its own (the upper half of those allowed, via taskset) and the load generator, issuer and backend on the others; false: all share every CPU")
	fs.StringVar(&c.Caddy, "caddy", "", "Caddy binary with mcp_auth (e.g. bin/caddy); default: this program re-executed as Caddy")
	fs.StringVar(&c.ProfileDir, "profile-dir", "", "if set, write Caddy's CPU, alloc, mutex and block profiles of extra (b) and (c) runs (with -policy-only, of (c) and (p)) and of (d) here (via its admin /debug/pprof; the built-in Caddy then records mutex contention and blocking, which -caddy binaries do not); profiling slows (d). With -instructions: the callgrind dump of each case")
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
	// -instructions counts the main cases, or with -policy-only the policy's.
	if only := btoi(c.MainOnly) + btoi(c.ScanOnly) + btoi(c.PolicyOnly) + btoi(c.StdioOnly); only > 1 || (only == 1 && c.Instructions > 0 && !c.PolicyOnly) {
		err = fmt.Errorf("-main-only, -scan-only, -policy-only, -stdio-only and -instructions exclude each other (but -instructions goes with -policy-only)")
		fmt.Fprintln(stderr, err)
		return c, err
	}
	if c.Duration <= 0 || c.ScanDuration <= 0 || c.Rounds < 1 || c.Conc < 1 || c.FreshTokens < 1 || c.SSE < 1 || c.Instructions < 0 || c.InstrConc < 1 || c.StdioUsers < 1 {
		err = fmt.Errorf("durations, -rounds, -c, -fresh-tokens, -sse, -stdio-users and -instructions-conc must be positive, -instructions not negative")
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

// intList parses comma-separated positive integers.
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

// scanRounds is the number of interleaved rounds per concurrency step: at
// most 12, so that a round of a 2 s step still lasts a sixth of a second.
func scanRounds(cfg config) int { return min(cfg.Rounds, 12) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
