package idp

// PostgresStorage: opening the pool, the schema, error mapping, and the helpers every
// storage_pg_*.go file shares. Several IdP replicas may share one database: every atomic
// guarantee of Storage is a conditional statement or a transaction here, never a lock in this
// process.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresOptions tunes OpenPostgresStorage. The zero value is ready to use.
type PostgresOptions struct {
	// MaxConns is the most connections the pool opens. Default: the DSN's pool_max_conns if it
	// has one, else pgxpool's default (the greater of 4 and the number of CPUs).
	MaxConns int32
	// ConnectTimeout bounds one connection attempt. Default: the DSN's connect_timeout if it has
	// one, else 10s.
	ConnectTimeout time.Duration
	// CallTimeout bounds one Storage call (its statements, waits for a connection or a lock
	// included; DeleteExpired gets ten times as long): a database that stops answering without
	// closing its connections (a network partition) then costs a request a 503 after this long,
	// not minutes of TCP retransmission. Default 10s.
	CallTimeout time.Duration
}

// pgSessionDefaults are server settings every connection gets unless the DSN sets them (as
// options or keyword=value): a statement waits at most 10 s for a row or advisory lock (a
// replica stalled inside a transaction must not stall every other one, which then answer 503),
// and the server ends a session left idle inside a transaction for a minute, releasing its locks.
var pgSessionDefaults = map[string]string{
	"lock_timeout":                        "10s",
	"idle_in_transaction_session_timeout": "60s",
}

// PostgresStorage implements Storage on PostgreSQL (github.com/jackc/pgx/v5, a pgxpool.Pool), so
// several IdP replicas can share one state. Each table has real columns for its key and for every
// field a statement queries or compares, plus the record as the KV storage encodes it (JSON bytes;
// see pgMigrations). Secret-derived keys arrive hashed and sealed values arrive sealed; they are
// stored exactly as given. Safe for concurrent use; Close releases the pool.
//
// PostgreSQL's text holds neither NUL nor invalid UTF-8, which a request can put in a value it
// names a record by (client_id=%00): a lookup by such a key finds nothing (ErrNotFound) without
// asking the server, and storing under one is refused with errUnstorable, not a fault.
type PostgresStorage struct {
	pool        *pgxpool.Pool
	password    string // only to strip it from an error message that might quote it
	callTimeout time.Duration
}

// bound gives one Storage call its deadline (PostgresOptions.CallTimeout, times n).
func (s *PostgresStorage) bound(ctx context.Context, n time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n*s.callTimeout)
}

// Advisory lock keys (one 64-bit space per database, shared with any other application on it:
// the high 32 bits spell "mcpg").
const (
	pgLockMigrate int64 = 0x6d637067_00000001 // schema migrations, per transaction
	pgLockKeys    int64 = 0x6d637067_00000002 // AddKey, per transaction
	pgLockCleanup int64 = 0x6d637067_00000003 // DeleteExpired: one replica at a time
)

// OpenPostgresStorage connects to the database dsn names (a postgres:// URL or a keyword/value
// string, as libpq takes), checks that it answers, and applies the schema migrations this build
// has and the database does not (see pgMigrations). ctx bounds the connection and the migrations
// only. Errors never quote the DSN, its password or its user; a fault wraps ErrStoreFault.
func OpenPostgresStorage(ctx context.Context, dsn string, opts PostgresOptions) (*PostgresStorage, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's message quotes the DSN (its password masked); say only what is wrong.
		return nil, errors.New("idp: the PostgreSQL DSN does not parse (a postgres:// URL or libpq keyword=value pairs)")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	} else if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	for k, v := range pgSessionDefaults {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	s := &PostgresStorage{password: cfg.ConnConfig.Password, callTimeout: opts.CallTimeout}
	if s.callTimeout <= 0 {
		s.callTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, s.fault(err)
	}
	s.pool = pool
	// A database that accepts connections and never answers must not hang a start: the check
	// and the migrations get three call timeouts (30 s by default) in all.
	octx, cancel := context.WithTimeout(ctx, 3*s.callTimeout)
	defer cancel()
	if err := pool.Ping(octx); err != nil {
		pool.Close()
		return nil, s.fault(err)
	}
	if err := s.migrate(octx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be released. Later calls fail with
// ErrStoreFault.
func (s *PostgresStorage) Close() { s.pool.Close() }

// fault turns a pgx error into ErrStoreFault with a message that names neither the password nor
// the user nor the DSN. Storage's own sentinels pass as they are, and so does the cancellation of
// the caller's context (as in the KV storage).
func (s *PostgresStorage) fault(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrStoreFault), errors.Is(err, ErrNotFound), errors.Is(err, ErrAlreadyUsed),
		errors.Is(err, ErrChanged), errors.Is(err, ErrLimitReached), errors.Is(err, ErrWrongClient),
		errors.Is(err, ErrExpired), errors.Is(err, errUnstorable):
		return err
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	// The server ended our sessions (57P01 admin shutdown on a restart, 57P02 crash, 57P03
	// starting up): every idle connection of the pool is dead too, and pgxpool checks one before
	// use only after a second idle. Reset the pool so that this request is the only one to fail.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "57P") && s.pool != nil {
		s.pool.Reset()
	}
	// A deadline (pgx's connect timeout, a statement that waited too long) is a fault like any
	// other: the database did not answer in time, and the caller answers 503.
	return fmt.Errorf("%w: postgres: %s", ErrStoreFault, s.describe(err))
}

