package pgtest

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A private cluster: it answers, a row written survives a stop and a start, a stopped cluster
// refuses connections, and it answers again on the same port after Start.
func TestCluster(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	dsn := c.DSN()
	query := func() (int, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		var n int
		err = conn.QueryRow(ctx, "SELECT x FROM t").Scan(&n)
		return n, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the new cluster: %s", Redact(err, dsn))
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if cfg := conn.Config(); cfg.Host != "127.0.0.1" || int(cfg.Port) != c.Port() {
		t.Fatalf("DSN names %s:%d, want 127.0.0.1:%d", cfg.Host, cfg.Port, c.Port())
	}

	c.Stop()
	// The open session was ended by the shutdown.
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("a connection opened before Stop still answers")
	}
	conn.Close(ctx)
	_, err = query()
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to the stopped cluster: %v; want connection refused", err)
	}

	c.Start()
	if n, err := query(); err != nil || n != 42 {
		t.Fatalf("after Start: %d, %v; want the row written before Stop (42)", n, err)
	}
}

// The password is the cluster's own: a wrong one is refused (scram-sha-256 on TCP, not trust).
func TestClusterNeedsPassword(t *testing.T) {
	c := StartCluster(t)
	wrong := strings.Replace(c.DSN(), ":"+c.password+"@", ":not-the-password@", 1)
	conn, err := pgx.Connect(context.Background(), wrong)
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("a wrong password connects")
	}
	if !strings.Contains(err.Error(), "28P01") {
		t.Fatalf("wrong password: %v; want SQLSTATE 28P01", err)
	}
}

// No PostgreSQL programs: the test fails, naming PostgreSQL, .ci/run and EnvBinDir.
func TestStartClusterNoPostgreSQL(t *testing.T) {
	t.Setenv(EnvBinDir, t.TempDir())
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartCluster(f)
	}()
	<-done
	t.Logf("the failure reads: %s", f.msg)
	for _, want := range []string{"PostgreSQL", ".ci/run", EnvBinDir, "initdb"} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("message %q does not say %q", f.msg, want)
		}
	}
}
