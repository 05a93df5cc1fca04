package mcpauth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
	"github.com/mcpgate/mcpgate/internal/expirylru"
)

// Placeholders set for every MCP POST request when a tool policy is
// configured, for rate limits per user and tool and for access logs.
const (
	placeholderMCPMethod = "http.auth.mcp.method"
	placeholderMCPTool   = "http.auth.mcp.tool"
)

// Decision labels of the audit log and caddy_mcp_auth_calls_total beyond
// toolpolicy's outcomes (allowed, insufficient_scope, forbidden): requests
// refused before any decision.
const (
	decisionTooLarge       = "too_large"
	decisionHeaderMismatch = "header_mismatch"
	decisionMalformed      = "malformed"
)

// provisionPolicy compiles the tool policy and sets up what its request
// path needs: the identity cache and the audit logger.
func (h *Handler) provisionPolicy() error {
	if h.ToolPolicy == nil {
		return nil
	}
	p, err := toolpolicy.Compile(*h.ToolPolicy)
	if err != nil {
		return fmt.Errorf("mcp_auth: tool_policy: %w", err)
	}
	h.policy = p
	h.audit = h.logger.Named("audit")
	h.methodValues = make(map[string]any)
	for _, m := range toolpolicy.Methods() {
		h.methodValues[m] = m
	}
	// The identity cache is keyed by the verified-token cache's *Claims, so
	// it only hits when that cache is on, and needs to be no larger.
	if p.NeedsClaims() && h.VerifyCacheSize >= 0 {
		size := h.VerifyCacheSize
		if size == 0 {
			size = jwtverify.DefaultCacheSize
		}
		// expirylru, like the verified-token cache it follows: hits read
		// under a read lock, so they do not wait for each other (a
		// golang-lru Get takes the write lock on every hit).
		c, err := expirylru.New[*jwtverify.Claims, *toolpolicy.Identity](size)
		if err != nil {
			return fmt.Errorf("mcp_auth: tool_policy: %w", err)
		}
		h.identities = c
	}
	return nil
}

// policyCall is the state of one MCP POST request under the tool policy,
// kept from the decision to the audit entry.
type policyCall struct {
	req      *toolpolicy.Request
	id       *toolpolicy.Identity
	d        toolpolicy.Decision
	decision string // audit/metrics label
	method   string // the call the audit entry names: the first refused one, else the first
	name     string
	status   int
}

// identity returns the policy's view of the verified token: its scopes
// alone when no rule tests a claim, else the claims read from the token's
// payload, cached per verified token.
func (h *Handler) identity(claims *jwtverify.Claims, raw string) (*toolpolicy.Identity, error) {
	if !h.policy.NeedsClaims() {
		return h.policy.IdentityFromScopes(claims.Scopes), nil
	}
	if h.identities != nil {
		if id, ok := h.identities.Get(claims, h.now()); ok {
			return id, nil
		}
	}
	id, err := h.policy.IdentityFromJWT(raw)
	if err != nil {
		return nil, err
	}
	if h.identities != nil {
		h.identities.Add(claims, id, claims.Expiry)
	}
	return id, nil
}

// checkPolicy runs the tool policy on a POST request whose token is
// verified: it reads and inspects the body, decides, and answers a refused
// request itself, filling pc for the audit entry. done: the request was
// refused, and err is what ServeHTTP must return.
func (h *Handler) checkPolicy(w http.ResponseWriter, r *http.Request, pc *policyCall, claims *jwtverify.Claims, raw string, repl *caddy.Replacer) (done bool, err error) {
	body, err := toolpolicy.ReadRequestBody(r, h.policy.MaxBodyBytes())
	if err == nil {
		pc.req, err = toolpolicy.Inspect(r.Header, body)
	}
	if err != nil {
		return h.refuseUnreadable(w, r, pc, claims, err)
	}
	if len(pc.req.Calls) > 0 {
		pc.method, pc.name = pc.req.Calls[0].Method, pc.req.Calls[0].Name
	}

	pc.id, err = h.identity(claims, raw)
	if err != nil {
		// A verified token whose claims scope_claim cannot read.
		rej := invalidToken("policy_claims")
		rej.sub = claims.Subject
		return true, h.reject(w, r, rej)
	}
	pc.d = h.policy.Decide(pc.id, pc.req)
	pc.decision = pc.d.Outcome.String()
	if pc.d.Outcome != toolpolicy.Allowed {
		pc.method, pc.name = pc.d.Method, pc.d.Name
	}
	if repl != nil && pc.method != "" {
		// Replacer.Set takes any: a known method's value is boxed once
		// (Provision) rather than on every request.
		mv, ok := h.methodValues[pc.method]
		if !ok {
			mv = pc.method
		}
		repl.Set(placeholderMCPMethod, mv)
		repl.Set(placeholderMCPTool, pc.name)
	}
	switch pc.d.Outcome {
	case toolpolicy.StepUp:
		pc.status = http.StatusForbidden
		return true, h.reject(w, r, rejection{status: http.StatusForbidden, reason: "tool_insufficient_scope",
			code: "insufficient_scope", desc: "this call needs a token with more scopes", scope: pc.d.Scope,
			sub: claims.Subject, detail: pc.d.Reason})
	case toolpolicy.Forbidden:
		pc.status = pc.d.HTTPStatus()
		return true, h.refuseJSONRPC(w, r, pc.status, "tool_forbidden", pc.d.ErrorBody(), claims.Subject, pc.d.Reason)
	}
	return false, nil
}

