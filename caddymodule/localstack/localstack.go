// Package localstack adds the `caddy mcpgate-local` command: the whole mcpgate stack on one
// machine, with no accounts and no configuration. It runs Caddy with a local Caddyfile (by
// default local.Caddyfile, embedded in the binary and linked from Caddyfile.examples: the IdP
// with development login and the mcp_auth gateway, both over automatic HTTPS with Caddy's
// internal CA) and, in the same process, the demo MCP backend that the gateway protects.
//
// The command writes only below its data directory: Caddy's certificates, the IdP's store, the
// gateway secret and Caddy's config autosave, which would otherwise overwrite the autosave of the
// user's own Caddy in ~/.config/caddy.
//
// It is a separate package so that a production Caddy built with only
// github.com/mcpgate/mcpgate/caddymodule carries neither the command nor the demo backend;
// ./xcaddy.sh builds both in.
package localstack

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"errors"
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

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/mcpbackend"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// Environment variables the local Caddyfile reads. The command sets MCPGATE_DATA_DIR and
// MCPGATE_BACKEND from its flags, MCPGATE_GATEWAY_SECRET unless it is set, and reads the ports.
const (
	EnvDataDir       = "MCPGATE_DATA_DIR"       // absolute data directory
	EnvGatewaySecret = "MCPGATE_GATEWAY_SECRET" // the gateway's client secret at the IdP
	EnvMCPPort       = "MCPGATE_MCP_PORT"       // HTTPS port of the gateway (default 8443)
	EnvIDPPort       = "MCPGATE_IDP_PORT"       // HTTPS port of the IdP (default 9443)
	EnvBackend       = "MCPGATE_BACKEND"        // host:port of the MCP backend (default 127.0.0.1:8090)
	EnvMetricsPort   = "MCPGATE_METRICS_PORT"   // loopback HTTP port of /metrics (default 9180)
	EnvGitHubAPIURL  = "MCPGATE_GITHUB_API_URL" // the GitHub API the IdP checks pasted tokens with and exchanges for
)

