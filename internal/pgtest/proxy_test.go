package pgtest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Through the proxy the cluster answers; stalled, nothing is refused and nothing answers: a new
// connection and a query on an open one both end at the caller's deadline; resumed, both work.
func TestProxy(t *testing.T) {
	c := StartCluster(t)
	p := StartProxy(t, "127.0.0.1:"+strconv.Itoa(c.Port()))
	dsn, err := WithAddress(c.DSN(), p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect through the proxy: %s", Redact(err, dsn))
	}
	defer conn.Close(ctx)
	if cfg := conn.Config(); cfg.Host+":"+strconv.Itoa(int(cfg.Port)) != p.Addr() {
		t.Fatalf("connected to %s:%d, want the proxy %s", cfg.Host, cfg.Port, p.Addr())
	}

	p.Stall()
	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = conn.Ping(qctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("query on an open connection while stalled: %v; want the caller's deadline", err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnectTimeout = 500 * time.Millisecond
	if c2, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		c2.Close(ctx)
		t.Fatal("a new connection succeeds while stalled")
	} else if !pgconn.Timeout(err) {
		t.Fatalf("new connection while stalled: %v; want a timeout", err)
	}

	p.Resume()
	c3, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect after Resume: %s", Redact(err, dsn))
	}
	defer c3.Close(ctx)
	if err := c3.Ping(ctx); err != nil {
		t.Fatalf("ping after Resume: %v", err)
	}
}

func TestWithAddress(t *testing.T) {
	got, err := WithAddress("postgres://u:p@127.0.0.1:5432/db?sslmode=disable", "127.0.0.1:6000")
	if want := "postgres://u:p@127.0.0.1:6000/db?sslmode=disable"; err != nil || got != want {
		t.Fatalf("WithAddress = %q, %v; want %q", got, err, want)
	}
	if _, err := WithAddress("host=127.0.0.1", "127.0.0.1:6000"); err == nil {
		t.Fatal("a keyword/value DSN is accepted")
	}
}
