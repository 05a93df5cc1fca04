package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// session is one run of the benchmark: the servers under test, the tokens
// and cases its phases share, and the report they fill in.
type session struct {
	ctx  context.Context
	cfg  config
	logf func(format string, a ...any)
	dir  string // logs; removed when the run ends without an error
	st   *stack
	fi   *fakeIssuer
	m    minter
	rep  *report

	// cached is the one token of (b') and (c); fresh holds (d)'s, one per
	// request.
	cached string
	fresh  []string
	// proxied is Caddy's reverse_proxy alone, gated mcp_auth in front of it.
	proxied, gated target
	// policyT is the gateway with the 20-rule tool_policy, policy1T with
	// its last rule alone (-policy-only).
	policyT, policy1T target
	// cases are (a), (b), (b') and (c), in that order.
	cases []benchCase
}

// benchCase is one case of the main comparison.
type benchCase struct {
	name string
	t    target
	p    func() *picker // a new picker for every run
}

// bench starts the servers, runs the phases that cfg selects in a fixed
// order and writes the markdown report to stdout (and cfg.Out); progress
// goes to stderr. It fails when a measured case had errors, after the
// report is written; the logs are then kept.
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
		if pl, err = placeSelf(); err != nil {
			return err
		}
		logf("%s", pl.describe())
	}
	fi, err := newFakeIssuer()
	if err != nil {
		return err
	}
	defer fi.Close()
	st, err := startStack(ctx, cfg, dir, self, pl, fi.URL())
	if err != nil {
		return err
	}
	defer st.stop()

	s := &session{ctx: ctx, cfg: cfg, logf: logf, dir: dir, st: st, fi: fi,
		rep: &report{cfg: cfg, caddyBin: st.caddyBin, placement: pl}}
	if err := s.prepare(); err != nil {
		return err
	}
	if cfg.Instructions > 0 {
		return s.instructions(stdout)
	}
	switch {
	case cfg.PolicyOnly:
		if err := s.policyPhase(); err != nil {
			return err
		}
		return s.finish(stdout)
	case cfg.StdioOnly:
		if err := s.stdioPhase(); err != nil {
			return err
		}
		return s.finish(stdout)
	}
	if cfg.ScanOnly {
		s.profiles()
		s.concurrencyScan()
		return s.finish(stdout)
	}
	s.mainComparison()
	if !cfg.MainOnly {
		s.openLoops()
	}
	s.profiles()
	s.freshTokens()
	if !cfg.MainOnly {
		if err := s.streaming(); err != nil {
			return err
		}
		if err := s.usersScan(); err != nil {
			return err
		}
		s.concurrencyScan()
	}
	return s.finish(stdout)
}

