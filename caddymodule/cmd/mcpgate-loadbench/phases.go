package main

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// The timed phases, in the order bench runs them. Each adds its part to
// s.rep.

// mainComparison runs (a) on its own, then (b), (b') and (c) in
// interleaved rounds, and estimates their throughput ratios from the
// paired rounds.
func (s *session) mainComparison() {
	cfg := s.cfg
	// (a) first and on its own: Caddy idles during it, and whichever case
	// came next would start on a rested machine.
	s.logf("(a) backend direct for %s at concurrency %d", cfg.directDuration(), cfg.Conc)
	a, _ := runRaw(s.cases[0].name, s.cases[0].t, s.cases[0].p(), cfg.Conc, cfg.directDuration())
	s.rep.main = append(s.rep.main, a)

	s.logf("main comparison: %d rounds of (b), (b'), (c) at concurrency %d", cfg.Rounds, cfg.Conc)
	viaCaddy := s.cases[1:]
	rounds, lats := interleave(len(viaCaddy), cfg.Rounds, func(i int) (result, []time.Duration) {
		cs := viaCaddy[i]
		return s.withCPU(func() (result, []time.Duration) { return runRaw(cs.name, cs.t, cs.p(), cfg.Conc, s.roundDuration()) })
	}, s.logf)
	for i := range viaCaddy {
		s.rep.main = append(s.rep.main, combine(rounds[i], lats[i]))
	}
	s.rep.roundRatios = pairedRatios(rounds[0], rounds[2])
	s.rep.cb, s.rep.b2b, s.rep.cb2 = pairedEstimate(rounds[0], rounds[2]), pairedEstimate(rounds[0], rounds[1]), pairedEstimate(rounds[1], rounds[2])
	s.rep.noiseP99 = halvesP99(rounds[0], lats[0])
}

// roundDuration is how long each case runs in one round of the main
// comparison and of the open loop.
func (s *session) roundDuration() time.Duration { return s.cfg.Duration / time.Duration(s.cfg.Rounds) }

// openLoops measures latency at fixed request rates below saturation, one
// rate per -load: (a) on its own, then (b) and (c) interleaved like the
// main comparison.
func (s *session) openLoops() {
	cfg := s.cfg
	a, b, c := s.cases[0], s.cases[1], s.cases[3]
	for _, load := range cfg.Loads {
		ol := openLoop{load: load, rate: load * s.rep.main[1].RPS()}
		s.logf("open loop: %.0f req/s (%.2f of (b)'s throughput): (a), then %d rounds of (b), (c)", ol.rate, load, cfg.Rounds)
		ol.cases[0], _ = runRate(a.name, a.t, a.p(), cfg.Conc, ol.rate, cfg.directDuration())
		rounds, lats := interleave(2, cfg.Rounds, func(i int) (result, []time.Duration) {
			cs := []benchCase{b, c}[i]
			return s.withCPU(func() (result, []time.Duration) {
				return runRate(cs.name, cs.t, cs.p(), cfg.Conc, ol.rate, s.roundDuration())
			})
		}, nil)
		ol.cases[1] = combine(rounds[0], lats[0])
		ol.cases[2] = combine(rounds[1], lats[1])
		ol.noiseP99 = halvesP99(rounds[0], lats[0])
		s.rep.open = append(s.rep.open, ol)
	}
}

// profiles, with -profile-dir, profiles Caddy during separate runs of (b)
// and (c), not part of the table, so that each profile holds one path only
// and (b) serves as the base of a diff: go tool pprof -diff_base b c.
func (s *session) profiles() {
	s.profileRuns([]profileRun{{"b", "", s.proxied}, {"c", s.cached, s.gated}})
}

// profileRun is one profiled run: the profile's name, the bearer token, the target.
type profileRun struct {
	name, tok string
	t         target
}

// profileRuns profiles Caddy during one run of each case, with -profile-dir.
func (s *session) profileRuns(runs []profileRun) {
	if s.cfg.ProfileDir == "" {
		return
	}
	for _, pc := range runs {
		s.logf("profiling (%s) for %s", pc.name, s.cfg.Duration)
		stop := startProfile(s.ctx, s.st.adminAddr, s.cfg.ProfileDir, pc.name, s.cfg.Duration, s.logf)
		r, _ := s.withCPU(func() (result, []time.Duration) {
			return runRaw("profile", pc.t, fixed(pc.tok), s.cfg.Conc, s.cfg.Duration)
		})
		stop()
		s.logf("profile (%s): %d requests, Caddy CPU %s µs/req", pc.name, r.Reqs, usNum(r.CPUPerReq()))
	}
}

