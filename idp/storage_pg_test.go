package idp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// openPG opens a PostgresStorage on dsn, closed at t.Cleanup (before pgtest drops the database).
// Its pool holds 8 connections, all open before it is returned, so the suite's 8 concurrent
// callers race in the database rather than queue for connections being set up.
func openPG(t testing.TB, dsn string) *PostgresStorage {
	t.Helper()
	ctx := context.Background()
	s, err := OpenPostgresStorage(ctx, dsn, PostgresOptions{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var conns []*pgxpool.Conn
	for range 8 {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	return s
}

// The one storage suite, on PostgreSQL: a database of its own per case.
func TestStoragePostgres(t *testing.T) {
	testStorage(t, func(t *testing.T) Storage { return openPG(t, pgtest.NewDatabase(t)) })
}

// Two Servers starting at once on one PostgreSQL (two replicas) sign with one key.
func TestKeysConcurrentStartPostgres(t *testing.T) {
	testKeysConcurrentStart(t, openPG(t, pgtest.NewDatabase(t)))
}

// Migrations: 4 replicas opening one new database at once, then two more opens one after the
// other, leave exactly one row per schema version and a schema that works.
func TestPostgresMigrationsConcurrent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stores := make([]*PostgresStorage, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = OpenPostgresStorage(ctx, dsn, PostgresOptions{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(stores[i].Close)
	}
	openPG(t, dsn)
	s := openPG(t, dsn)
	var rows, version int
	if err := s.pool.QueryRow(ctx, "SELECT count(*), max(version) FROM mcpgate_schema_migrations").Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != len(pgMigrations) || version != len(pgMigrations) {
		t.Fatalf("schema_migrations: %d rows, version %d; want %d and %d", rows, version, len(pgMigrations), len(pgMigrations))
	}
	// Every replica works on the one schema: a code created through one is redeemed through another.
	if err := stores[0].CreateCode(ctx, "h", codeRecord{ClientID: "c", Exp: time.Now().Add(time.Minute).Unix()}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[3].RedeemCode(ctx, "h", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[1].RedeemCode(ctx, "h", time.Now()); !errors.Is(err, ErrAlreadyUsed) {
		t.Fatalf("second redemption through another replica: %v", err)
	}
	// A database from a newer build is refused, not guessed at.
	if _, err := s.pool.Exec(ctx, "INSERT INTO mcpgate_schema_migrations (version) VALUES ($1)", len(pgMigrations)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPostgresStorage(ctx, dsn, PostgresOptions{}); err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// DeleteExpired runs on one replica at a time: while another holds the cleanup lock it returns
// 0 and deletes nothing; two at once delete every expired record once between them.
func TestPostgresDeleteExpiredOneReplica(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	a, b := openPG(t, dsn), openPG(t, dsn)
	now := time.Unix(1_800_000_000, 0)
	const expired = 20
	for i := range expired {
		if err := a.PutSession(ctx, string(rune('a'+i)), sessionRecord{Exp: now.Add(-time.Minute).Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PutSession(ctx, "live", sessionRecord{Exp: now.Add(time.Minute).Unix()}); err != nil {
		t.Fatal(err)
	}

	// Another replica is cleaning up: it holds the lock (here, in a transaction of the test's).
	tx, err := a.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgLockCleanup); err != nil {
		t.Fatal(err)
	}
	if n, err := b.DeleteExpired(ctx, now); err != nil || n != 0 {
		t.Fatalf("DeleteExpired while another replica cleans up = %d, %v; want 0, nil", n, err)
	}
	if _, err := b.GetSession(ctx, "a"); err != nil {
		t.Fatalf("an expired session went while the lock was held elsewhere: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var na, nb int
	var ea, eb error
	wg.Go(func() { na, ea = a.DeleteExpired(ctx, now) })
	wg.Go(func() { nb, eb = b.DeleteExpired(ctx, now) })
	wg.Wait()
	if ea != nil || eb != nil || na+nb != expired || (na != 0 && nb != 0) {
		t.Fatalf("two cleanups at once deleted %d and %d (%v, %v); want %d by one of them", na, nb, ea, eb, expired)
	}
	if _, err := a.GetSession(ctx, "live"); err != nil {
		t.Fatalf("unexpired session: %v", err)
	}
}

// faultProxy forwards loopback TCP connections to the PostgreSQL server until stop, which
// drops them all: PostgreSQL gone mid-run, as a replica sees it.
type faultProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *faultProxy) stop() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// withAddr returns dsn (URL or keyword/value form) with another host:port and, if pw is not
// empty, another password.
func withAddr(t *testing.T, dsn, host, port, pw string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal("the test DSN does not parse")
		}
		u.Host = net.JoinHostPort(host, port)
		if pw != "" {
			u.User = url.UserPassword(u.User.Username(), pw)
		}
		return u.String()
	}
	dsn += " host=" + host + " port=" + port
	if pw != "" {
		dsn += " password=" + pw
	}
	return dsn
}

// A fault is ErrStoreFault, never ErrNotFound, and its message quotes neither the password nor
// the user nor the database: at open (nothing listening; a wrong password) and later (the server
// gone; the storage closed; a record that does not decode).
func TestPostgresFaults(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const badPW = "s3cret-Wrong-pw"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	port := func(p uint16) string { return strconv.Itoa(int(p)) }

	check := func(name string, err error, secrets ...string) {
		t.Helper()
		if !errors.Is(err, ErrStoreFault) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrStoreFault", name, err)
			return
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error %q quotes %q", name, err, s)
			}
		}
		t.Logf("%s: %v", name, err)
	}

	_, err = OpenPostgresStorage(ctx, withAddr(t, dsn, "127.0.0.1", closedPort, badPW), PostgresOptions{})
	check("open, nothing listening", err, badPW, cfg.User, cfg.Database)
	_, err = OpenPostgresStorage(ctx, withAddr(t, dsn, cfg.Host, port(cfg.Port), badPW), PostgresOptions{})
	check("open, wrong password", err, badPW, cfg.User, cfg.Database)

	// The server gone mid-run: the pool's connections drop and new ones are refused.
	p := newFaultProxy(t, net.JoinHostPort(cfg.Host, port(cfg.Port)))
	_, proxyPort, _ := net.SplitHostPort(p.l.Addr().String())
	s := openPG(t, withAddr(t, dsn, "127.0.0.1", proxyPort, ""))
	if err := s.PutSession(ctx, "h", sessionRecord{Exp: 1}); err != nil {
		t.Fatal(err)
	}
	p.stop()
	_, err = s.GetSession(ctx, "h")
	check("server gone, read", err, cfg.Password, cfg.User, cfg.Database)
	_, _, err = s.RotateRefresh(ctx, "r", "c", time.Now(), 0, func(string) ([]byte, error) { return nil, nil })
	check("server gone, transaction", err, cfg.Password, cfg.User, cfg.Database)

	// A record that does not decode is a fault, not a missing record.
	good := openPG(t, dsn)
	if _, err := good.pool.Exec(ctx, `INSERT INTO mcpgate_codes (hash, client_id, sub, family_id, exp, rec) VALUES ('bad', '', '', '', 1, 'not json'::bytea)`); err != nil {
		t.Fatal(err)
	}
	_, err = good.GetCode(ctx, "bad")
	check("undecodable record", err)
	_, err = good.RedeemCode(ctx, "bad", time.Now())
	check("undecodable record, redeem", err)

	good.Close()
	_, err = good.GetClient(ctx, "c")
	check("closed storage", err, cfg.Password)
}

// The whole flow on PostgreSQL through the Server's handlers: registration, browser sign-in and
// consent (session, authorization request, code), redemption, rotation, reuse after the grace
// window revoking the family; a client_id PostgreSQL's text cannot hold is an unknown client,
// not a fault.
func TestServerOnPostgres(t *testing.T) {
	pg := openPG(t, pgtest.NewDatabase(t))
	e := newEnv(t, func(o *Options) {
		o.Storage = pg
		o.EncryptionKey = make([]byte, 32)
		o.RefreshGrace = 5 * time.Second
	})
	c := e.register(nil)
	tok := e.login(c, "alice", "")
	rt1, _ := tok["refresh_token"].(string)
	resp, t2 := e.refresh(c, rt1)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %v", resp.StatusCode, t2)
	}
	rt2, _ := t2["refresh_token"].(string)
	e.clock.Advance(6 * time.Second)
	if resp, m := e.refresh(c, rt1); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("reuse after the grace window: %d %v", resp.StatusCode, m)
	}
	if resp, m := e.refresh(c, rt2); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("successor after reuse revoked the family: %d %v", resp.StatusCode, m)
	}
	resp, m := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}, "client_id": {"\x00"}}, "", "")
	if resp.StatusCode >= 500 {
		t.Fatalf("client_id NUL: %d %v, want a client error", resp.StatusCode, m)
	}
}

// A database already at this build's schema version is only read when opened: a replica starting
// while another holds the migration lock (or a role that may not create tables) opens it at once.
func TestPostgresOpenMigratedTakesNoLock(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	first := openPG(t, dsn)
	ctx := context.Background()
	tx, err := first.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgLockMigrate); err != nil {
		t.Fatal(err)
	}
	// With the lock held, a migration would wait (until lock_timeout, then fail).
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := OpenPostgresStorage(octx, dsn, PostgresOptions{})
	if err != nil {
		t.Fatalf("opening a migrated database while the migration lock is held: %v", err)
	}
	s.Close()
}

// Cleanup never waits for a row another transaction holds (a sign-out revoking the user's
// families, in another order): it deletes what it can and leaves the locked row for next time,
// so the two can never deadlock.
func TestPostgresDeleteExpiredSkipsLockedRows(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := openPG(t, dsn)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	const n = 5
	for i := range n {
		if err := s.CreateFamily(ctx, fmt.Sprintf("f%d", i), familyRecord{ClientID: "c", Sub: "u", Exp: now.Add(-time.Minute).Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT id FROM mcpgate_families WHERE id = 'f2' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	// A cleanup that waited for f2 would block here until the transaction above ends.
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := s.DeleteExpired(dctx, now)
	if err != nil || got != n-1 {
		t.Fatalf("DeleteExpired with one row locked = %d, %v; want %d, nil", got, err, n-1)
	}
	if _, err := s.GetFamily(ctx, "f2"); err != nil {
		t.Fatalf("the locked family: %v, want it kept for the next run", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DeleteExpired(ctx, now); err != nil || got != 1 {
		t.Fatalf("the next cleanup = %d, %v; want 1, nil", got, err)
	}
}
