// Package idp is mcpgate's bundled OAuth 2.1 authorization server: RFC 8414 metadata, dynamic
// client registration (RFC 7591/7592), Client ID Metadata Documents, authorization code with PKCE
// S256, RFC 9068 JWT access tokens bound to a resource (RFC 8707), refresh token rotation,
// revocation (RFC 7009), introspection (RFC 7662), "Sign in with GitHub", sign-in through
// upstream OpenID providers (upstream.go), and token exchange
// (RFC 8693) that hands the signed-in user's GitHub token to the gateway.
//
// It has no Caddy dependency: build a Server with New and mount it as an http.Handler.
package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Server is the authorization server. It is an http.Handler; create it with New and stop its
// background work with Close.
type Server struct {
	opts      Options
	store     Store
	db        Storage // typed persistence over store
	ownsStore bool
	sealer    *sealer
	keys      *keyManager
	log       *slog.Logger
	mux       *http.ServeMux
	basePath  string // issuer path, "" or "/something"
	secure    bool   // issuer is https: Secure, __Host- cookies
	cookie    string // session cookie name

	regLimiter   *rateLimiter
	authzLimiter *rateLimiter // pending authorization requests per address
	loginLimiter *rateLimiter // sign-ins started at GitHub or an upstream provider per address
	csrfKey      []byte       // HMAC key of the stateless anonymous login CSRF token
	cimd         *cimdFetcher
	ghFlight     flightGroup
	upstreams    []*upstream // Options.Upstreams, in order
	idjagTrusts  []*idjagTrust

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// New validates opts, applies defaults, loads or creates the signing keys and starts the
// background cleanup and key rotation goroutine (stopped by Close).
func New(opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, store: opts.Store, db: opts.Storage, log: opts.Logger}
	if s.store == nil && s.db == nil {
		s.store = NewMemoryStore()
		s.ownsStore = true
		if opts.EncryptionKey == nil {
			opts.EncryptionKey = randomBytes(32)
		}
	}
	if opts.EncryptionKey == nil {
		return nil, errors.New("idp: Options.EncryptionKey is required with a persistent Store or Storage")
	}
	sl, err := newSealer(opts.EncryptionKey)
	if err != nil {
		return nil, err
	}
	s.sealer = sl
	s.csrfKey = deriveKey(opts.EncryptionKey, "mcpgate-idp anonymous login csrf v1")
	iu, _ := url.Parse(opts.Issuer)
	s.basePath = strings.TrimRight(iu.Path, "/")
	s.secure = iu.Scheme == "https"
	s.cookie = "mcpgate_idp_session"
	if s.secure {
		s.cookie = "__Host-mcpgate_idp_session"
	}
	if s.db == nil {
		s.db = NewKVStorage(s.store)
	}
	s.keys = &keyManager{store: s.db, sealer: sl, opts: &s.opts}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.keys.load(s.ctx); err != nil {
		s.cancel()
		return nil, err
	}
	if err := s.keys.maintain(s.ctx); err != nil {
		s.cancel()
		return nil, fmt.Errorf("idp: signing keys: %w", err)
	}
	s.regLimiter = newRateLimiter(opts.RegistrationRateLimit, opts.RegistrationRateWindow, opts.Now)
	s.authzLimiter = newRateLimiter(opts.AuthorizeRateLimit, opts.AuthorizeRateWindow, opts.Now)
	s.loginLimiter = newRateLimiter(opts.AuthorizeRateLimit, opts.AuthorizeRateWindow, opts.Now)
	s.cimd = newCIMDFetcher(s.ctx, &s.opts)
	for i := range s.opts.IDJAGTrusts {
		s.idjagTrusts = append(s.idjagTrusts, newIDJAGTrust(s.ctx, &s.opts.IDJAGTrusts[i], opts.Now))
	}
	for i := range s.opts.Upstreams {
		c := &s.opts.Upstreams[i]
		s.upstreams = append(s.upstreams, &upstream{
			cfg: c, redirect: s.endpoint("/oidc/" + c.Name + "/callback"), now: opts.Now, ctx: s.ctx,
		})
	}
	s.routes()

	s.wg.Add(1)
	go s.background()
	return s, nil
}