// freshTokens is (d): a distinct pre-minted RS256 token on every request,
// so every request takes the signature path; profiled with -profile-dir.
// It ends early when the tokens run out.
func (s *session) freshTokens() {
	s.logf("(d): fresh RS256 token per request")
	var stop func()
	if s.cfg.ProfileDir != "" {
		stop = startProfile(s.ctx, s.st.adminAddr, s.cfg.ProfileDir, "d", s.cfg.Duration, s.logf)
	}
	d, _ := s.withCPU(func() (result, []time.Duration) {
		return runRaw("(d) mcp_auth, fresh RS256 token each request", s.gated, &picker{toks: s.fresh}, s.cfg.Conc, s.cfg.Duration)
	})
	if stop != nil {
		stop()
	}
	if d.Reqs+d.Errors >= len(s.fresh) {
		s.rep.freshNote = fmt.Sprintf("(d) used all %d pre-minted tokens in %.1fs (ended before -duration).", len(s.fresh), d.Elapsed.Seconds())
	}
	s.rep.main = append(s.rep.main, d)
	s.rep.memMain, _ = readMemory(s.st.caddyPID())
}

// streaming measures the latency of the first SSE event, direct and
// through the gateway.
func (s *session) streaming() error {
	s.logf("streaming: %d first-event measurements per path", s.cfg.SSE)
	var err error
	if s.rep.sse[0], err = firstEvent(s.st.backendAddr, pathSSE, "", false, s.cfg.SSE); err != nil {
		return fmt.Errorf("sse direct: %w", err)
	}
	if s.rep.sse[1], err = firstEvent(s.st.gwAddr, pathSSE, s.cached, true, s.cfg.SSE); err != nil {
		return fmt.Errorf("sse gateway: %w", err)
	}
	return nil
}

// usersScan runs the gateway with a growing number of distinct users (an
// ES256 token each, every one sent at least once per step) and records
// throughput, token exchanges and Caddy's memory at each step. It runs
// before the concurrency scan so that many connections do not inflate
// Caddy's RSS first.
func (s *session) usersScan() error {
	maxUsers := slices.Max(s.cfg.Users)
	s.logf("minting %d ES256 tokens (one per user) for the users scan", maxUsers)
	t0 := time.Now()
	toks, err := s.m.mint("ES256", maxUsers, func(i int) string { return "user-" + strconv.Itoa(i) })
	if err != nil {
		return err
	}
	s.rep.mintES = time.Since(t0) / time.Duration(maxUsers)
	for _, n := range s.cfg.Users {
		s.logf("users scan: %d", n)
		ex := s.fi.exchanges.Load()
		r := run("users", s.gated, &picker{toks: toks[:n], wrap: true, fullPass: true}, s.cfg.Conc, s.cfg.ScanDuration)
		mem, _ := readMemory(s.st.caddyPID())
		heap, _ := heapInuse(s.ctx, s.st.adminAddr)
		s.rep.users = append(s.rep.users, userStep{users: n, r: r, mem: mem, heap: heap, exchanges: s.fi.exchanges.Load() - ex})
	}
	return nil
}

// concurrencyScan runs (b), (b') and (c) at each -conc, interleaved in
// rounds like the main comparison. (b') receives the same requests as (c),
// bearer header included, so c/b' does not charge mcp_auth with what the
// client's token costs any proxy in front of it; c/b is kept next to it.
func (s *session) concurrencyScan() {
	cfg := s.cfg
	s.logf("concurrency scan %v", cfg.ConcList)
	cases := []struct {
		name string
		t    target
		tok  string
	}{{"(b)", s.proxied, ""}, {"(b')", s.proxied, s.cached}, {"(c)", s.gated, s.cached}}
	n := scanRounds(cfg)
	slice := max(cfg.ScanDuration/time.Duration(n), 100*time.Millisecond)
	for _, conc := range cfg.ConcList {
		rs, ls := interleave(len(cases), n, func(i int) (result, []time.Duration) {
			cs := cases[i]
			return s.withCPU(func() (result, []time.Duration) {
				return runRaw(cs.name, cs.t, fixed(cs.tok), conc, slice)
			})
		}, nil)
		s.rep.conc = append(s.rep.conc, [3]result{combine(rs[0], ls[0]), combine(rs[1], ls[1]), combine(rs[2], ls[2])})
	}
}
