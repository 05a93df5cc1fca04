package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
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
	for _, f := range []string{"-listen", "-issuer", "-data-dir", "-github-client-id", "-github-client-secret", "-github-url", "-github-api-url", "-default-resource", "-gateway-client-id", "-dev", "MCPGATE_GATEWAY_SECRET", "MCPGATE_IDP_KEY"} {
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
		errc <- run(ctx, []string{"-listen", "127.0.0.1:0", "-issuer", "http://idp.test", "-data-dir", dir, "-dev"},
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
