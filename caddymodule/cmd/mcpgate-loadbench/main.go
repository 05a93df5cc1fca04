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
// Two modes measure other paths instead: -policy-only compares (c) with
// (c) plus a tool_policy of 20 rules and of 1 rule (issue 17), and
// -stdio-only compares a tools/list through mcp_auth + mcp_stdio with the
// same through mcp_auth + reverse_proxy to mcpbackend over HTTP, then times
// new users' first calls and the idle stdio processes' memory (issue 16).
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
	"net/http"
	"os"
	"runtime"
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
			if os.Getenv(contentionEnv) != "" {
				recordContention()
			}
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

// contentionEnv, set by the parent when -profile-dir is given, asks the
// re-executed Caddy to record mutex contention and blocking, so its admin
// /debug/pprof/mutex and /debug/pprof/block have something to show.
const contentionEnv = "MCPGATE_LOADBENCH_CONTENTION"

// recordContention turns on the runtime's mutex and block profiles: every
// contended mutex event and every blocking event of 10 µs or more (sampled
// in proportion below that). Both cost a little on every event, which is why
// only profiled runs have them.
func recordContention() {
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(10_000) // ns
}
