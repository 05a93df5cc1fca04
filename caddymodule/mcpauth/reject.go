package mcpauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// rejection describes a refused request.
type rejection struct {
	status int
	reason string // fixed label for metrics, logs and {http.auth.mcp_auth.error}
	detail string // the verifier's explanation (logs only; never a token or key)
	code   string // OAuth error code ("" for a missing token)
	desc   string // fixed, secret-free description for the JSON body
	sub    string // the user, when known (logs only)
	link   string // link_url for upstream_account_not_linked
	scope  string // the challenge's scope when it is not required_scopes (tool policy step-up)
	retry  bool   // add Retry-After
}

// canceled is the rejection of a request whose context ended while mcp_auth
// waited (the client went away, or a server timeout): a client-side event,
// logged at debug and counted as rejected, never as a fault. 499 is the
// status Caddy's reverse_proxy records for it too.
func canceled(sub string) rejection {
	return rejection{status: statusClientClosedRequest, reason: "canceled", desc: "request canceled", sub: sub}
}

// statusClientClosedRequest is the non-standard 499 "client closed request".
const statusClientClosedRequest = 499

func invalidToken(reason string) rejection {
	desc := "the access token is invalid"
	if reason == "audience" {
		// Said apart so a client can tell the user that the authorization
		// server ignored the resource it asked for.
		desc = "the access token's audience is not this resource"
	}
	return rejection{status: http.StatusUnauthorized, reason: reason, code: "invalid_token", desc: desc}
}

// reject answers a refused request: challenge, CORS and cache headers, then
// either an error for handle_errors or a JSON body.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, rej rejection) error {
	hdr := w.Header()
	if rej.status == http.StatusUnauthorized || rej.status == http.StatusBadRequest ||
		(rej.status == http.StatusForbidden && rej.code == "insufficient_scope") {
		ch, ok := h.challenges[rej.code]
		if !ok || rej.scope != "" {
			scope := h.scope
			if rej.scope != "" {
				scope = rej.scope
			}
			ch = challengeParams{ResourceMetadata: h.rmURL, Scope: scope, Error: rej.code}.String()
		}
		hdr.Set("WWW-Authenticate", ch)
	}
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
	hdr.Set("Cache-Control", "no-store")
	if rej.retry {
		hdr.Set("Retry-After", h.retryAfter)
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.mcp_auth.error", rej.reason)
	}
	if rej.status >= 500 {
		h.metrics.outcome(outcomeFault, rej.reason)
	} else {
		h.metrics.outcome(outcomeRejected, rej.reason)
		if c := h.logger.Check(zapcore.DebugLevel, "request rejected"); c != nil {
			fields := []zap.Field{zap.Int("status", rej.status), zap.String("reason", rej.reason), zap.String("sub", rej.sub)}
			if rej.detail != "" {
				fields = append(fields, zap.String("detail", rej.detail))
			}
			c.Write(fields...)
		}
	}
	if hasErrorRoutes(r) {
		return caddyhttp.Error(rej.status, fmt.Errorf("mcp_auth: %s", rej.reason))
	}
	code := rej.code
	if code == "" {
		code = "unauthorized"
	}
	body := errorBody{Error: code, ErrorDescription: rej.desc, LinkURL: rej.link}
	writeJSON(w, rej.status, body)
	return nil
}

// hasErrorRoutes reports whether the serving Caddy server has handle_errors
// routes that should produce the error response.
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}

// errorBody is the short JSON error mcp_auth writes: RFC 6749 §5.2 style,
// never a token, key or stack trace.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
	LinkURL          string `json:"link_url,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, body errorBody) {
	b, _ := json.Marshal(body)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(b)+1))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, errorBody{Error: code, ErrorDescription: desc})
}

// servePreflight answers a CORS preflight on the protected path without
// authentication, so browser clients can then send the Authorization header.
func servePreflight(w http.ResponseWriter) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID")
	hdr.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version")
	hdr.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