// prepare records idle Caddy's memory, mints the tokens of (b') to (d),
// and warms every case up: connections, the JWKS fetch, the one token
// exchange.
func (s *session) prepare() error {
	pid := s.st.caddyPID()
	s.rep.memIdle, _ = readMemory(pid)
	s.rep.heapIdle, _ = heapInuse(s.ctx, s.st.adminAddr)

	s.m = minter{fi: s.fi, resource: s.st.resource, now: time.Now()}
	var err error
	if s.cached, err = s.m.token("RS256", "bench-user", -1); err != nil {
		return err
	}
	nFresh := s.cfg.FreshTokens
	switch {
	case s.cfg.Instructions > 0 && !s.cfg.PolicyOnly:
		nFresh = s.cfg.Instructions
	case s.cfg.ScanOnly, s.cfg.PolicyOnly, s.cfg.StdioOnly:
		nFresh = 1 // (d) does not run
	}
	s.logf("minting %d RS256 tokens for (d)", nFresh)
	t0 := time.Now()
	if s.fresh, err = s.m.mint("RS256", nFresh, func(int) string { return "bench-user" }); err != nil {
		return err
	}
	s.rep.mintRS = time.Since(t0) / time.Duration(nFresh)

	direct := target{addr: s.st.backendAddr, path: pathMCP}
	s.proxied = target{addr: s.st.proxyAddr, path: pathMCP}
	s.gated = target{addr: s.st.gwAddr, path: pathMCP, expectUpstream: true}
	s.policyT = target{addr: s.st.policyAddr, path: pathMCP, expectUpstream: true}
	s.policy1T = target{addr: s.st.policy1Addr, path: pathMCP, expectUpstream: true}
	s.cases = []benchCase{
		{"(a) backend direct", direct, func() *picker { return fixed("") }},
		{"(b) Caddy reverse_proxy", s.proxied, func() *picker { return fixed("") }},
		// (b) with the same bearer token, forwarded unchecked: separates
		// the cost of carrying a ~750-byte header from checking it.
		{"(b') reverse_proxy, same bearer header, unchecked", s.proxied, func() *picker { return fixed(s.cached) }},
		{"(c) mcp_auth, cached token + upstream", s.gated, func() *picker { return fixed(s.cached) }},
	}
	warm := s.cases
	if s.cfg.PolicyOnly {
		warm = append(warm[:len(warm):len(warm)], benchCase{"(p)", s.policyT, func() *picker { return fixed(s.cached) }},
			benchCase{"(p1)", s.policy1T, func() *picker { return fixed(s.cached) }})
	}
	for _, cs := range warm {
		if r := run("warm-up", cs.t, cs.p(), s.cfg.Conc, 500*time.Millisecond); r.Errors > 0 {
			return fmt.Errorf("warm-up of %s: %d errors, first: %s (logs in %s)", cs.name, r.Errors, r.firstError, s.dir)
		}
	}
	s.rep.exchanges0 = s.fi.exchanges.Load()
	return nil
}

// withCPU runs f and adds the Caddy process's CPU time during it to the
// result: CPU per request depends less than req/s on what else shares the
// cores (though cache and SMT contention still move it).
func (s *session) withCPU(f func() (result, []time.Duration)) (result, []time.Duration) {
	pid := s.st.caddyPID()
	c0, err0 := processCPU(pid)
	r, l := f()
	c1, err1 := processCPU(pid)
	if err0 == nil && err1 == nil {
		r.CaddyCPU = c1 - c0
	}
	return r, l
}

// instructions is the -instructions mode in place of the timed phases: it
// counts Caddy's instructions per case and writes that report.
func (s *session) instructions(stdout io.Writer) error {
	cg := &callgrind{pid: s.st.caddyPID(), dir: s.dir}
	cases := mainInstrCases(s.cfg.Instructions, s.proxied, s.gated, s.cached, s.fresh)
	if s.cfg.PolicyOnly {
		if err := checkPolicyActive(s.ctx, s.policyT, s.gated, s.cached); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, s.dir)
		}
		cases = policyInstrCases(s.cfg.Instructions, s.gated, s.policy1T, s.policyT, s.cached)
	}
	rs, err := countInstructions(s.cfg, cg, cases, s.logf)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, s.dir)
	}
	var out strings.Builder
	instructionsMarkdown(&out, s.cfg, s.rep.placement, rs)
	if err := emit(stdout, s.cfg.Out, out.String()); err != nil {
		return err
	}
	_ = os.RemoveAll(s.dir)
	return nil
}

// finish writes the report, then fails if a case of the main comparison or
// of the open loop had errors (the report lists every phase's errors).
func (s *session) finish(stdout io.Writer) error {
	var out strings.Builder
	s.rep.markdown(&out)
	if err := emit(stdout, s.cfg.Out, out.String()); err != nil {
		return err
	}
	checked := slices.Clone(s.rep.main)
	if p := s.rep.policy; p != nil {
		checked = append(checked, p.c, p.p1, p.p)
	}
	if st := s.rep.stdio; st != nil {
		checked = append(checked, st.warmHTTP, st.warmStdio, st.coldHTTP, st.coldStdio)
	}
	for _, ol := range s.rep.open {
		checked = append(checked, ol.cases[:]...)
	}
	for _, r := range checked {
		if r.Errors > 0 {
			return fmt.Errorf("%s had %d errors (first: %s); logs in %s", r.Name, r.Errors, r.firstError, s.dir)
		}
	}
	_ = os.RemoveAll(s.dir)
	return nil
}