// refuseUnreadable answers a POST whose body the policy could not decide
// on: too large (413), not JSON-RPC or headers that disagree with it (400,
// with the JSON-RPC error code toolpolicy chose), or cut short. Kept apart
// from checkPolicy so the allowed path does not pay for errors.As.
func (h *Handler) refuseUnreadable(w http.ResponseWriter, r *http.Request, pc *policyCall, claims *jwtverify.Claims, err error) (bool, error) {
	var re *toolpolicy.RequestError
	switch {
	case errors.As(err, &re):
		switch {
		case errors.Is(re, toolpolicy.ErrBodyTooLarge):
			pc.decision = decisionTooLarge
		case errors.Is(re, toolpolicy.ErrHeaderMismatch):
			pc.decision = decisionHeaderMismatch
		default:
			pc.decision = decisionMalformed
		}
		pc.status = re.Status
		return true, h.refuseJSONRPC(w, r, re.Status, pc.decision, re.ErrorBody(), claims.Subject)
	case r.Context().Err() != nil:
		return true, h.reject(w, r, canceled(claims.Subject))
	}
	// A body that ended early or broke off: the client's fault.
	pc.decision, pc.status = decisionMalformed, http.StatusBadRequest
	return true, h.refuseJSONRPC(w, r, http.StatusBadRequest, "body_unreadable", bodyUnreadable, claims.Subject)
}

// bodyUnreadable answers a request body that could not be read whole.
var bodyUnreadable = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"the request body could not be read"}}`)

// refuseJSONRPC answers a request the tool policy refused with a JSON-RPC
// error body (body nil: none, for a refused notification). These answers
// never go to handle_errors: an MCP client reads the JSON-RPC error (its
// code, -32020 or -32003, and the request's id) as the call's result.
func (h *Handler) refuseJSONRPC(w http.ResponseWriter, r *http.Request, status int, reason string, body []byte, sub string, detail ...string) error {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
	hdr.Set("Cache-Control", "no-store")
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.mcp_auth.error", reason)
	}
	h.metrics.outcome(outcomeRejected, reason)
	if c := h.logger.Check(zapcore.DebugLevel, "request rejected"); c != nil {
		fields := []zap.Field{zap.Int("status", status), zap.String("reason", reason), zap.String("sub", sub)}
		if len(detail) > 0 {
			fields = append(fields, zap.String("detail", detail[0]))
		}
		c.Write(fields...)
	}
	if body == nil {
		w.WriteHeader(status)
		return nil
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// serveFiltered passes the request on with its list results filtered, when
// the policy hides items from this token; otherwise it passes it on as is.
func (h *Handler) serveFiltered(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, pc *policyCall, sub string) error {
	f := h.policy.ResponseFilter(pc.id, pc.req)
	if f == nil {
		return next.ServeHTTP(w, r)
	}
	r.Header.Del("Accept-Encoding") // the filter reads plain bodies
	fw := f.Wrap(w)
	err := next.ServeHTTP(fw, r)
	if ferr := fw.Finish(); ferr != nil {
		// JSON was answered 502, an SSE stream was cut: never pass on a
		// list the filter could not read. A client that went away is no
		// fault of the backend's.
		lvl := zapcore.ErrorLevel
		if r.Context().Err() != nil {
			lvl = zapcore.DebugLevel
		}
		if c := h.logger.Check(lvl, "a list result could not be filtered; not passed on"); c != nil {
			c.Write(zap.String("sub", sub), zap.String("method", pc.method), zap.Error(ferr))
		}
	}
	return err
}
