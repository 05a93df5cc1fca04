package keycloaktest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configures Start. Only Realms is required.
type Options struct {
	// Version of the distribution to run; default DefaultVersion. Ignored with $MCPGATE_KEYCLOAK_HOME.
	Version string
	// Realms are realm representations (JSON, as the admin console exports them) imported at
	// start-up with --import-realm. At least one; readiness is the first realm's discovery document.
	Realms [][]byte
	// Features are passed as --features (e.g. "token-exchange", "admin-fine-grained-authz:v1").
	// Default none: the release's default feature set.
	Features []string
	// Args are further options for "kc.sh start-dev", after the ones Start sets.
	Args []string
	// AdminUser and AdminPassword create the master realm's bootstrap administrator
	// (KC_BOOTSTRAP_ADMIN_USERNAME / KC_BOOTSTRAP_ADMIN_PASSWORD). Default "admin" / "admin".
	AdminUser, AdminPassword string
	// JavaOpts are appended to the JVM options (JAVA_OPTS_APPEND). Default DefaultJavaOpts; set
	// "-" for none.
	JavaOpts string
	// Log, if set, receives Keycloak's console output (stdout and stderr) as it runs. Whether it is
	// set or not, the last 64 KiB are kept for Output and for Start's error.
	Log io.Writer
	// HTTPClient downloads the distribution and polls readiness; default http.DefaultClient.
	HTTPClient *http.Client
	// StartTimeout bounds the start, from the copy of the distribution to readiness; default 10
	// minutes (start-dev on two cores shared with other work has taken over 5).
	StartTimeout time.Duration
}

// DefaultJavaOpts trade peak speed for start-up time, which is what a test server needs on a small
// shared machine: C1 only, no C2 compilations competing for the cores. (kc.sh picks the garbage
// collector; a second -XX:+Use...GC stops the JVM.)
const DefaultJavaOpts = "-XX:TieredStopAtLevel=1"

// Server is a running Keycloak. Close stops it.
type Server struct {
	// URL is the base URL, http://127.0.0.1:PORT, without a trailing slash.
	URL string
	// Realm is the name of the first imported realm.
	Realm string
	// AdminUser and AdminPassword are the master realm's administrator.
	AdminUser, AdminPassword string
	// Home is the server's private copy of the distribution; removed by Close.
	Home string
	// StartDuration is the time from the launch of kc.sh to readiness.
	StartDuration time.Duration
	// BuildReused reports whether the start reused a cached build (see Start).
	BuildReused bool

	cmd       *exec.Cmd
	stdin     io.WriteCloser
	done      chan struct{} // closed when the process has exited
	waitErr   error
	out       *tail
	closeOnce sync.Once
	closeErr  error
}

// Issuer returns the issuer URL of the first realm, http://127.0.0.1:PORT/realms/REALM.
func (s *Server) Issuer() string { return s.URL + "/realms/" + s.Realm }

// Output returns the last 64 KiB of Keycloak's console output.
func (s *Server) Output() string { return s.out.String() }

