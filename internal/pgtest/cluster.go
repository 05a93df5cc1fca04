package pgtest

// Cluster: a private PostgreSQL server per test, for tests that stop and start it (the shared
// server that .ci/run starts must stay up for every other test).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvBinDir is the environment variable that names the directory of PostgreSQL's server programs
// (initdb, pg_ctl) for StartCluster. Unset, StartCluster looks for initdb on PATH, then asks
// `pg_config --bindir`, then takes the newest of Debian's /usr/lib/postgresql/<version>/bin.
const EnvBinDir = "MCPGATE_TEST_PG_BINDIR"

// clusterUser is the superuser StartCluster creates; its password is random per cluster.
const clusterUser = "mcpgate"

// Cluster is a PostgreSQL server of one test's own: a data directory in the test's temporary
// directory, listening on a free loopback TCP port and on a unix socket in that directory, with
// fsync off (its data need not survive a crash of the machine, only a stop and start). The test
// may Stop and Start it; it is stopped when the test ends. Its methods must be called from the
// test's goroutine (they fail the test with t.Fatalf).
type Cluster struct {
	t        testing.TB
	bin      string // directory of initdb and pg_ctl
	data     string // data directory
	logFile  string // the server's log (pg_ctl -l)
	port     int
	password string
	asUser   *user.User // set when the programs run as another user (root runs them as postgres)

	mu      sync.Mutex
	running bool
}

// StartCluster creates a cluster with initdb in t.TempDir() and starts it. When the test runs as
// root, initdb and pg_ctl run as the postgres user (PostgreSQL refuses to run as root) through
// runuser, and the temporary directory is made reachable by it; otherwise they run as the test's
// user. The superuser is "mcpgate" with a random password, over scram-sha-256 on TCP; DSN says
// how to connect. No PostgreSQL installation fails the test with a message that names it and
// .ci/run; it never skips. The cluster is stopped at t.Cleanup, after the cleanups the test
// registers later (such as closing its pools).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := findBinDir()
	if err != nil {
		t.Fatalf("pgtest: StartCluster needs PostgreSQL's server programs (initdb, pg_ctl): %v\n"+
			"Run .ci/run, which installs PostgreSQL from Debian's packages, or set %s to the "+
			"directory that holds initdb and pg_ctl.", err, EnvBinDir)
		return nil
	}
	c := &Cluster{t: t, bin: bin, password: randomHex(16)}
	base := t.TempDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root, StartCluster runs PostgreSQL as the postgres user, "+
				"which does not exist (%v); .ci/run installs PostgreSQL, whose package creates it", err)
		}
		c.asUser = u
		if err := shareWith(base, u); err != nil {
			t.Fatalf("pgtest: make %s usable by the postgres user: %v", base, err)
		}
	}
	c.data = filepath.Join(base, "data")
	c.logFile = filepath.Join(base, "postgres.log")
	sock := filepath.Join(base, "sock")
	if len(sock) > 90 { // a unix socket path holds at most 107 bytes, ".s.PGSQL.<port>" included
		t.Fatalf("pgtest: the temporary directory %s is too long for a unix socket; set TMPDIR to a shorter one", base)
	}
	pwFile := filepath.Join(base, "pw")
	for _, f := range []struct {
		path string
		dir  bool
		body string
	}{{path: sock, dir: true}, {path: c.logFile}, {path: pwFile, body: c.password + "\n"}} {
		if f.dir {
			err = os.Mkdir(f.path, 0o700)
		} else {
			err = os.WriteFile(f.path, []byte(f.body), 0o600)
		}
		if err == nil {
			err = c.chown(f.path)
		}
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	c.port, err = freePort()
	if err != nil {
		t.Fatalf("pgtest: no free loopback port: %v", err)
	}
	if out, err := c.run("initdb", "-D", c.data, "-U", clusterUser, "--pwfile="+pwFile,
		"--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwFile)
	conf := fmt.Sprintf("\n# pgtest.StartCluster\nlisten_addresses = '127.0.0.1'\nport = %d\n"+
		"unix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"+
		"max_connections = 100\nshared_buffers = 32MB\n", c.port, sock)
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("pgtest: configure the cluster: %v", err)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		running := c.running
		c.mu.Unlock()
		if running {
			if out, err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil {
				t.Errorf("pgtest: stop the cluster at cleanup: %v\n%s", err, out)
			}
		}
	})
	c.Start()
	return c
}

// DSN is a postgres:// URL for the cluster's "postgres" database as its superuser, over TCP on
// 127.0.0.1 (sslmode=disable). It stays the same across Stop and Start.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres?sslmode=disable", clusterUser, c.password, c.port)
}

// Port is the loopback TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// Start starts the stopped cluster on its port and data, and returns once it accepts
// connections (pg_ctl start -w).
func (c *Cluster) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.t.Fatalf("pgtest: Start: the cluster is running")
	}
	if out, err := c.run("pg_ctl", "-D", c.data, "-l", c.logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(c.logFile)
		c.t.Fatalf("pgtest: pg_ctl start: %v\n%s\nserver log:\n%s", err, out, tail(log, 4000))
	}
	c.running = true
}

// Stop stops the cluster as an administrator's fast shutdown would (pg_ctl stop -m fast):
// sessions are ended, open transactions rolled back, and it returns once the server has exited,
// so new connections are refused.
func (c *Cluster) Stop() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		c.t.Fatalf("pgtest: Stop: the cluster is not running")
	}
	if out, err := c.run("pg_ctl", "-D", c.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		c.t.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
	c.running = false
}

// run runs one of PostgreSQL's programs from c.bin, as c.asUser if set, from / (the postgres
// user may not read the test's working directory), and returns its output.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(c.bin, prog)
	var cmd *osexec.Cmd
	if c.asUser != nil {
		cmd = osexec.CommandContext(ctx, "runuser", append([]string{"-u", c.asUser.Username, "--", path}, args...)...)
	} else {
		cmd = osexec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// pg_ctl start leaves the server running with our stdout and stderr unless -l sends its output
	// elsewhere (it does); a pipe a child still holds would keep CombinedOutput waiting.
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// chown gives path to c.asUser, if set.
func (c *Cluster) chown(path string) error {
	if c.asUser == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.asUser.Uid)
	gid, _ := strconv.Atoi(c.asUser.Gid)
	return os.Chown(path, uid, gid)
}

// shareWith gives dir to u and lets u traverse (not list) the directories above it up to the
// system's temporary directory: testing creates them 0700 for the test's user.
func shareWith(dir string, u *user.User) error {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	root := filepath.Clean(os.TempDir())
	for d := filepath.Dir(dir); strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			return err
		}
	}
	return nil
}

// findBinDir returns the directory of initdb and pg_ctl: EnvBinDir's if set; else that of
// initdb on PATH; else `pg_config --bindir`; else the newest /usr/lib/postgresql/<version>/bin.
func findBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl"} {
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(EnvBinDir); d != "" {
		if !has(d) {
			return "", fmt.Errorf("%s=%s holds no initdb and pg_ctl", EnvBinDir, d)
		}
		return d, nil
	}
	if p, err := osexec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	if out, err := osexec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errors.New("no initdb on PATH, from pg_config --bindir, nor in /usr/lib/postgresql/<version>/bin")
}

// pgVersion is the major version in /usr/lib/postgresql/<version>/bin, or 0.
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
