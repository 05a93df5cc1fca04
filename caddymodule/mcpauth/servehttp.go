package mcpauth

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/mcpgate/caddymodule/jwtverify"
)

// ServeHTTP implements caddyhttp.MiddlewareHandler. Without a tool policy it
// never wraps the ResponseWriter; with one it wraps it to note the status
// for the audit entry when the audit logger is enabled (flushes pass
// straight through) and, for list calls
// the policy restricts, to filter the answer (an SSE stream event by
// event).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.isMetadataPath(r.URL.Path) {
		h.metrics.outcome(outcomeMetadata, "served")
		h.serveMetadata(w, r)
		return nil
	}
	if r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		h.metrics.outcome(outcomePreflight, "served")
		servePreflight(w)
		return nil
	}

	raw, res := bearerToken(r.Header)
	switch res {
	case bearerMissing:
		return h.reject(w, r, rejection{status: http.StatusUnauthorized, reason: "no_token",
			desc: "a bearer token in the Authorization header is required"})
	case bearerDuplicate:
		return h.reject(w, r, rejection{status: http.StatusBadRequest, reason: "duplicate_authorization",
			code: "invalid_request", desc: "more than one Authorization header"})
	case bearerMalformed:
		return h.reject(w, r, invalidToken("malformed"))
	}
	// The b64token syntax check (RFC 6750 §2.1) runs only on the paths
	// that reject: a token that verifies is always a b64token (see
	// bearerToken), so the cached path skips a pass over every byte.
	if len(raw) > h.MaxTokenSize {
		if !isB64Token(raw) {
			return h.reject(w, r, invalidToken("malformed"))
		}
		return h.reject(w, r, invalidToken("too_large"))
	}

	claims, err := h.verifier.Verify(r.Context(), raw)
	if err != nil {
		if !isB64Token(raw) {
			return h.reject(w, r, invalidToken("malformed"))
		}
		if errors.Is(err, jwtverify.ErrInvalidToken) {
			rej := invalidToken(jwtverify.Reason(err))
			rej.detail = jwtverify.Detail(err)
			return h.reject(w, r, rej)
		}
		if r.Context().Err() != nil {
			return h.reject(w, r, canceled(""))
		}
		if errors.Is(err, jwtverify.ErrKeysUnavailable) {
			// The issuer's keys have never loaded (JWKS or discovery
			// down): the token may be fine, so no invalid_token that
			// would send the client to sign in again.
			// The key set logs the failed fetch itself, once per fetch.
			return h.reject(w, r, rejection{status: http.StatusServiceUnavailable, reason: "keys_unavailable",
				code: "temporarily_unavailable", desc: "the token issuer's signing keys are unavailable", retry: true})
		}
		h.logger.Error("token verification failed", zap.Error(err))
		return h.reject(w, r, rejection{status: http.StatusServiceUnavailable, reason: "verify_error", desc: "token verification is unavailable", retry: true})
	}
	if missing := claims.MissingScopes(h.RequiredScopes); len(missing) > 0 {
		if !claims.HasScopeClaim {
			// Some providers (zitadel's OP, Keycloak without a scope
			// mapper) put no scope claim at all in their access tokens.
			return h.reject(w, r, rejection{status: http.StatusForbidden, reason: "no_scope_claim",
				code: "insufficient_scope", desc: "the token has no scope claim (scope or scp); this server requires scopes", sub: claims.Subject})
		}
		return h.reject(w, r, rejection{status: http.StatusForbidden, reason: "insufficient_scope",
			code: "insufficient_scope", desc: "the token lacks a required scope", sub: claims.Subject})
	}

	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl != nil {
		sub, scope, clientID, iss := claims.Identity()
		repl.Set("http.auth.user.id", sub)
		repl.Set("http.auth.user.scope", scope)
		repl.Set("http.auth.user.client_id", clientID)
		repl.Set("http.auth.user.iss", iss)
	}

	// The tool policy decides before the upstream token is fetched, so a
	// refused call costs no token exchange and never reaches the backend.
	if h.policy != nil && r.Method == http.MethodPost {
		// The start time and the answered status are only for the audit
		// entry: neither is taken when the audit logger is off (below
		// INFO), which spares every call the clock read and the
		// statusRecorder (an allocation, and a hop on every Write).
		audit := h.audit.Core().Enabled(zapcore.InfoLevel)
		var start time.Time
		if audit {
			start = h.now()
		}
		var pc policyCall
		if done, err := h.checkPolicy(w, r, &pc, claims, raw, repl); done {
			if pc.decision != "" {
				h.auditCall(&pc, claims, start)
			}
			return err
		}
		if !audit {
			err := h.forward(w, r, next, claims, raw, &pc)
			h.auditCall(&pc, claims, start) // metrics only
			return err
		}
		sr := &statusRecorder{ResponseWriter: w}
		err := h.forward(sr, r, next, claims, raw, &pc)
		pc.status = answeredStatus(sr.status, err)
		h.auditCall(&pc, claims, start)
		return err
	}
	return h.forward(w, r, next, claims, raw, nil)
}

