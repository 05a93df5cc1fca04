package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// testKey is a fixed encryption key (a test value, not a secret).
var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// With -postgres-dsn the encryption key is never generated, even with -dev, and a database that
// cannot be reached is reported without the DSN, its user or its password.
func TestPostgresRefusals(t *testing.T) {
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	closedDSN := "postgres://idp_user:Cl0sed-pa55word@" + closed + "/idp?sslmode=disable&connect_timeout=5"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string
		secrets []string
	}{
		{"no key, even with -dev", map[string]string{"MCPGATE_PG_DSN": closedDSN}, "same encryption key on every replica", []string{closedDSN}},
		{"closed port", map[string]string{"MCPGATE_PG_DSN": closedDSN, "MCPGATE_IDP_KEY": testKey}, "cannot connect", []string{closedDSN, "Cl0sed-pa55word", "idp_user"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs bytes.Buffer
			err := run(context.Background(), []string{"-dev", "-generate-key", "-listen", "127.0.0.1:0", "-data-dir", dir},
				func(k string) string { return tc.env[k] }, &logs, func(string) { t.Error("started") })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v, want %q", err, tc.want)
			}
			for _, s := range tc.secrets {
				if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
					t.Fatalf("the error or the log quotes %q: %v\n%s", s, err, logs.String())
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "idp.key")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("idp.key was generated with -postgres-dsn (stat: %v)", err)
			}
		})
	}
}

// Two mcpgate-idp processes' worth of run on one database, with the key from the environment
// for one and from <data-dir>/idp.key for the other, are replicas: the same signing keys, and a
// client registered on one is known to the other. The DSN is never logged.
func TestPostgresReplicas(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	keyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(keyDir, "idp.key"), []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var addrs [2]string
	var logs [2]bytes.Buffer
	for i, c := range []struct {
		env     map[string]string
		dataDir string
	}{
		{map[string]string{"MCPGATE_PG_DSN": dsn, "MCPGATE_IDP_KEY": testKey}, t.TempDir()},
		{map[string]string{}, keyDir},
	} {
		addrc, errc := make(chan string, 1), make(chan error, 1)
		args := []string{"-listen", "127.0.0.1:0", "-issuer", "http://idp.test", "-dev", "-data-dir", c.dataDir}
		if i == 1 {
			args = append(args, "-postgres-dsn", dsn)
		}
		wg.Go(func() {
			errc <- run(ctx, args, func(k string) string { return c.env[k] }, &logs[i], func(a string) { addrc <- a })
		})
		select {
		case addrs[i] = <-addrc:
		case err := <-errc:
			t.Fatalf("replica %d: %v\n%s", i, err, logs[i].String())
		case <-time.After(60 * time.Second):
			t.Fatalf("replica %d not ready", i)
		}
	}
	get := func(i int, path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + addrs[i] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	_, j0 := get(0, "/jwks.json")
	_, j1 := get(1, "/jwks.json")
	var k0, k1 any
	if json.Unmarshal(j0, &k0) != nil || json.Unmarshal(j1, &k1) != nil || !reflect.DeepEqual(k0, k1) || !strings.Contains(string(j0), `"kid"`) {
		t.Fatalf("the replicas publish different keys:\n%s\n%s", j0, j1)
	}
	resp, err := http.Post("http://"+addrs[0]+"/register", "application/json",
		strings.NewReader(`{"client_name":"t","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || reg.ClientID == "" {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	q := url.Values{
		"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {"http://127.0.0.1/cb"},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"s"},
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range addrs {
		resp, err := noRedirect.Get("http://" + addrs[i] + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "http://idp.test/") {
			t.Errorf("authorize for the client registered on replica 0, on replica %d: %d %q", i, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	cancel()
	wg.Wait()
	for i := range logs {
		if strings.Contains(logs[i].String(), dsn) || !strings.Contains(logs[i].String(), "postgres=true") {
			t.Errorf("replica %d's log names the DSN, or does not say it runs on PostgreSQL:\n%s", i, logs[i].String())
		}
	}
	if _, err := os.Stat(filepath.Join(keyDir, "idp.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a bbolt file was created beside the PostgreSQL storage (stat: %v)", err)
	}
}
