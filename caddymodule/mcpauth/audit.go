package mcpauth

import (
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// auditCall writes the audit entry of one MCP POST request (logger
// http.handlers.mcp_auth.audit, level INFO) and counts its calls in
// caddy_mcp_auth_calls_total. The entry names the user, the client, the
// call (for a batch: the first refused call, else the first; "calls" gives
// the batch's size), the decision, the status answered and the time taken
// including the backend's answer. It never holds the call's arguments or
// result, nor any token.
func (h *Handler) auditCall(pc *policyCall, claims *jwtverify.Claims, start time.Time) {
	if pc.req != nil {
		for i := range pc.req.Calls {
			m, n := h.policy.CallLabels(&pc.req.Calls[i])
			h.metrics.call(m, n, pc.decision)
		}
	}
	c := h.audit.Check(zapcore.InfoLevel, "mcp call")
	if c == nil {
		return
	}
	fields := make([]zap.Field, 0, 11)
	fields = append(fields,
		zap.String("user", claims.Subject),
		zap.String("client_id", claims.ClientID),
		zap.String("method", pc.method),
		zap.String("tool", pc.name),
		zap.String("decision", pc.decision),
		zap.Int("status", pc.status),
		zap.Duration("duration", h.now().Sub(start)),
	)
	if pc.req != nil && len(pc.req.Calls) != 1 {
		fields = append(fields, zap.Int("calls", len(pc.req.Calls)))
	}
	if pc.d.Reason != "" {
		fields = append(fields, zap.Int("rule", pc.d.Rule), zap.String("reason", pc.d.Reason))
	}
	c.Write(fields...)
}

// answeredStatus is the status the client was answered: what the next
// handler wrote, else the status of the error it returned (which
// handle_errors or Caddy's default answer turn into a response), else 200.
func answeredStatus(written int, err error) int {
	if written != 0 {
		return written
	}
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode != 0 {
			return he.StatusCode
		}
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

// statusRecorder notes the status a response is answered with. It wraps
// nothing else: Flush, Hijack and the rest reach the client's
// ResponseWriter through Unwrap (http.ResponseController), so streaming
// answers flush straight through.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (sr *statusRecorder) WriteHeader(code int) {
	if sr.status == 0 && code >= 200 {
		sr.status = code
	}
	sr.ResponseWriter.WriteHeader(code)
}

func (sr *statusRecorder) Write(p []byte) (int, error) {
	if sr.status == 0 {
		sr.status = http.StatusOK
	}
	return sr.ResponseWriter.Write(p)
}

// Unwrap returns the client's ResponseWriter, for http.ResponseController.
func (sr *statusRecorder) Unwrap() http.ResponseWriter { return sr.ResponseWriter }
