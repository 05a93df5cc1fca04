package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"-listen", "-issuer", "-data-dir", "-github-client-id", "-github-client-secret", "-github-url", "-github-api-url", "-default-resource", "-gateway-client-id", "-gateway-audience", "-scopes", "-dev", "MCPGATE_GATEWAY_SECRET", "MCPGATE_IDP_KEY"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
}

func TestRunRefusesWithoutLoginMethod(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-in-memory"}, func(string) string { return "" }, &out, nil)
	if err == nil || !strings.Contains(err.Error(), "-dev") {
		t.Fatalf("got %v", err)
	}
}

// Starts the program, reads metadata, shuts down gracefully; data files are 0600.
func TestRunServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	env := map[string]string{"MCPGATE_GATEWAY_SECRET": "s3cret-s3cret-s3cret"}
	var logs bytes.Buffer
	go func() {
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-issuer", "http://idp.test", "-data-dir", dir, "-dev",
			"-default-resource", "https://localhost:8443/mcp", "-scopes", "mcp mcp:tools"},
			func(k string) string { return env[k] }, &logs, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	resp, err := http.Get("http://" + addr + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["issuer"] != "http://idp.test" || md["token_endpoint"] != "http://idp.test/token" {
		t.Errorf("metadata %v", md)
	}
	if sc, _ := json.Marshal(md["scopes_supported"]); string(sc) != `["mcp","mcp:tools"]` {
		t.Errorf("scopes_supported %s, want the -scopes value", sc)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	for _, f := range []string{"idp.db", "idp.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v", f, err, fi.Mode())
		}
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("secret in logs")
	}
}

// -scopes sets the scopes clients may request; without it the library default ("mcp") applies.
func TestScopesFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"mcp"}},
		{[]string{"-scopes", "mcp mcp:tools"}, []string{"mcp", "mcp:tools"}},
		{[]string{"-scopes", "  mcp:tools   repo "}, []string{"mcp:tools", "repo"}},
	} {
		c, err := parseFlags(tc.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := strings.Fields(c.scopes); !slices.Equal(got, tc.want) {
			t.Errorf("%v: scopes %q, want %q", tc.args, got, tc.want)
		}
	}
}

// The gateway's exchange client takes its audiences from -gateway-audience (repeatable), else
// from -default-resource; with a secret and neither, the program refuses to start rather than let
// the gateway exchange tokens issued for any resource.
func TestGatewayAudiences(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		secret  string
		want    []string
		wantErr string
	}{
		{"no secret: no exchange client", []string{"-gateway-audience", "https://a.example/mcp"}, "", nil, ""},
		{"repeatable", []string{"-gateway-audience", "https://a.example/mcp", "-gateway-audience", "https://b.example/mcp", "-default-resource", "https://c.example/mcp"}, "s", []string{"https://a.example/mcp", "https://b.example/mcp"}, ""},
		{"default resource", []string{"-default-resource", "https://localhost:8443/mcp"}, "s", []string{"https://localhost:8443/mcp"}, ""},
		{"neither", nil, "s", nil, "-gateway-audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			got, err := exchangeClients(c, tc.secret)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("exchange clients %+v without a secret", got)
				}
				return
			}
			if len(got) != 1 || got[0].ID != "gateway" || got[0].Secret != tc.secret || !slices.Equal(got[0].Audiences, tc.want) {
				t.Fatalf("exchange clients %+v, want audiences %q", got, tc.want)
			}
		})
	}
	// run itself refuses to start: secret, no audience.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := run(ctx, []string{"-in-memory", "-dev", "-listen", "127.0.0.1:0"},
		func(k string) string {
			if k == "MCPGATE_GATEWAY_SECRET" {
				return "s3cret-s3cret-s3cret"
			}
			return ""
		}, io.Discard, func(string) { t.Error("started without gateway audiences"); cancel() })
	if err == nil || !strings.Contains(err.Error(), "-gateway-audience") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("run: %v", err)
	}
}

// -postgres-dsn defaults to MCPGATE_PG_DSN, and -github-client-secret to GITHUB_CLIENT_SECRET,
// after parsing: -h names both variables and prints neither value.
func TestSecretFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{
		"MCPGATE_PG_DSN":       "postgres://idp:Pg-pa55word-in-env@db.example/idp",
		"GITHUB_CLIENT_SECRET": "gh-secret-in-env",
	}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, getenv, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"-postgres-dsn", "MCPGATE_PG_DSN", "visible in ps"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, secret := range []string{"Pg-pa55word-in-env", "gh-secret-in-env"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("-h prints %q from the environment", secret)
		}
	}
	for _, tc := range []struct {
		name    string
		args    []string
		dsn     string
		wantErr string
	}{
		{"from the environment", nil, env["MCPGATE_PG_DSN"], ""},
		{"the flag wins", []string{"-postgres-dsn", "host=other dbname=idp"}, "host=other dbname=idp", ""},
		{"not with -in-memory", []string{"-in-memory"}, "", "-postgres-dsn and -in-memory exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, getenv, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.postgresDSN != tc.dsn || c.ghClientSecret != "gh-secret-in-env" {
				t.Fatalf("dsn %q, github secret set %v", c.postgresDSN, c.ghClientSecret != "")
			}
		})
	}
}