// describe says what went wrong in words that are safe to log. pgconn's ConnectError quotes the
// user and database, an authentication failure quotes the user, and PgError.Detail may quote
// values: none of them is repeated.
func (s *PostgresStorage) describe(err error) string {
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var msg string
	switch {
	case errors.As(err, &connErr):
		switch {
		case errors.As(err, &pgErr):
			msg = "the server refused the connection (SQLSTATE " + pgErr.Code + ")"
		case pgconn.Timeout(err):
			msg = "cannot connect: timeout"
		case errors.As(err, &dnsErr):
			msg = "cannot connect: the host name does not resolve"
		case errors.As(err, &opErr) && opErr.Err != nil:
			msg = "cannot connect: " + opErr.Err.Error()
		default:
			msg = "cannot connect"
		}
	case errors.As(err, &pgErr):
		msg = pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	case errors.As(err, &opErr) && opErr.Err != nil:
		msg = "connection lost: " + opErr.Err.Error()
	default:
		msg = err.Error()
	}
	if s.password != "" {
		msg = strings.ReplaceAll(msg, s.password, "xxxxx")
	}
	return msg
}

// pgQueryer is what the helpers below run statements on: the pool or a transaction.
type pgQueryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// errUnstorable is returned for a record keyed by a string PostgreSQL's text cannot hold.
var errUnstorable = errors.New("idp: a key with NUL or invalid UTF-8 cannot be stored in PostgreSQL")

// pgStorable reports whether every string in args can be a text parameter.
func pgStorable(args []any) bool {
	for _, a := range args {
		if v, ok := a.(string); ok && (!utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0) {
			return false
		}
	}
	return true
}

// getJSON scans the one bytea column of query's row (a JSON record) into v: no row gives
// ErrNotFound, and so does a key no row can have; a record that does not decode is a fault.
func (s *PostgresStorage) getJSON(ctx context.Context, q pgQueryer, table string, v any, query string, args ...any) error {
	if !pgStorable(args) {
		return ErrNotFound
	}
	var b []byte
	if err := q.QueryRow(ctx, query, args...).Scan(&b); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return s.fault(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %w", errUndecodable, table, err)
	}
	return nil
}

// exec runs a statement and reports how many rows it touched. A string argument PostgreSQL
// cannot hold gives errUnstorable.
func (s *PostgresStorage) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if !pgStorable(args) {
		return 0, errUnstorable
	}
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, s.fault(err)
	}
	return tag.RowsAffected(), nil
}

// execMissingOK is exec for the operations whose record may be missing (revoke, delete): a key
// PostgreSQL cannot hold names no stored record, so there is nothing to do, as with the KV storage.
func (s *PostgresStorage) execMissingOK(ctx context.Context, query string, args ...any) error {
	_, err := s.exec(ctx, query, args...)
	if errors.Is(err, errUnstorable) {
		return nil
	}
	return err
}

// inTx runs fn in a transaction (READ COMMITTED, PostgreSQL's default) and commits if fn returns
// nil; otherwise it rolls back and returns fn's error through fault (so a caller that hands fn a
// callback of its own keeps that callback's error aside and returns it as it was).
func (s *PostgresStorage) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fault(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return s.fault(err)
	}
	return s.fault(tx.Commit(ctx))
}