// forward fetches the upstream token, rewrites the request's headers and
// passes it to next, through the tool policy's list filter when pc has a
// request whose answer lists what the policy restricts.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, claims *jwtverify.Claims, raw string, pc *policyCall) error {
	h.rewriteHeaders(r.Header)
	if h.upstream != nil {
		v, err := h.upstream.HeaderValue(r.Context(), claims, raw)
		switch {
		case err == nil:
			// upstreamKey is canonical (Provision), so this is Header.Set
			// without canonicalising the name on every request. The slice
			// is new each time: later handlers may edit values in place.
			r.Header[h.upstreamKey] = []string{v}
		case errors.Is(err, ErrNoUpstreamToken):
			if h.OnMissingUpstream != OnMissingUpstreamPass {
				return h.reject(w, r, rejection{status: http.StatusForbidden, reason: "no_upstream_token",
					code: "upstream_account_not_linked", sub: claims.Subject,
					desc: fmt.Sprintf("link your %s account at %s, then retry", h.LinkAccount, h.LinkURL),
					link: h.LinkURL})
			}
			h.logger.Debug("no upstream token; forwarding without it", zap.String("sub", claims.Subject))
		case errors.Is(err, ErrSubjectTokenRejected):
			r2 := invalidToken("subject_rejected")
			r2.sub = claims.Subject
			return h.reject(w, r, r2)
		case r.Context().Err() != nil:
			return h.reject(w, r, canceled(claims.Subject))
		default:
			h.logger.Error("upstream token source unavailable", zap.String("sub", claims.Subject), zap.Error(err))
			return h.reject(w, r, rejection{status: http.StatusServiceUnavailable, reason: "source_unavailable",
				code: "temporarily_unavailable", desc: "the upstream token source is unavailable", retry: true, sub: claims.Subject})
		}
	}
	h.metrics.outcome(outcomeAllowed, "ok")
	if pc != nil {
		return h.serveFiltered(w, withoutTrailers(r), next, pc, claims.Subject)
	}
	return next.ServeHTTP(w, withoutTrailers(r))
}

// withoutTrailers returns a shallow copy of r without request trailers, for
// the next handler. Caddy's reverse_proxy forwards request trailers, and
// they are not headers, so without this a chunked request could smuggle an
// Authorization or upstream-header trailer past rewriteHeaders to the
// backend. The copy matters: net/http fills the original request's Trailer
// map (creating it if nil, also for undeclared trailers) when the body
// reaches EOF, after this handler has run; reverse_proxy reads the Trailer
// of the request it was given, which is the copy and stays nil.
//
// An HTTP/1.x request without chunked transfer coding cannot carry trailers
// (net/http reads them only at the end of a chunked body), so it is passed
// on as is: the copy would be the largest allocation of the cached path
// (docs/performance.md), and most MCP requests are such requests.
func withoutTrailers(r *http.Request) *http.Request {
	delete(r.Header, "Trailer")
	if r.ProtoMajor == 1 && len(r.TransferEncoding) == 0 && r.Trailer == nil {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Trailer = nil
	return r2
}

// rewriteHeaders removes the client's Authorization header (unless
// keep_authorization) and every client copy of the upstream header, also
// spellings with "_" for "-" that some backends treat as the same header.
// Request trailers are dropped separately, by withoutTrailers.
func (h *Handler) rewriteHeaders(hdr http.Header) {
	if !h.KeepAuthorization {
		delete(hdr, "Authorization")
	}
	for k := range hdr {
		// Most names differ in length from both, which sameHeaderName
		// would find only after a call.
		if n := len(k); n != len(h.upstreamKey) && n != len(legacyUpstreamHeader) {
			continue
		}
		if sameHeaderName(k, h.upstreamKey) || sameHeaderName(k, legacyUpstreamHeader) {
			delete(hdr, k)
		}
	}
}

// sameHeaderName reports whether two header names are the same once case is
// ignored and "_" and "-" are treated as equal, as some backends (CGI-style
// servers, frameworks mapping headers to variables) do. Both sides are
// normalised, so an upstream_header spelled with "_" also catches client
// copies spelled with "-" and the reverse.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y && lowerASCII(x) != lowerASCII(y) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
