package pgtest

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A database of its own: usable by the test, and gone after it.
func TestNewDatabase(t *testing.T) {
	var dsn string
	t.Run("inner", func(t *testing.T) {
		dsn = NewDatabase(t)
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(Redact(err, dsn))
		}
		defer conn.Close(context.Background())
		var db string
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(db, "mcpgate_test_") || len(db) != len("mcpgate_test_")+16 {
			t.Fatalf("connected to %q, want a mcpgate_test_<hex> database", db)
		}
		if _, err := conn.Exec(context.Background(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), AdminDSN())
	if err != nil {
		t.Fatal(Redact(err, AdminDSN()))
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", cfg.Database).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after its test ended", cfg.Database)
	}
}

// fatalTB records what Fatalf said and ends its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()               {}
func (f *fatalTB) Cleanup(func())        {}
func (f *fatalTB) Errorf(string, ...any) {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// No server: the test fails, naming PostgreSQL and how to get it, never printing the password.
func TestNewDatabaseNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv(EnvDSN, "postgres://someone:s3cret-pw@"+addr+"/postgres?sslmode=disable&connect_timeout=5")
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewDatabase(f)
	}()
	<-done
	t.Logf("the failure reads: %s", f.msg)
	for _, want := range []string{"PostgreSQL", ".ci/run", EnvDSN} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("message %q does not say %q", f.msg, want)
		}
	}
	if strings.Contains(f.msg, "s3cret-pw") {
		t.Errorf("message prints the password: %q", f.msg)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"},
		{"host=127.0.0.1 dbname=postgres", "host=127.0.0.1 dbname=postgres dbname=x"},
	} {
		got, err := WithDatabase(tc.in, "x")
		if err != nil || got != tc.want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "x" {
			t.Errorf("%q parses to database %q (%v)", got, cfg.Database, err)
		}
	}
}
