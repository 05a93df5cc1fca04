package mcpidp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// testKey is a fixed base64 encryption key (a test value, not a secret).
var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestStorageCaddyfile(t *testing.T) {
	for _, tt := range []struct {
		name    string
		input   string
		want    *IDPStorage
		wantErr string
	}{
		{"postgres", "mcp_idp {\n storage postgres {\n  dsn {env.MCPGATE_PG_DSN}\n }\n}", &IDPStorage{Postgres: &IDPPostgres{DSN: "{env.MCPGATE_PG_DSN}"}}, ""},
		{"quoted keyword DSN", "mcp_idp {\n storage postgres {\n  dsn \"host=db dbname=idp\"\n }\n}", &IDPStorage{Postgres: &IDPPostgres{DSN: "host=db dbname=idp"}}, ""},
		{"no backend", "mcp_idp {\n storage\n}", nil, "storage needs a backend"},
		{"unknown backend", "mcp_idp {\n storage redis {\n }\n}", nil, `unknown storage backend "redis"`},
		{"no dsn", "mcp_idp {\n storage postgres {\n }\n}", nil, "storage postgres needs a dsn"},
		{"unknown option", "mcp_idp {\n storage postgres {\n  dsn x\n  pool 4\n }\n}", nil, `unrecognized storage postgres option "pool"`},
		// An unquoted keyword=value DSN splits into tokens; the error must not quote any of
		// them, since one may be the password.
		{"unquoted keyword DSN", "mcp_idp {\n storage postgres {\n  dsn host=db password=hunter2-secret\n }\n}", nil, "quote a keyword=value DSN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m IDP
			err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error quotes the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Storage, tt.want) {
				t.Fatalf("storage %+v, want %+v", m.Storage, tt.want)
			}
		})
	}
}

// The JSON shape is {"storage": {"postgres": {"dsn": ...}}}, and the key rotation knobs take
// Caddy's duration strings; all reach idp.Options.
func TestStorageJSON(t *testing.T) {
	in := `{"issuer":"https://a","dev_login":true,"storage":{"postgres":{"dsn":"{env.X}"}},` +
		`"key_rotation_interval":"12h","key_pre_publish":"10m","cleanup_interval":"1m"}`
	var m IDP
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if !m.postgres() || m.Storage.Postgres.DSN != "{env.X}" {
		t.Fatalf("storage %+v", m.Storage)
	}
	opts, err := m.idpOptions(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if opts.KeyRotationInterval != 12*time.Hour || opts.KeyPrePublish != 10*time.Minute || opts.CleanupInterval != time.Minute {
		t.Fatalf("rotation %v, pre-publish %v, cleanup %v", opts.KeyRotationInterval, opts.KeyPrePublish, opts.CleanupInterval)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	for _, tt := range []struct {
		m    IDP
		want string
	}{
		{IDP{Issuer: "https://a", DevLogin: true, Storage: &IDPStorage{}}, "storage names no backend"},
		{IDP{Issuer: "https://a", DevLogin: true, Storage: &IDPStorage{Postgres: &IDPPostgres{}}}, "needs a dsn"},
		{IDP{Issuer: "https://a", DevLogin: true, KeyPrePublish: -1}, "key_pre_publish must not be negative"},
		{IDP{Issuer: "https://a", DevLogin: true, KeyPrePublish: caddy.Duration(time.Minute)}, "key_pre_publish (1m0s) must be longer than cleanup_interval (5m0s)"},
		{IDP{Issuer: "https://a", DevLogin: true, CleanupInterval: caddy.Duration(2 * time.Hour)}, "key_pre_publish (1h0m0s) must be longer than cleanup_interval (2h0m0s)"},
	} {
		if err := tt.m.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
		}
	}
}

// Provisioning with storage postgres refuses what would break replicas or leak the DSN: an
// empty expansion, a missing encryption key (never generated, even with dev_login), and
// connection failures reported without the DSN, its user or its password.
func TestStoragePostgresProvisionErrors(t *testing.T) {
	t.Setenv("MCPGATE_IDP_KEY", "")
	t.Setenv("MCPGATE_TEST_EMPTY", "")
	good := pgtest.NewDatabase(t)
	wrongPassword := withPassword(t, good, "Wr0ng-pa55word-for-the-test")
	closedPort := "postgres://mcpgate_probe:Cl0sed-port-pa55word@127.0.0.1:" + freePort(t) + "/idp?sslmode=disable&connect_timeout=5"
	t.Setenv("MCPGATE_TEST_WRONG_DSN", wrongPassword)
	for _, tt := range []struct {
		name, dsn, key string
		want           string
		secrets        []string // none may appear in the error
	}{
		{"empty expansion", "{env.MCPGATE_TEST_EMPTY}", testKey, "dsn expands to nothing", nil},
		{"no encryption key", good, "", "same encryption key on every replica", []string{good}},
		{"encryption key expands to nothing", good, "{env.MCPGATE_TEST_EMPTY}", "encryption_key expands to nothing", []string{good}},
		{"wrong password", "{env.MCPGATE_TEST_WRONG_DSN}", testKey, "the server refused the connection", []string{wrongPassword, "Wr0ng-pa55word", "mcpgate_test:"}},
		{"closed port", closedPort, testKey, "cannot connect", []string{closedPort, "Cl0sed-port-pa55word", "mcpgate_probe"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := IDP{Issuer: "https://idp.example", DataDir: dir, DevLogin: true, EncryptionKey: tt.key,
				Storage: &IDPStorage{Postgres: &IDPPostgres{DSN: tt.dsn}}}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := m.Provision(ctx)
			if cerr := m.Cleanup(); cerr != nil {
				t.Errorf("Cleanup after a failed Provision: %v", cerr)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Provision error = %v, want it to contain %q", err, tt.want)
			}
			t.Logf("Provision: %v", err)
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error quotes %q: %v", s, err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "idp.key")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("idp.key was created with storage postgres (stat: %v)", err)
			}
			if n, _ := idpStores.References(postgresPoolKey(caddy.NewReplacer().ReplaceAll(tt.dsn, ""))); n != 0 {
				t.Fatalf("a failed Provision left %d references to the pool", n)
			}
		})
	}
}