// DefaultCaddyfile is the local stack's configuration, used when Config.Caddyfile is empty, so
// that the command works from any directory. Caddyfile.examples/local.Caddyfile links to it.
//
//go:embed local.Caddyfile
var DefaultCaddyfile []byte

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mcpgate-local",
		Usage: "[--config <Caddyfile>] [--data-dir <dir>] [--demo-github | --github-api-url <url>] [--backend <host:port>]",
		Short: "Runs the local mcpgate stack: IdP, gateway and demo MCP backend over HTTPS",
		Long: `
Runs the whole mcpgate stack on this machine with no accounts and no configuration:
the IdP with development login and the mcp_auth gateway, both served by Caddy over
automatic HTTPS with Caddy's internal CA, and the demo MCP backend (GitHub tools)
behind the gateway, in this process.

State (the IdP's store, Caddy's certificates and CA, the gateway secret, Caddy's
config autosave) lives in --data-dir and nowhere else. Without --config the
built-in local.Caddyfile is used, so the command works from any directory. The command prints the MCP URL, the CA certificate to trust and the
client command to run. Ctrl-C stops everything.

With --demo-github the backend talks to an in-process fake GitHub API with two
users, so no GitHub account is needed; sign in with any name and paste the token
printed at start-up as the GitHub token. Without it, paste a real GitHub personal
access token on the login page.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("config", "c", "", "Caddyfile of the local stack (default: the built-in local.Caddyfile)")
			cmd.Flags().String("data-dir", "data", "Directory for the IdP's store, Caddy's certificates and the gateway secret")
			cmd.Flags().Bool("demo-github", false, "Serve a fake GitHub API in-process (demo users alice and bob)")
			cmd.Flags().String("github-api-url", "https://api.github.com", "GitHub REST API base URL the backend calls")
			cmd.Flags().String("backend", "127.0.0.1:8090", "Listen address of the demo MCP backend")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdLocal)
		},
	})
}

func cmdLocal(fl caddycmd.Flags) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, Config{
		Caddyfile:    fl.String("config"),
		DataDir:      fl.String("data-dir"),
		DemoGitHub:   fl.Bool("demo-github"),
		GitHubAPIURL: fl.String("github-api-url"),
		Backend:      fl.String("backend"),
		Out:          os.Stdout,
	})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}

// Config configures Run.
type Config struct {
	// Caddyfile is the path of the stack's Caddyfile. Default: DefaultCaddyfile.
	Caddyfile string
	// DataDir holds all state. Required; created 0700.
	DataDir string
	// DemoGitHub serves githubfake's demo API in-process and points the backend at it.
	DemoGitHub bool
	// GitHubAPIURL is the API the backend calls when DemoGitHub is off.
	// Default "https://api.github.com".
	GitHubAPIURL string
	// Backend is the backend's listen address. Default "127.0.0.1:8090".
	Backend string
	// Out receives the start-up summary. Default: discard.
	Out io.Writer
}

// Run starts the stack and blocks until ctx is done, then stops everything.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Backend == "" {
		cfg.Backend = "127.0.0.1:8090"
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	// The flags are the one source of truth for these: the Caddyfile reads them from the
	// environment, so set them even when the caller's environment had other values.
	os.Setenv(EnvDataDir, dataDir)
	os.Setenv(EnvBackend, cfg.Backend)
	apiURL := cfg.GitHubAPIURL
	if apiURL == "" {
		apiURL = "https://api.github.com"
	}
	if cfg.DemoGitHub {
		gh := &http.Server{Handler: githubfake.NewDemo(), ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo GitHub: %w", err)
		}
		go func() { _ = gh.Serve(ln) }()
		defer gh.Close()
		apiURL = "http://" + ln.Addr().String()
	}
	os.Setenv(EnvGitHubAPIURL, apiURL)

	// Adapt the configuration before anything is written, so that a bad --config leaves no
	// data directory or secret behind.
	cfgJSON, err := adaptCaddyfile(cfg.Caddyfile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if os.Getenv(EnvGatewaySecret) == "" {
		secret, err := loadOrCreateSecret(filepath.Join(dataDir, "gateway.secret"))
		if err != nil {
			return err
		}
		os.Setenv(EnvGatewaySecret, secret)
	}
	// Caddy saves every loaded config to ConfigAutosavePath, by default the autosave.json of
	// the user's own Caddy: keep the stack's under its data directory instead.
	caddy.ConfigAutosavePath = filepath.Join(dataDir, "caddy", "autosave.json")

	backend, err := mcpbackend.NewHTTPHandler(mcpbackend.Options{
		GitHubAPIURL: apiURL,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	bln, err := net.Listen("tcp", cfg.Backend)
	if err != nil {
		return fmt.Errorf("MCP backend: %w", err)
	}
	bsrv := &http.Server{Handler: backend, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = bsrv.Serve(bln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = bsrv.Shutdown(sctx)
	}()

	if err := caddy.Load(cfgJSON, true); err != nil {
		return fmt.Errorf("starting Caddy: %w", err)
	}
	defer func() { _ = caddy.Stop() }()

	mcpURL := fmt.Sprintf("https://localhost:%s/mcp", envOr(EnvMCPPort, "8443"))
	idpURL := fmt.Sprintf("https://localhost:%s", envOr(EnvIDPPort, "9443"))
	ca := filepath.Join(dataDir, "caddy", "pki", "authorities", "local", "root.crt")
	if err := waitForFile(ctx, ca, 30*time.Second); err != nil {
		return fmt.Errorf("Caddy's local CA did not appear at %s: %w", ca, err)
	}
	// Caddy issues the sites' certificates in the background: report "running" only once both
	// sites complete a TLS handshake with a certificate from that CA.
	for _, hostport := range []string{"localhost:" + envOr(EnvMCPPort, "8443"), "localhost:" + envOr(EnvIDPPort, "9443")} {
		if err := waitForTLS(ctx, hostport, ca, 30*time.Second); err != nil {
			return fmt.Errorf("no certificate for %s: %w", hostport, err)
		}
	}
	fmt.Fprintf(cfg.Out, "mcpgate local stack is running\n")
	fmt.Fprintf(cfg.Out, "  MCP server:   %s\n", mcpURL)
	fmt.Fprintf(cfg.Out, "  IdP:          %s\n", idpURL)
	fmt.Fprintf(cfg.Out, "  CA to trust:  %s\n", ca)
	fmt.Fprintf(cfg.Out, "  GitHub API:   %s\n", apiURL)
	if cfg.Caddyfile == "" {
		fmt.Fprintf(cfg.Out, "  Metrics:      http://127.0.0.1:%s/metrics\n", envOr(EnvMetricsPort, "9180"))
	}
	if cfg.DemoGitHub {
		fmt.Fprintf(cfg.Out, "  Demo GitHub tokens to paste at login: alice %s, bob %s\n", githubfake.AliceToken, githubfake.BobToken)
	}
	fmt.Fprintf(cfg.Out, "Try:\n  go run ./client/cmd/mcpgate-client -ca-cert %s %s\n", ca, mcpURL)
	fmt.Fprintf(cfg.Out, "Ctrl-C stops everything.\n")

	<-ctx.Done()
	fmt.Fprintf(cfg.Out, "stopping\n")
	return nil
}

// adaptCaddyfile reads the Caddyfile at path (DefaultCaddyfile when path is empty) and adapts
// it to Caddy's JSON.
func adaptCaddyfile(path string) ([]byte, error) {
	body, name := DefaultCaddyfile, "local.Caddyfile (built in)"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading the Caddyfile: %w", err)
		}
		body, name = b, path
	}
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": name})
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "%s\n", w)
	}
	return cfgJSON, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// loadOrCreateSecret reads the secret in path, or generates one into it with mode 0600.
func loadOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("gateway secret: %w", err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("gateway secret: %w", err)
	}
	return s, nil
}

// waitForTLS retries a TLS handshake with hostport, trusting only the CA in caFile.
func waitForTLS(ctx context.Context, hostport, caFile string, timeout time.Duration) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", caFile)
	}
	deadline := time.Now().Add(timeout)
	for {
		d := &tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: "localhost"}}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := d.DialContext(dctx, "tcp", hostport)
		cancel()
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitForFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
