// Package pgtest gives each test a PostgreSQL database of its own on the test server, dropped
// when the test ends, so tests that run in parallel never see each other's rows.
//
// The server is the one .ci/run installs and starts (Debian's postgresql, with the local test
// role mcpgate_test). MCPGATE_TEST_PG_DSN names another one: its role needs CREATEDB.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable that overrides DefaultDSN.
const EnvDSN = "MCPGATE_TEST_PG_DSN"

// DefaultDSN is the test server's admin DSN when EnvDSN is unset: the local test role that
// .ci/run creates (a test credential, not a secret) on the default port.
const DefaultDSN = "postgres://mcpgate_test:mcpgate_test@127.0.0.1:5432/postgres?sslmode=disable"

// AdminDSN returns the DSN of the test server's administrative database: EnvDSN if set, else
// DefaultDSN.
func AdminDSN() string {
	if v := os.Getenv(EnvDSN); v != "" {
		return v
	}
	return DefaultDSN
}

// NewDatabase creates a database named mcpgate_test_<16 random hex digits> on the test server
// and returns a DSN for it (the admin DSN with the database replaced). The database is dropped
// (WITH (FORCE), so connections still open do not keep it) at t.Cleanup, after the cleanups the
// test registers later (such as closing its pools). No reachable server fails the test with a
// message that says how to get one; it never prints the DSN's password.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminDSN()
	name := "mcpgate_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: the test PostgreSQL server is not usable: %v\n"+
			"Run .ci/run, which installs PostgreSQL, starts it and creates the test role, "+
			"or set %s to the DSN of a PostgreSQL server whose role may CREATE DATABASE.",
			Redact(err, admin), EnvDSN)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the sessions on the database; a role without pg_signal_backend (.ci/run
		// grants it) cannot end an autovacuum worker's, which leaves soon: try a few times.
		var err error
		for i := range 5 {
			if err = exec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err == nil {
				return
			}
			time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
		}
		t.Errorf("pgtest: drop database %s: %v", name, Redact(err, admin))
	})
	dsn, err := WithDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// WithDatabase returns dsn (a URL or a keyword/value DSN) naming the database db instead.
func WithDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("%s is not a valid URL", EnvDSN) // the parse error may quote the password
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	// In keyword/value form a later keyword overrides an earlier one.
	return dsn + " dbname=" + db, nil
}

// Redact returns err's message with the password of dsn, if any, replaced by "xxxxx".
func Redact(err error, dsn string) string {
	msg := err.Error()
	cfg, perr := pgx.ParseConfig(dsn)
	if perr != nil {
		return "cannot parse the DSN"
	}
	if p := cfg.Password; p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

func exec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
