package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
)

// policyRules is the number of rules in benchPolicy (issue 17 asks for the
// cost of 20).
const policyRules = 20

// benchPolicy is the tool_policy of the -policy-only phase: 20 rules in the
// shape of a real GitHub server's policy, mostly globs and exact names,
// default allow. The request's tool, get_me, is named by no exact rule and
// matched only by the last glob, so the decision looks up the exact names
// and then tries every tools/call glob before it: the slow end of the
// engine's path for an allowed call.
func benchPolicy() toolpolicy.Config {
	write := toolpolicy.Requirement{ScopesAny: []string{"mcp:write", "mcp:admin"}}
	read := toolpolicy.Requirement{ScopesAny: []string{"mcp:tools", "mcp:read"}}
	allow := func(method, name string, req toolpolicy.Requirement) toolpolicy.Rule {
		return toolpolicy.Rule{Method: method, Name: name, Effect: "allow", Require: req}
	}
	deny := func(name string) toolpolicy.Rule {
		return toolpolicy.Rule{Method: "tools/call", Name: name, Effect: "deny"}
	}
	return toolpolicy.Config{
		Default: "allow",
		Rules: []toolpolicy.Rule{
			deny("delete_repository"),
			deny("delete_*"),
			allow("tools/call", "create_issue", write),
			allow("tools/call", "create_*", toolpolicy.Requirement{ScopesAll: []string{"mcp:write"}}),
			deny("admin_*"),
			allow("tools/call", "update_*", write),
			allow("tools/call", "merge_pull_request", toolpolicy.Requirement{ScopesAll: []string{"mcp:write"}}),
			deny("push_files"),
			allow("tools/call", "fork_*", write),
			allow("tools/call", "list_*", read),
			allow("tools/call", "search_*", read),
			deny("run_workflow"),
			allow("tools/call", "add_*", write),
			allow("tools/call", "request_*", write),
			deny("dismiss_*"),
			allow("tools/call", "assign_copilot_to_issue", toolpolicy.Requirement{ScopesAll: []string{"mcp:write"}}),
			allow("prompts/get", "*", toolpolicy.Requirement{ScopesAny: []string{"mcp:prompts"}}),
			allow("resources/read", "repo://*", read),
			allow("tools/call", "get_file_*", read),
			allow("tools/call", "get_*", read), // decides get_me
		},
	}
}

// policyPhase is issue 17's measurement: (c) against (c) with benchPolicy,
// same backend, same token, in interleaved rounds at -c connections; the
// ratio p/c with its interval is the policy's added cost. (p1), the same
// with benchPolicy's last rule alone, in the same rounds, separates what
// any policy costs (reading and parsing the body) from what 19 more rules
// cost.
func (s *session) policyPhase() error {
	cfg := s.cfg
	cases := []benchCase{
		s.cases[3],
		{"(p1) mcp_auth + 1-rule tool_policy", s.policy1T, func() *picker { return fixed(s.cached) }},
		{"(p) mcp_auth + 20-rule tool_policy", s.policyT, func() *picker { return fixed(s.cached) }},
	}
	if err := checkPolicyActive(s.ctx, s.policyT, s.gated, s.cached); err != nil {
		return fmt.Errorf("%w (logs in %s)", err, s.dir)
	}
	// With -profile-dir: (c) and (p) profiled apart first, so that
	// go tool pprof -diff_base c p shows what the policy adds.
	s.profileRuns([]profileRun{{"c", s.cached, s.gated}, {"p", s.cached, s.policyT}})
	s.logf("policy: %d rounds of (c), (p1), (p) at concurrency %d", cfg.Rounds, cfg.Conc)
	rounds, lats := interleave(3, cfg.Rounds, func(i int) (result, []time.Duration) {
		cs := cases[i]
		return s.withCPU(func() (result, []time.Duration) { return runRaw(cs.name, cs.t, cs.p(), cfg.Conc, s.roundDuration()) })
	}, s.logf)
	s.rep.policy = &policyReport{
		c: combine(rounds[0], lats[0]), p1: combine(rounds[1], lats[1]), p: combine(rounds[2], lats[2]),
		pc: pairedEstimate(rounds[0], rounds[2]), pcCPU: pairedCPUEstimate(rounds[0], rounds[2]),
		p1c: pairedEstimate(rounds[0], rounds[1]), p1cCPU: pairedCPUEstimate(rounds[0], rounds[1]),
		pp1: pairedEstimate(rounds[1], rounds[2]), pp1CPU: pairedCPUEstimate(rounds[1], rounds[2]),
		noiseP99: halvesP99(rounds[0], lats[0]),
	}
	return nil
}

// checkPolicyActive makes sure that (p) runs the policy and (c) none: a
// tools/call of delete_repository, denied by the first rule, must get the
// JSON-RPC error -32003 from (p) and the backend's result from (c).
func checkPolicyActive(ctx context.Context, policy, gated target, tok string) error {
	const body = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_repository","arguments":{}}}`
	for _, tc := range []struct {
		t    target
		want string
	}{{policy, `"code":-32003`}, {gated, `"result":`}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+tc.t.addr+tc.t.path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), tc.want) {
			return fmt.Errorf("policy check via %s: status %d, answer without %s", tc.t.addr, resp.StatusCode, tc.want)
		}
	}
	return nil
}

// policyReport is the -policy-only phase's part of the report.
type policyReport struct {
	c, p1, p result
	// pc is p/c throughput from the paired rounds, pcCPU c/p Caddy CPU per
	// request; p1c and pp1 the same for p1 against c and p against p1.
	pc, pcCPU, p1c, p1cCPU, pp1, pp1CPU estimate
	noiseP99                            time.Duration
}
