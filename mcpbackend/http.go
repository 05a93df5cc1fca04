package mcpbackend

import (
	"net"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/mcpgate/internal/loopback"
)

// This file serves the MCP server over streamable HTTP: the MCP endpoint, /healthz, and the Host
// check that replaces mcp-go's loopback protection (see Options.AllowedHosts).

// NewHTTPHandler returns the HTTP handler of the backend: the MCP streamable-HTTP endpoint at
// opts.Path (default /mcp) and GET /healthz (200 "ok", never calls GitHub); every other path is
// 404. The endpoint is stateless (no session ids; each POST stands alone, so any replica can serve
// any request) and offers no standalone SSE stream: GET on it answers 405 Method Not Allowed, as
// the MCP transport specification asks of servers without one. The GitHub token is read per
// request, from the token header or else Authorization: Bearer, and put in the request context
// (see token.go); a request whose two headers carry different tokens gets 400. It returns an
// error only for invalid Options.
func NewHTTPHandler(opts Options) (http.Handler, error) {
	b, err := newBackend(opts)
	if err != nil {
		return nil, err
	}
	streamable := server.NewStreamableHTTPServer(b.mcpServer(),
		server.WithEndpointPath(b.opts.Path),
		server.WithStateLess(true),
		server.WithDisableStreaming(true),
		server.WithHTTPContextFunc(httpContextFunc(b.opts.TokenHeader)),
		// Replaced by checkHost below, which allows a reverse proxy's Host deliberately.
		server.WithDisableLocalhostProtection(true),
		server.WithStreamableHTTPLogger(b.logger),
	)
	mux := http.NewServeMux()
	limit := b.opts.MaxRequestBytes
	mux.Handle(b.opts.Path, b.checkHost(b.checkCredentials(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit) // mcp-go reads the whole body otherwise
		streamable.ServeHTTP(w, r)
	}))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux, nil
}

// checkHost rejects, with 403, requests that arrived over a loopback connection carrying a Host
// that Options.AllowedHosts does not accept (DNS-rebinding protection).
func (b *backend) checkHost(next http.Handler) http.Handler {
	allowAll, allowed := false, map[string]bool{}
	for _, h := range b.opts.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "*" {
			allowAll = true
		} else if h != "" {
			allowed[strings.Trim(h, "[]")] = true
		}
	}
	if len(allowed) == 0 && !allowAll && !b.opts.AllowEnvToken {
		allowAll = true // the documented default: the gateway in front is the trust boundary
	}
	if allowAll {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if local != nil && loopback.HostPort(local.String()) && !loopback.HostPort(r.Host) && !allowed[hostOnly(r.Host)] {
			b.logger.Info("rejected request: Host not allowed on a loopback listener (see -allowed-hosts)",
				"host", truncate(r.Host, 100))
			http.Error(w, "Forbidden: Host header not allowed (see the backend's -allowed-hosts flag)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkCredentials answers 400 to a request whose token header and Authorization: Bearer carry
// different GitHub tokens (see token.go for why neither is picked). The answer and the log line
// name the headers, never their values.
func (b *backend) checkCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := readCredential(r.Header, b.opts.TokenHeader); err != nil {
			b.logger.Info("rejected request: the token header and Authorization: Bearer carry different tokens",
				"token_header", b.opts.TokenHeader)
			http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostOnly lowercases a Host header value and strips its port and IPv6 brackets, for matching
// against Options.AllowedHosts (whether a host is loopback is loopback.HostPort's rule).
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}
