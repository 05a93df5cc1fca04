package toolpolicy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Outcome is the result of a decision.
type Outcome uint8

const (
	// Allowed: forward the request to the backend.
	Allowed Outcome = iota
	// StepUp: refused, but a token with more scopes would be allowed.
	// Answer 403 with WWW-Authenticate: Bearer error="insufficient_scope",
	// scope="<Decision.Scope>" (and resource_metadata).
	StepUp
	// Forbidden: refused, and no scope can change that (a deny rule, the
	// deny default, or a failed claim matcher). Answer with HTTPStatus and
	// ErrorBody: a JSON-RPC error for each request id, which clients show
	// as the call's error.
	Forbidden
)

func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case StepUp:
		return "insufficient_scope"
	case Forbidden:
		return "forbidden"
	}
	return "unknown"
}

// Decision is the verdict on one request (one message or a whole batch: a
// batch with any refused call is refused whole).
type Decision struct {
	Outcome Outcome
	// Method and Name are those of the first refused call, for the audit
	// log and metrics labels (Name is client input: quote it in logs).
	Method, Name string
	// Rule is the 1-based position in Config.Rules of the rule that refused
	// the first refused call; 0 when the default did.
	Rule int
	// Reason says why, for logs: the method, the name (quoted, shortened),
	// the rule and what failed. It names claims, never their values.
	Reason string
	// Scope, for StepUp: every scope the request needs joined with every
	// scope the token already has (MCP 2026-07-28 step-up: the client asks
	// for exactly this), sorted, deduplicated, space-separated.
	Scope string

	req *Request
	p   *Policy
	id  *Identity
}

// maxNameInReason bounds how much of a client-supplied name a reason quotes.
const maxNameInReason = 96

// Decide returns the verdict of the policy on every call of req for the
// token described by id. Deciding an allowed request allocates nothing. It
// notes on each call the rule that decided it, for CallLabels: it writes to
// req, so one Request must not be decided by two goroutines at once (the
// Policy itself may be shared).
func (p *Policy) Decide(id *Identity, req *Request) Decision {
	d := Decision{}
	var needed []string
	for i := range req.Calls {
		c := &req.Calls[i]
		v := p.evaluate(id, c.Method, c.Name)
		c.rule, c.ruleOf = v.rule, p
		if v.outcome == Allowed {
			continue
		}
		if d.Outcome == Allowed || (v.outcome == Forbidden && d.Outcome == StepUp) {
			d.Outcome, d.Method, d.Name = v.outcome, c.Method, c.Name
			d.Rule, d.Reason = v.ruleIndex(), v.reason(c)
		}
		if v.outcome == StepUp {
			needed = append(needed, v.rule.scopesAll...)
			if len(v.rule.scopesAny) > 0 && !hasAny(id.scopes, v.rule.scopesAny) {
				needed = append(needed, v.rule.scopesAny[0])
			}
		}
	}
	if d.Outcome == Allowed {
		return d
	}
	d.req, d.p, d.id = req, p, id
	if len(req.Calls) > 1 {
		d.Reason += " (the batch of " + strconv.Itoa(len(req.Calls)) + " calls is refused whole)"
	}
	if d.Outcome == StepUp {
		d.Scope = challengeScope(needed, id.scopes)
	}
	return d
}

// Allows reports whether the token may make one call: the same verdict
// Decide gives for a request of that single call, without building a
// Decision.
func (p *Policy) Allows(id *Identity, method, name string) bool {
	return p.evaluate(id, method, name).outcome == Allowed
}

// verdict is the evaluation of one call.
type verdict struct {
	outcome Outcome
	rule    *rule  // nil: the default decided
	claim   string // the claim matcher that failed, if any
	unknown bool   // the default denied a method that is not an MCP method
}

func (v verdict) ruleIndex() int {
	if v.rule == nil {
		return 0
	}
	return v.rule.index
}

func (v verdict) reason(c *Call) string {
	var b strings.Builder
	b.WriteString(c.Method)
	if c.Name != "" {
		n := c.Name
		if len(n) > maxNameInReason {
			n = n[:maxNameInReason] + "..."
		}
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(n))
	}
	switch {
	case v.rule == nil && v.unknown:
		b.WriteString(": not an MCP method, and the default is deny")
	case v.rule == nil:
		b.WriteString(": no rule allows it, and the default is deny")
	case v.rule.deny:
		b.WriteString(": denied by rule " + strconv.Itoa(v.rule.index))
	case v.claim != "":
		b.WriteString(": claim " + strconv.Quote(v.claim) + " does not match rule " + strconv.Itoa(v.rule.index))
	default:
		b.WriteString(": the token lacks scopes rule " + strconv.Itoa(v.rule.index) + " requires")
	}
	return b.String()
}