// StartT is Start for a test: it fails t when Keycloak cannot start (never skips) and stops the
// server in t.Cleanup.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Start copies the distribution (see Dist) into a private temporary directory, writes the realms
// into its data/import, and runs "kc.sh start-dev" there with an in-memory database, listening
// on 127.0.0.1 only, on a free port (the management interface on another free port). It returns
// once the first realm's /.well-known/openid-configuration answers 200, or an error carrying the
// tail of Keycloak's output. It fails, naming the tool, when java or the distribution is missing.
//
// The first start with given Features and Args saves its built tree (lib/quarkus after start-dev's
// re-augmentation) in CacheDir()/built-*; later starts with the same options copy that instead of
// the plain distribution and skip the build step.
//
// Keycloak runs in a process group of its own, under a shell that stops the whole group when its
// stdin closes, so the JVM dies with the test binary even when Close is never called.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if len(opts.Realms) == 0 {
		return nil, errors.New("keycloaktest: no realm to import")
	}
	realms := make([]string, len(opts.Realms))
	for i, r := range opts.Realms {
		var rep struct {
			Realm string `json:"realm"`
		}
		if err := json.Unmarshal(r, &rep); err != nil || rep.Realm == "" || !filepath.IsLocal(rep.Realm) {
			return nil, fmt.Errorf("keycloaktest: realm %d is not a realm representation with a plain \"realm\" name (%v)", i, err)
		}
		realms[i] = rep.Realm
	}
	if opts.AdminUser == "" {
		opts.AdminUser = "admin"
	}
	if opts.AdminPassword == "" {
		opts.AdminPassword = "admin"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Minute
	}
	switch opts.JavaOpts {
	case "":
		opts.JavaOpts = DefaultJavaOpts
	case "-":
		opts.JavaOpts = ""
	}
	client := opts.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	java, err := findJava()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return nil, fmt.Errorf("keycloaktest: bash, which runs kc.sh, not found: %w", err)
	}
	dist, err := Dist(ctx, client, opts.Version)
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "mcpgate-keycloak-")
	if err != nil {
		return nil, fmt.Errorf("keycloaktest: %w", err)
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(home)
		return nil, err
	}
	built := builtDir(dist, opts)
	src := dist
	if _, err := os.Stat(filepath.Join(built, "bin", "kc.sh")); err == nil && built != "" {
		src = built
	}
	if err := copyTree(src, home); err != nil {
		return fail(fmt.Errorf("keycloaktest: copy of %s: %w", src, err))
	}
	importDir := filepath.Join(home, "data", "import")
	if err := os.MkdirAll(importDir, 0o755); err != nil {
		return fail(fmt.Errorf("keycloaktest: %w", err))
	}
	for i, r := range opts.Realms {
		if err := os.WriteFile(filepath.Join(importDir, realms[i]+"-realm.json"), r, 0o600); err != nil {
			return fail(fmt.Errorf("keycloaktest: %w", err))
		}
	}
	ports, err := freePorts(2)
	if err != nil {
		return fail(err)
	}
	args := []string{
		"start-dev",
		"--http-host=127.0.0.1",
		"--http-port=" + strconv.Itoa(ports[0]),
		"--http-management-port=" + strconv.Itoa(ports[1]),
		"--db=dev-mem",
		"--import-realm",
		"--log-console-color=false",
	}
	if len(opts.Features) > 0 {
		args = append(args, "--features="+strings.Join(opts.Features, ","))
	}
	args = append(args, opts.Args...)

	// The shell runs kc.sh in the background and a watcher that, once stdin reaches EOF (Close,
	// or the death of this process), signals the whole process group; kc.sh forwards TERM to java.
	// The shell itself ignores TERM (set after kc.sh has started, so kc.sh and java do not inherit
	// it) and removes the server's directory once kc.sh has exited, so that a test binary killed
	// without Cleanup leaves neither a JVM nor 180 MB in $TMPDIR.
	// A background job's stdin is /dev/null unless redirected explicitly, hence fd 3; the watcher
	// must not hold stdout/stderr, or Wait would wait for it after kc.sh has exited.
	const supervisor = `home=$1; shift
exec 3<&0
"$@" </dev/null 3<&- & kc=$!
trap '' TERM
{ cat <&3; kill -TERM 0; } >/dev/null 2>&1 &
exec 3<&-
wait "$kc"; status=$?
rm -rf -- "$home"
exit "$status"`
	cmd := exec.Command("bash", append([]string{"-c", supervisor, "kc-supervisor", home, filepath.Join(home, "bin", "kc.sh")}, args...)...)
	cmd.Dir = home
	cmd.Env = append(cleanEnv(os.Environ()),
		"JAVA_HOME="+filepath.Dir(filepath.Dir(java)),
		"KC_BOOTSTRAP_ADMIN_USERNAME="+opts.AdminUser,
		"KC_BOOTSTRAP_ADMIN_PASSWORD="+opts.AdminPassword,
		"JAVA_OPTS_APPEND="+opts.JavaOpts,
	)
	out := &tail{max: 64 << 10}
	var w io.Writer = out
	if opts.Log != nil {
		w = io.MultiWriter(out, opts.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(fmt.Errorf("keycloaktest: %w", err))
	}
	s := &Server{
		URL:           "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		Realm:         realms[0],
		AdminUser:     opts.AdminUser,
		AdminPassword: opts.AdminPassword,
		Home:          home,
		cmd:           cmd,
		stdin:         stdin,
		done:          make(chan struct{}),
		out:           out,
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("keycloaktest: start kc.sh: %w", err))
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx, client); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%w\n--- Keycloak output (tail) ---\n%s", err, out.String())
	}
	s.StartDuration = time.Since(started)
	s.BuildReused = src == built
	if !s.BuildReused && built != "" {
		saveBuild(home, built) // best effort: the next start skips the augmentation
	}
	return s, nil
}