// Two handlers on one DSN (a config reload overlaps the old and the new) share one pool, keyed
// by a hash of the DSN; the pool stays open while one handler uses it and is closed, its
// connections gone, when the last one is cleaned up. The key comes from an existing idp.key
// (or encryption_key), and both publish the same signing keys.
func TestStoragePostgresSharedPool(t *testing.T) {
	t.Setenv("MCPGATE_IDP_KEY", "")
	dsn := pgtest.NewDatabase(t)
	t.Setenv("MCPGATE_TEST_PG_DSN_FOR_IDP", dsn)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "idp.key"), []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := func(key string) *IDP {
		return &IDP{Issuer: "https://localhost:9443", DataDir: dir, DevLogin: true, EncryptionKey: key,
			Storage: &IDPStorage{Postgres: &IDPPostgres{DSN: "{env.MCPGATE_TEST_PG_DSN_FOR_IDP}"}}}
	}
	poolKey := postgresPoolKey(dsn)
	if strings.Contains(poolKey, dsn) || strings.Contains(poolKey, "mcpgate_test") {
		t.Fatalf("the pool key %q holds the DSN", poolKey)
	}
	old, cancelOld := provisionIDP(t, cfg(""))
	defer cancelOld()
	if n, _ := idpStores.References(poolKey); n != 1 {
		t.Fatalf("references after the first handler: %d, want 1", n)
	}
	status, jwks1 := idpGet(t, old, "/jwks.json")
	if status != http.StatusOK || len(jwks1["keys"].([]any)) == 0 {
		t.Fatalf("jwks: status %d %v", status, jwks1)
	}
	cur, cancelCur := provisionIDP(t, cfg(testKey)) // the same key, given in the config
	defer cancelCur()
	if n, _ := idpStores.References(poolKey); n != 2 {
		t.Fatalf("references after the second handler: %d, want 2 (one shared pool)", n)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, jwks2 := idpGet(t, cur, "/jwks.json"); !reflect.DeepEqual(jwks1, jwks2) {
		t.Fatalf("the second handler publishes other keys, or lost the pool with the first:\n%v\n%v", jwks1, jwks2)
	}
	if conns := backendCount(t, dsn); conns == 0 {
		t.Fatal("no connection to the database while a handler uses it")
	}
	if err := cur.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, _ := idpStores.References(poolKey); n != 0 {
		t.Fatalf("references after the last cleanup: %d", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for backendCount(t, dsn) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the pool's connections stay open after the last handler was cleaned up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withPassword returns dsn (a URL) with its password replaced.
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		t.Fatalf("pgtest's DSN is not a URL with a user; set %s to a postgres:// URL", pgtest.EnvDSN)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// backendCount is the number of client connections PostgreSQL has open to dsn's database,
// counted from the admin database.
func backendCount(t *testing.T, dsn string) int {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal("cannot parse the test DSN")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.AdminDSN())
	if err != nil {
		t.Fatalf("admin connection: %s", pgtest.Redact(err, pgtest.AdminDSN()))
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", cfg.Database).Scan(&n); err != nil {
		t.Fatalf("count connections: %v", err)
	}
	return n
}
