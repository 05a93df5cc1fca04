// Command mcpgate-idp runs mcpgate's OAuth 2.1 authorization server (package idp) on its own.
//
//	mcpgate-idp -dev                                   # development login, data in the default dir
//	MCPGATE_PG_DSN=postgres://... MCPGATE_IDP_KEY=... mcpgate-idp ...   # replicas on one PostgreSQL
//	GITHUB_CLIENT_ID=... GITHUB_CLIENT_SECRET=... MCPGATE_IDP_KEY=... MCPGATE_GATEWAY_SECRET=... \
//	  mcpgate-idp -issuer https://idp.example.com -listen :9000 \
//	  -default-resource https://mcp.example.com/mcp -scopes "mcp mcp:tools"
//
// Run with -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/idp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mcpgate-idp:", err)
		os.Exit(1)
	}
}

func defaultDataDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "mcpgate-idp")
	}
	return ".mcpgate-idp"
}

type config struct {
	listen, issuer, dataDir                      string
	postgresDSN                                  string
	ghClientID, ghClientSecret, ghURL, ghAPIURL  string
	ghScopes                                     string
	defaultResource, allowedResources            string
	gatewayID, gatewaySecretFile                 string
	gatewayAudiences                             stringList
	scopes                                       string
	dev, generateKey, allowPrivateCIMD, inMemory bool
	signingAlg, logLevel                         string
	accessTTL, refreshTTL, refreshGrace          time.Duration
	regRate, maxClients                          int
	upstream                                     upstreamFlags
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	if v = strings.TrimSpace(v); v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("mcpgate-idp", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9000", "address to listen on")
	fs.StringVar(&c.issuer, "issuer", "http://127.0.0.1:9000", "issuer URL, exactly as clients reach this server (no trailing slash); all metadata URLs derive from it, never from request headers")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "directory for the bbolt database (idp.db) and, in development, the generated encryption key (idp.key); created 0700, files 0600. With -postgres-dsn only an existing idp.key is read from it")
	// No default from the environment here: PrintDefaults would show it, password included.
	fs.StringVar(&c.postgresDSN, "postgres-dsn", "", "PostgreSQL database (a postgres:// URL or libpq key=value pairs) to keep the state in instead of -data-dir's bbolt file, so that several mcpgate-idp replicas share it (default: env "+postgresDSNEnv+"; prefer the env var, so the password stays off the command line: flags are visible in ps). Every replica needs the same encryption key (env "+idp.EncryptionKeyEnv+" or an existing <data-dir>/idp.key), which is then never generated, not even with -dev")
	fs.BoolVar(&c.inMemory, "in-memory", false, "keep everything in memory (nothing survives a restart; for demos and tests)")
	fs.StringVar(&c.ghClientID, "github-client-id", getenv("GITHUB_CLIENT_ID"), "GitHub OAuth app client ID (env GITHUB_CLIENT_ID); enables real \"Sign in with GitHub\"")
	fs.StringVar(&c.ghClientSecret, "github-client-secret", "", "GitHub OAuth app client secret (default: env GITHUB_CLIENT_SECRET; prefer the env var: flags are visible in ps)")
	fs.StringVar(&c.ghURL, "github-url", "https://github.com", "GitHub web base URL (GitHub Enterprise: https://ghe.example.com)")
	fs.StringVar(&c.ghAPIURL, "github-api-url", "https://api.github.com", "GitHub REST API base URL (GitHub Enterprise: https://ghe.example.com/api/v3); the only audience token exchange accepts")
	fs.StringVar(&c.ghScopes, "github-scopes", "", "space-separated scopes to request from a GitHub OAuth app (default none: public access; GitHub Apps ignore scopes)")
	fs.StringVar(&c.defaultResource, "default-resource", "", "access token audience when a client sends no resource parameter (default: the issuer); normally your MCP URL, e.g. https://mcp.example.com/mcp")
	fs.StringVar(&c.allowedResources, "allowed-resources", "", "comma-separated resources clients may request besides the default (default: any absolute http(s) URI)")
	fs.StringVar(&c.gatewayID, "gateway-client-id", "gateway", "client_id of the gateway allowed to use token exchange; its secret comes from env MCPGATE_GATEWAY_SECRET or -gateway-secret-file; without a secret token exchange is disabled")
	fs.Var(&c.gatewayAudiences, "gateway-audience", "a resource (MCP URL) the gateway serves; repeatable. The gateway may exchange only access tokens issued for one of these (default: the -default-resource value; token exchange needs one or the other)")
	fs.StringVar(&c.scopes, "scopes", "mcp", "space-separated scopes clients may request (scopes_supported), e.g. \"mcp mcp:tools\"; must include every scope the gateway requires")
	fs.StringVar(&c.gatewaySecretFile, "gateway-secret-file", "", "file holding the gateway client secret (alternative to MCPGATE_GATEWAY_SECRET)")
	fs.BoolVar(&c.dev, "dev", false, "development login page (pick any username, optionally paste a GitHub token) when no GitHub app is configured; also generates the encryption key file on first run. Never in production")
	fs.BoolVar(&c.generateKey, "generate-key", false, "generate <data-dir>/idp.key (0600) on first run if MCPGATE_IDP_KEY is not set (implied by -dev)")
	fs.BoolVar(&c.allowPrivateCIMD, "allow-private-cimd", false, "allow Client ID Metadata Documents on private/loopback addresses (development only)")
	fs.StringVar(&c.signingAlg, "signing-alg", "RS256", "access token signing algorithm: RS256 or ES256")
	fs.DurationVar(&c.accessTTL, "access-token-ttl", time.Hour, "access token lifetime")
	fs.DurationVar(&c.refreshTTL, "refresh-token-ttl", 30*24*time.Hour, "absolute refresh token lifetime")
	fs.DurationVar(&c.refreshGrace, "refresh-grace", 10*time.Second, "window in which a rotated refresh token may be reused by concurrent refreshes")
	fs.IntVar(&c.regRate, "registration-rate", 20, "dynamic registrations per client address per minute (negative: unlimited)")
	fs.IntVar(&c.maxClients, "max-clients", 10000, "maximum number of registered clients")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	c.upstream.register(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: mcpgate-idp [flags]\n\nmcpgate's OAuth 2.1 authorization server with GitHub login.\n\n"+
			"Environment: MCPGATE_IDP_KEY (base64 32-byte storage encryption key), MCPGATE_GATEWAY_SECRET,\n"+
			"GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, MCPGATE_REGISTRATION_TOKEN (optional initial access token\n"+
			"required to register clients), MCPGATE_PG_DSN (the -postgres-dsn default).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	// Secrets default from the environment after parsing, so that -h never prints them.
	if c.ghClientSecret == "" {
		c.ghClientSecret = getenv("GITHUB_CLIENT_SECRET")
	}
	if c.postgresDSN == "" {
		c.postgresDSN = getenv(postgresDSNEnv)
	}
	if c.postgresDSN != "" && c.inMemory {
		return nil, errors.New("-postgres-dsn and -in-memory exclude each other")
	}
	return c, nil
}

// replicaKey returns the encryption key from MCPGATE_IDP_KEY, else from an existing
// <dataDir>/idp.key; it never creates one.
func replicaKey(dataDir string, getenv func(string) string) ([]byte, error) {
	if v := getenv(idp.EncryptionKeyEnv); v != "" {
		return idp.ParseEncryptionKey(v)
	}
	path := filepath.Join(dataDir, "idp.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("-postgres-dsn needs the same encryption key on every replica, so none is generated (not even with -dev or -generate-key): set %s or create %s on every replica", idp.EncryptionKeyEnv, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the encryption key: %w", err)
	}
	return idp.ParseEncryptionKey(string(b))
}