// builtDir names the cached copy of dist as start-dev leaves it after its build step ("Updating
// the configuration": Quarkus re-augmentation into lib/quarkus, 10-25 s here) for these build
// options, or "" when there is no cache directory. start-dev skips the step when the tree it runs
// in was built with the same options, and redoes it when they differ, so a wrong match only
// costs time.
func builtDir(dist string, opts Options) string {
	cache, err := CacheDir()
	if err != nil {
		return ""
	}
	h := sha256.New()
	for _, part := range [][]string{{dist}, opts.Features, opts.Args} {
		for _, p := range part {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	return filepath.Join(cache, "built-"+filepath.Base(dist)+"-"+hex.EncodeToString(h.Sum(nil))[:12])
}

// saveBuild copies a started server's tree (without data/, which holds the realms) to built.
func saveBuild(home, built string) {
	if err := os.MkdirAll(filepath.Dir(built), 0o755); err != nil {
		return
	}
	tmp, err := os.MkdirTemp(filepath.Dir(built), ".build-")
	if err != nil {
		return
	}
	defer os.RemoveAll(tmp)
	if copyTree(home, filepath.Join(tmp, "kc")) == nil {
		_ = os.Rename(filepath.Join(tmp, "kc"), built) // fails harmlessly if another process won
	}
}

// waitReady polls the first realm's discovery document until it answers 200 with the expected
// issuer, the process exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context, client *http.Client) error {
	discovery := s.Issuer() + "/.well-known/openid-configuration"
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("keycloaktest: Keycloak exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("keycloaktest: Keycloak not ready at %s: %w", discovery, ctx.Err())
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, discovery, nil)
		if err != nil {
			return fmt.Errorf("keycloaktest: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			continue // not listening yet
		}
		var doc struct {
			Issuer string `json:"issuer"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && err == nil {
			if doc.Issuer != s.Issuer() {
				return fmt.Errorf("keycloaktest: discovery names issuer %q, want %q", doc.Issuer, s.Issuer())
			}
			return nil
		}
	}
}

// Close stops Keycloak: TERM to its process group, KILL after 30 seconds (and to whatever is left
// of the group then), waits until no process of the group is left, and removes its directory.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		pgid := s.cmd.Process.Pid
		_ = s.stdin.Close() // the supervisor's watcher signals the group
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(30 * time.Second)
		select {
		case <-s.done:
			t.Stop()
		case <-t.C:
			s.closeErr = errors.New("keycloaktest: Keycloak did not stop within 30s of SIGTERM; killed")
		}
		// Whatever is left of the group (the JVM after a kc.sh that died first, the watcher).
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
		// Orphans are reaped by init, not by us: wait until the group is really gone.
		for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-pgid, 0) == nil; {
			if time.Now().After(deadline) {
				s.closeErr = fmt.Errorf("keycloaktest: processes of group %d left after SIGKILL", pgid)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := os.RemoveAll(s.Home); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("keycloaktest: %w", err)
		}
	})
	return s.closeErr
}

// findJava returns the java binary kc.sh will run: $JAVA_HOME/bin/java, else java on $PATH.
func findJava() (string, error) {
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		p := filepath.Join(jh, "bin", "java")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("keycloaktest: java not found at $JAVA_HOME/bin/java (Keycloak needs a JDK 17, 21 or 25): %w", err)
		}
		return p, nil
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("keycloaktest: java not found on $PATH and $JAVA_HOME unset (Keycloak needs a JDK 17, 21 or 25): %w", err)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p, nil
}

// cleanEnv drops inherited Keycloak configuration (KC_*, KEYCLOAK_*) so that only Options
// configure the server.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, "KC_") || strings.HasPrefix(kv, "KEYCLOAK_") || strings.HasPrefix(kv, "JAVA_HOME=") ||
			strings.HasPrefix(kv, "JAVA_OPTS_APPEND=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. Another process may take one before
// Keycloak binds it; Start then fails with Keycloak's "port in use" in its output.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("keycloaktest: no free loopback port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