// evaluate decides one call. It allocates nothing.
func (p *Policy) evaluate(id *Identity, method, name string) verdict {
	r := p.match(method, name)
	if r == nil {
		if !p.defaultDeny {
			return verdict{outcome: Allowed}
		}
		info, known := knownMethods[method]
		if !known || info.named != noName {
			return verdict{outcome: Forbidden, unknown: !known}
		}
		return verdict{outcome: Allowed}
	}
	return r.verdict(id)
}

// verdict is what rule r decides for the token id, on any call it matches.
func (r *rule) verdict(id *Identity) verdict {
	if r.deny {
		return verdict{outcome: Forbidden, rule: r}
	}
	for i := range r.claims {
		if !r.claims[i].match(id) {
			return verdict{outcome: Forbidden, rule: r, claim: r.claims[i].name}
		}
	}
	for _, s := range r.scopesAll {
		if !slices.Contains(id.scopes, s) {
			return verdict{outcome: StepUp, rule: r}
		}
	}
	if len(r.scopesAny) > 0 && !hasAny(id.scopes, r.scopesAny) {
		return verdict{outcome: StepUp, rule: r}
	}
	return verdict{outcome: Allowed, rule: r}
}

// match finds the rule for a call: the exact name, else the first glob,
// else nil.
func (p *Policy) match(method, name string) *rule {
	mr := p.methods[method]
	if mr == nil {
		return nil
	}
	if mr.all != nil {
		return mr.all
	}
	if r := mr.exact[name]; r != nil {
		return r
	}
	for _, r := range mr.globs {
		if r.matches(name) {
			return r
		}
	}
	return nil
}

func hasAny(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// challengeScope joins needed and held scopes for a step-up challenge:
// sorted, deduplicated, and without any held scope that could not be
// written in a quoted header parameter.
func challengeScope(needed, held []string) string {
	all := make([]string, 0, len(needed)+len(held))
	all = append(all, needed...)
	for _, s := range held {
		if _, err := checkScopes([]string{s}); err == nil {
			all = append(all, s)
		}
	}
	slices.Sort(all)
	return strings.Join(slices.Compact(all), " ")
}

// HTTPStatus is the status to answer a refused request with: 403 for
// StepUp; for Forbidden 200 when ErrorBody has a JSON-RPC error to carry
// (clients read a JSON-RPC error only from a successful response; an HTTP
// error surfaces as a transport failure), 403 when the request held only
// notifications. 0 for Allowed.
func (d *Decision) HTTPStatus() int {
	switch d.Outcome {
	case StepUp:
		return http.StatusForbidden
	case Forbidden:
		if d.ErrorBody() != nil {
			return http.StatusOK
		}
		return http.StatusForbidden
	}
	return 0
}

// ErrorBody is the JSON-RPC answer to a refused request: an error response
// (code CodeForbidden, the call's method and name in error.data) for every
// call that has an id, as one object, or as an array when the request was a
// batch; nil when no call has an id or the request was allowed. Calls of a
// refused batch that were themselves allowed get the same code with a
// message saying the batch was refused.
func (d *Decision) ErrorBody() []byte {
	if d.Outcome == Allowed || d.req == nil {
		return nil
	}
	var b []byte
	n := 0
	for i := range d.req.Calls {
		c := &d.req.Calls[i]
		if c.ID == nil {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		var msg string
		switch d.p.evaluate(d.id, c.Method, c.Name).outcome {
		case Allowed:
			msg = "Forbidden: refused with the other calls of its batch"
		case StepUp:
			msg = "Forbidden: this call needs a token with more scopes"
		default:
			msg = "Forbidden: the gateway's policy does not allow this call"
		}
		b = appendError(b, c.ID, CodeForbidden, msg, c.Method, c.Name)
	}
	if n == 0 {
		return nil
	}
	if d.req.Batch {
		b = append(append([]byte{'['}, b...), ']')
	}
	return b
}