// postgresDSNEnv is the environment variable -postgres-dsn defaults to.
const postgresDSNEnv = "MCPGATE_PG_DSN"

// openStorage sets opts' storage and encryption key: a PostgreSQL database with -postgres-dsn,
// else the bbolt file in -data-dir, else (-in-memory) nothing. It returns what closes it. With
// PostgreSQL the key is never generated: each replica would make its own, and none could read
// what another stored.
func openStorage(ctx context.Context, c *config, getenv func(string) string, opts *idp.Options) (func(), error) {
	switch {
	case c.postgresDSN != "":
		key, err := replicaKey(c.dataDir, getenv)
		if err != nil {
			return nil, err
		}
		// The error names neither the DSN nor its user or password.
		st, err := idp.OpenPostgresStorage(ctx, c.postgresDSN, idp.PostgresOptions{})
		if err != nil {
			return nil, fmt.Errorf("-postgres-dsn: %w", err)
		}
		opts.Storage, opts.EncryptionKey = st, key
		return st.Close, nil
	case !c.inMemory:
		key, err := idp.LoadOrCreateEncryptionKey(c.dataDir, c.dev || c.generateKey)
		if err != nil {
			return nil, err
		}
		store, err := idp.OpenBoltStore(filepath.Join(c.dataDir, "idp.db"))
		if err != nil {
			return nil, err
		}
		opts.Store, opts.EncryptionKey = store, key
		return func() { store.Close() }, nil
	}
	return func() {}, nil
}