// Close stops the background goroutine and waits for it. It closes the Store only if New created
// it (the default memory store). Close is idempotent.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.ownsStore {
			err = s.store.Close()
		}
	})
	return err
}

func (s *Server) background() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.cleanup(s.ctx)
			s.regLimiter.prune()
			s.authzLimiter.prune()
			s.loginLimiter.prune()
			s.cimd.budget.prune()
			if err := s.keys.maintain(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Error("signing key maintenance failed", "error", err)
			}
		}
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) endpoint(p string) string { return s.opts.Issuer + p }

func (s *Server) routes() {
	m := http.NewServeMux()
	b := s.basePath
	m.HandleFunc("GET /.well-known/oauth-authorization-server"+b, s.handleMetadata)
	m.HandleFunc("GET /.well-known/openid-configuration"+b, s.handleMetadata)
	if b != "" {
		m.HandleFunc("GET "+b+"/.well-known/openid-configuration", s.handleMetadata)
		m.HandleFunc("GET "+b+"/.well-known/oauth-authorization-server", s.handleMetadata)
	}
	m.HandleFunc("GET "+b+"/jwks.json", s.handleJWKS)
	m.HandleFunc("POST "+b+"/register", cors(s.handleRegister))
	m.HandleFunc("GET "+b+"/register/{client_id}", cors(s.handleClientConfig))
	m.HandleFunc("PUT "+b+"/register/{client_id}", cors(s.handleClientConfig))
	m.HandleFunc("DELETE "+b+"/register/{client_id}", cors(s.handleClientConfig))
	m.HandleFunc("GET "+b+"/authorize", s.handleAuthorize)
	m.HandleFunc("GET "+b+"/login", s.handleLoginPage)
	m.HandleFunc("POST "+b+"/login", s.handleDevLogin)
	m.HandleFunc("GET "+b+"/login/github", s.handleGitHubStart)
	m.HandleFunc("GET "+b+"/github/callback", s.handleGitHubCallback)
	m.HandleFunc("GET "+b+"/login/oidc/{name}", s.handleUpstreamStart)
	m.HandleFunc("GET "+b+"/oidc/{name}/callback", s.handleUpstreamCallback)
	m.HandleFunc("GET "+b+"/consent", s.handleConsentPage)
	m.HandleFunc("POST "+b+"/consent", s.handleConsentPost)
	m.HandleFunc("GET "+b+"/account", s.handleAccount)
	m.HandleFunc("POST "+b+"/account/github-token", s.handleAccountPAT)
	m.HandleFunc("POST "+b+"/account/unlink", s.handleAccountUnlink)
	m.HandleFunc("POST "+b+"/logout", s.handleLogout)
	m.HandleFunc("POST "+b+"/token", cors(s.handleToken))
	m.HandleFunc("POST "+b+"/revoke", cors(s.handleRevoke))
	m.HandleFunc("POST "+b+"/introspect", s.handleIntrospect)
	m.HandleFunc("GET "+b+"/userinfo", cors(s.handleUserinfo))
	m.HandleFunc("POST "+b+"/userinfo", cors(s.handleUserinfo))
	// CORS preflight for the endpoints browser-based MCP clients call directly. No credentials
	// (cookies) are ever accepted cross-origin: the wildcard origin forbids them.
	for _, p := range []string{"/register", "/register/{client_id}", "/token", "/revoke", "/userinfo",
		"/jwks.json", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		path := b + p
		if strings.HasPrefix(p, "/.well-known/") {
			path = p + b
		}
		m.HandleFunc("OPTIONS "+path, preflight)
	}
	s.mux = m
}

// cors allows any origin to call a non-cookie API endpoint (browser-based MCP clients).
func cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
		h(w, r)
	}
}

func preflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, MCP-Protocol-Version")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
