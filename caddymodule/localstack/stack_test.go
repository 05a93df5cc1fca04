package localstack_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// repoRoot is the checkout this package lives in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	buildOnce sync.Once
	caddyBin  string
	buildErr  error
)

// builtCaddy builds bin/caddy with ./xcaddy.sh (a no-op when nothing changed) exactly as the
// README tells users, and returns its path.
func builtCaddy(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root := repoRoot(t)
		cmd := exec.Command("bash", filepath.Join(root, "xcaddy.sh"))
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("./xcaddy.sh failed: %v\n%s", err, out)
			return
		}
		caddyBin = filepath.Join(root, "bin", "caddy")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// stack is a running `bin/caddy mcpgate-local`.
type stack struct {
	MCPURL     string
	IdPURL     string
	MetricsURL string
	CAFile     string
	DataDir    string
	Roots      *x509.CertPool
	// ConfigHome is the XDG_CONFIG_HOME the command ran with, where a user's
	// own Caddy keeps its config autosave.
	ConfigHome string
	cmd        *exec.Cmd
	stdout     *strings.Builder
	stderr     *testutil.SyncBuffer
	exited     chan error
}

// startStack runs the README's local stack on free ports with the backend pointed at
// githubAPI, and waits until it reports that it is running. Like a user who has only the
// binary, it runs outside the checkout with the built-in configuration. Cleanup stops it with
// SIGINT, as Ctrl-C would, and fails the test unless it exits cleanly.
func startStack(t *testing.T, githubAPI string) *stack {
	t.Helper()
	bin := builtCaddy(t)
	mcpPort, idpPort, metricsPort, backend := freePort(t), freePort(t), freePort(t), "127.0.0.1:"+freePort(t)
	s := &stack{
		MCPURL:     "https://localhost:" + mcpPort + "/mcp",
		IdPURL:     "https://localhost:" + idpPort,
		MetricsURL: "http://127.0.0.1:" + metricsPort + "/metrics",
		DataDir:    t.TempDir(),
		ConfigHome: t.TempDir(),
		stdout:     new(strings.Builder),
		stderr:     new(testutil.SyncBuffer),
		exited:     make(chan error, 1),
	}
	s.cmd = exec.Command(bin, "mcpgate-local",
		"--data-dir", s.DataDir,
		"--github-api-url", githubAPI,
		"--backend", backend)
	s.cmd.Dir = t.TempDir()
	s.cmd.Env = append(os.Environ(),
		"MCPGATE_MCP_PORT="+mcpPort, "MCPGATE_IDP_PORT="+idpPort, "MCPGATE_METRICS_PORT="+metricsPort,
		// Decoys: the flags must win over a stale environment.
		"MCPGATE_GATEWAY_SECRET=", "MCPGATE_DATA_DIR="+t.TempDir(), "MCPGATE_BACKEND=127.0.0.1:1",
		"XDG_CONFIG_HOME="+s.ConfigHome, "XDG_DATA_HOME="+t.TempDir())
	s.cmd.Stderr = s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			s.stdout.WriteString(line + "\n")
			if strings.HasPrefix(strings.TrimSpace(line), "CA to trust:") {
				s.CAFile = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "CA to trust:"))
			}
			if strings.HasPrefix(line, "Ctrl-C stops everything") {
				close(ready)
			}
		}
		s.exited <- s.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-s.exited:
		t.Fatalf("mcpgate-local exited during start-up: %v\nstderr:\n%s", err, s.stderr.String())
	case <-time.After(90 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("mcpgate-local did not start in 90s\nstdout:\n%s\nstderr:\n%s", s.stdout.String(), s.stderr.String())
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-s.exited:
			if err != nil {
				t.Errorf("mcpgate-local did not stop cleanly on SIGINT: %v\nstderr:\n%s", err, s.stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			t.Errorf("mcpgate-local still running 20s after SIGINT")
		}
	})
	if !strings.HasPrefix(s.CAFile, s.DataDir+string(os.PathSeparator)) {
		t.Fatalf("the CA file %q is not under --data-dir %q", s.CAFile, s.DataDir)
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatalf("the CA file the stack printed (%q): %v", s.CAFile, err)
	}
	s.Roots = x509.NewCertPool()
	if !s.Roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", s.CAFile)
	}
	return s
}