// exchangeClients is the gateway's token-exchange client: none without a secret; with one, its
// audiences are the -gateway-audience values, else the -default-resource, else an error (an
// exchange client must name the resources it serves).
func exchangeClients(c *config, secret string) ([]idp.ExchangeClient, error) {
	if secret == "" {
		return nil, nil
	}
	aud := []string(c.gatewayAudiences)
	if len(aud) == 0 && c.defaultResource != "" {
		aud = []string{c.defaultResource}
	}
	if len(aud) == 0 {
		return nil, errors.New("token exchange (a gateway secret is set) needs the resources the gateway serves: pass -gateway-audience https://mcp.example.com/mcp (repeatable) or -default-resource")
	}
	return []idp.ExchangeClient{{ID: c.gatewayID, Secret: secret, Audiences: aud}}, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	c, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	opts := idp.Options{
		Issuer:                   c.issuer,
		SigningAlgorithm:         c.signingAlg,
		DevLogin:                 c.dev && c.ghClientID == "",
		DefaultResource:          c.defaultResource,
		Scopes:                   strings.Fields(c.scopes),
		AccessTokenTTL:           c.accessTTL,
		RefreshTokenTTL:          c.refreshTTL,
		RefreshGrace:             c.refreshGrace,
		RegistrationRateLimit:    c.regRate,
		MaxClients:               c.maxClients,
		RegistrationInitialToken: getenv("MCPGATE_REGISTRATION_TOKEN"),
		AllowPrivateCIMD:         c.allowPrivateCIMD,
		Logger:                   logger,
		GitHub: idp.GitHubConfig{
			ClientID: c.ghClientID, ClientSecret: c.ghClientSecret,
			BaseURL: c.ghURL, APIURL: c.ghAPIURL, Scopes: strings.Fields(c.ghScopes),
			LinkOnly: c.upstream.githubLinkOnly,
		},
		Upstreams:   c.upstream.options(getenv),
		IDJAGTrusts: c.upstream.idjagTrusts(),
	}
	if c.allowedResources != "" {
		for _, r := range strings.Split(c.allowedResources, ",") {
			if r = strings.TrimSpace(r); r != "" {
				opts.AllowedResources = append(opts.AllowedResources, r)
			}
		}
	}
	secret := getenv("MCPGATE_GATEWAY_SECRET")
	if c.gatewaySecretFile != "" {
		b, err := os.ReadFile(c.gatewaySecretFile)
		if err != nil {
			return fmt.Errorf("-gateway-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if opts.ExchangeClients, err = exchangeClients(c, secret); err != nil {
		return err
	}
	if secret == "" {
		logger.Warn("no gateway secret (MCPGATE_GATEWAY_SECRET): token exchange is disabled")
	}
	if c.ghClientID == "" && !c.dev && len(opts.Upstreams) == 0 && len(opts.IDJAGTrusts) == 0 {
		return errors.New("configure a GitHub OAuth app (-github-client-id / GITHUB_CLIENT_ID), an upstream OpenID provider (-oidc-issuer), or pass -dev for the development login")
	}
	if opts.DevLogin {
		logger.Warn("development login is enabled: anyone can sign in as any user")
	}

	closeStorage, err := openStorage(ctx, c, getenv, &opts)
	if err != nil {
		return err
	}
	defer closeStorage()
	srv, err := idp.New(opts)
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("mcpgate-idp listening", "addr", ln.Addr().String(), "issuer", c.issuer, "github", c.ghClientID != "", "dev_login", opts.DevLogin, "token_exchange", secret != "", "postgres", c.postgresDSN != "")
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