// pgUpdate locks the row of table whose key column is key (SELECT ... FOR UPDATE), lets fn change
// its record and writes it back (and, if expOf is not nil, the exp column from it), in one
// transaction. A missing row gives ErrNotFound; an error from fn changes nothing. table and
// keyCol are constants of this package, never input.
func pgUpdate[T any](ctx context.Context, s *PostgresStorage, table, keyCol, key string, expOf func(*T) int64, fn func(*T) error) (T, error) {
	var rec T
	var fnErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := s.getJSON(ctx, tx, table, &rec, "SELECT rec FROM "+table+" WHERE "+keyCol+" = $1 FOR UPDATE", key); err != nil {
			return err
		}
		if fnErr = fn(&rec); fnErr != nil {
			return fnErr
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if expOf != nil {
			_, err = tx.Exec(ctx, "UPDATE "+table+" SET rec = $2, exp = $3 WHERE "+keyCol+" = $1", key, b, expOf(&rec))
		} else {
			_, err = tx.Exec(ctx, "UPDATE "+table+" SET rec = $2 WHERE "+keyCol+" = $1", key, b)
		}
		return err
	})
	if fnErr != nil {
		return rec, fnErr // fn's own error, as it gave it, not a fault
	}
	return rec, err
}

// pgTake deletes the row of table whose key column is key and returns its record, in one
// statement: of concurrent callers at most one gets it, the others ErrNotFound.
func pgTake[T any](ctx context.Context, s *PostgresStorage, table, keyCol, key string) (T, error) {
	var rec T
	err := s.getJSON(ctx, s.pool, table, &rec, "DELETE FROM "+table+" WHERE "+keyCol+" = $1 RETURNING rec", key)
	return rec, err
}

// pgExpiring are the tables DeleteExpired empties of records past their end: the name and the
// SQL expression of the end (unix seconds; 0 never expires).
var pgExpiring = []struct{ table, end string }{
	{"mcpgate_codes", "GREATEST(exp, purge_at)"},
	{"mcpgate_refresh", "exp"},
	{"mcpgate_families", "exp"},
	{"mcpgate_access", "exp"},
	{"mcpgate_sessions", "exp"},
	{"mcpgate_auth_requests", "exp"},
	{"mcpgate_login_states", "exp"},
	{"mcpgate_jti", "exp"},
}

// pgCleanupBatch is how many rows one cleanup statement deletes at most.
const pgCleanupBatch = 1000

// DeleteExpired implements Storage. One replica at a time: it holds a session advisory lock
// (pg_try_advisory_lock) on one connection while it works, and when another replica holds it
// (cleaning up now), it returns 0 and nil rather than wait to find nothing left.
//
// It never waits for a row: each statement deletes a batch of expired rows that no other
// transaction has locked (FOR UPDATE SKIP LOCKED) and commits on its own, so cleanup can
// neither deadlock with a request that locks the same rows in another order (a sign-out revoking
// a user's families) nor hold thousands of row locks in one transaction after a long outage. A
// row skipped now goes at the next run.
func (s *PostgresStorage) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel := s.bound(ctx, 10)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, s.fault(err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", pgLockCleanup).Scan(&locked); err != nil {
		return 0, s.fault(err)
	}
	if !locked {
		return 0, nil
	}
	// The lock ends with the session if this connection dies; else it is released here, on a
	// context of its own (a cancelled ctx must not leave it held) with a deadline (a stalled
	// database must not hold Close). If the unlock fails, the connection is closed rather than
	// returned to the pool still holding the lock, which would stop every replica's cleanup.
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.callTimeout)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", pgLockCleanup); err != nil {
			_ = conn.Hijack().Close(uctx)
		}
	}()
	total := 0
	for _, t := range pgExpiring {
		for {
			tag, err := conn.Exec(ctx, "DELETE FROM "+t.table+" WHERE ctid = ANY(ARRAY(SELECT ctid FROM "+t.table+
				" WHERE "+t.end+" > 0 AND "+t.end+" < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))", now.Unix(), pgCleanupBatch)
			if err != nil {
				return total, s.fault(fmt.Errorf("delete expired %s: %w", t.table, err))
			}
			total += int(tag.RowsAffected())
			if tag.RowsAffected() < pgCleanupBatch {
				break
			}
		}
	}
	return total, nil
}

var _ Storage = (*PostgresStorage)(nil)