// HTTPClient trusts the stack's CA only.
func (s *stack) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}},
	}
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	nameRe  = regexp.MustCompile(`(?i)\bname="([^"]*)"`)
	valueRe = regexp.MustCompile(`(?i)\bvalue="([^"]*)"`)
	typeRe  = regexp.MustCompile(`(?i)\btype="([^"]*)"`)
)

// headlessLogin returns an OpenURL function that does what a person at the browser does on the
// stack's IdP pages (see devLogin).
func (s *stack) headlessLogin(t *testing.T, username, githubToken string) func(string) error {
	return devLogin(s.HTTPClient(), strings.TrimPrefix(s.IdPURL, "https://"), username, githubToken)
}

// devLogin returns an OpenURL function that signs in on the development login form of the IdP
// at idpHost as username, pasting githubToken, approves the consent page and follows the
// redirect to the client's loopback callback. hc carries the transport (the stack's CA); each
// login gets a cookie jar of its own.
func devLogin(base *http.Client, idpHost, username, githubToken string) func(string) error {
	return func(authURL string) error {
		jar, _ := cookiejar.New(nil)
		hc := *base
		hc.Jar = jar
		next, method, body := authURL, http.MethodGet, url.Values(nil)
		for step := 0; step < 4; step++ {
			var resp *http.Response
			var err error
			if method == http.MethodGet {
				resp, err = hc.Get(next)
			} else {
				resp, err = hc.PostForm(next, body)
			}
			if err != nil {
				return err
			}
			page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.Request.URL.Host != idpHost {
				// We reached the client's callback.
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("callback answered %d: %s", resp.StatusCode, page)
				}
				return nil
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %d: %.300s", resp.Request.URL, resp.StatusCode, page)
			}
			action, fields, kind, err := parseForm(string(page))
			if err != nil {
				return fmt.Errorf("%s: %w", resp.Request.URL, err)
			}
			switch kind {
			case "login":
				fields.Set("username", username)
				fields.Set("github_token", githubToken)
			case "consent":
				fields.Set("action", "approve")
			}
			u, err := resp.Request.URL.Parse(action)
			if err != nil {
				return err
			}
			next, method, body = u.String(), http.MethodPost, fields
		}
		return errors.New("login did not reach the callback")
	}
}

// checkAliceRepos fails the test unless structured (a list_repositories result as JSON) holds
// alice's repositories and not bob's, and every request the fake GitHub saw carried alice's token.
func checkAliceRepos(t *testing.T, structured string, gh *githubfake.Fake) {
	t.Helper()
	if !strings.Contains(structured, "hello-world") || !strings.Contains(structured, "secret-plans") {
		t.Fatalf("list_repositories did not return alice's repositories: %.500s", structured)
	}
	if strings.Contains(structured, `"tools"`) {
		t.Fatalf("list_repositories returned bob's repository to alice: %.500s", structured)
	}
	toks := gh.Tokens()
	if len(toks) == 0 {
		t.Fatal("the fake GitHub received no request")
	}
	for i, tok := range toks {
		if tok != githubfake.AliceToken {
			t.Fatalf("GitHub request %d carried token %q, want alice's", i, redact(tok))
		}
	}
}

func parseForm(page string) (action string, fields url.Values, kind string, err error) {
	for _, m := range formRe.FindAllStringSubmatch(page, -1) {
		inner := m[2]
		switch {
		case strings.Contains(inner, `name="username"`):
			kind = "login"
		case strings.Contains(inner, `value="approve"`):
			kind = "consent"
		default:
			continue
		}
		fields = url.Values{}
		for _, in := range inputRe.FindAllString(inner, -1) {
			if tm := typeRe.FindStringSubmatch(in); tm == nil || !strings.EqualFold(tm[1], "hidden") {
				continue
			}
			nm, vm := nameRe.FindStringSubmatch(in), valueRe.FindStringSubmatch(in)
			if nm == nil {
				continue
			}
			v := ""
			if vm != nil {
				v = html.UnescapeString(vm[1])
			}
			fields.Set(nm[1], v)
		}
		return html.UnescapeString(m[1]), fields, kind, nil
	}
	return "", nil, "", errors.New("no login or consent form on the page")
}

// withTimeout is a test context bounded by d.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
