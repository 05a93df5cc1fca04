package keycloaktest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeDist builds a zip shaped like keycloak-quarkus-dist: one top directory with bin/kc.sh.
func fakeDist(t *testing.T, entries map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range entries {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeMaven serves one zip and its .sha1 under Maven Central's layout; sum replaces the real sum.
func fakeMaven(t *testing.T, version string, zipBytes []byte, sum string, hits *atomic.Int32) *httptest.Server {
	t.Helper()
	if sum == "" {
		s := sha1.Sum(zipBytes)
		sum = hex.EncodeToString(s[:])
	}
	u, err := url.Parse(DistURL(version))
	if err != nil {
		t.Fatal(err)
	}
	path := u.Path
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case path:
			hits.Add(1)
			_, _ = w.Write(zipBytes)
		case path + ".sha1":
			_, _ = w.Write([]byte(sum + "\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// toMaven rewrites requests for Maven Central to srv.
type toMaven struct{ srv *httptest.Server }

func (m toMaven) RoundTrip(r *http.Request) (*http.Response, error) {
	u := *r.URL
	u.Scheme, u.Host = "http", strings.TrimPrefix(m.srv.URL, "http://")
	r2 := r.Clone(r.Context())
	r2.URL = &u
	r2.Host = u.Host
	return http.DefaultTransport.RoundTrip(r2)
}

func TestDistDownloadsOnceAndUnpacks(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv(EnvHome, "")
	t.Setenv(EnvZip, "")
	var hits atomic.Int32
	z := fakeDist(t, map[string]string{"keycloak-9.9.9/bin/kc.sh": "#!/bin/sh\n", "keycloak-9.9.9/lib/a.jar": "jar"})
	client := &http.Client{Transport: toMaven{fakeMaven(t, "9.9.9", z, "", &hits)}}
	for range 2 {
		home, err := Dist(context.Background(), client, "9.9.9")
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(cache, "mcpgate", "keycloak", "keycloak-9.9.9"); home != want {
			t.Fatalf("home = %s, want %s", home, want)
		}
		fi, err := os.Stat(filepath.Join(home, "bin", "kc.sh"))
		if err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Fatalf("kc.sh: %v, mode %v (want executable)", err, fi)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("zip downloaded %d times, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(cache, "mcpgate", "keycloak", "keycloak-quarkus-dist-9.9.9.zip")); err != nil {
		t.Errorf("zip not cached: %v", err)
	}
}

func TestDistRejects(t *testing.T) {
	good := map[string]string{"keycloak-9.9.9/bin/kc.sh": "#!/bin/sh\n"}
	for _, tc := range []struct {
		name    string
		entries map[string]string
		sum     string
		want    string
	}{
		{"checksum mismatch", good, strings.Repeat("0", 40), "SHA-1"},
		{"entry outside the target", map[string]string{"../evil": "x"}, "", "leaves the target directory"},
		{"two top-level directories", map[string]string{"a/bin/kc.sh": "x", "b/x": "y"}, "", "more than one top-level entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			t.Setenv("XDG_CACHE_HOME", cache)
			t.Setenv(EnvHome, "")
			t.Setenv(EnvZip, "")
			var hits atomic.Int32
			client := &http.Client{Transport: toMaven{fakeMaven(t, "9.9.9", fakeDist(t, tc.entries), tc.sum, &hits)}}
			_, err := Dist(context.Background(), client, "9.9.9")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(cache, "mcpgate", "keycloak", "keycloak-9.9.9")); !os.IsNotExist(err) {
				t.Errorf("a rejected distribution was installed (stat: %v)", err)
			}
		})
	}
}

func TestDistDownloadFailureNamesTheWayOut(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv(EnvHome, "")
	t.Setenv(EnvZip, "")
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, err := Dist(context.Background(), &http.Client{Transport: toMaven{srv}}, "9.9.9")
	if err == nil || !strings.Contains(err.Error(), EnvZip) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v, want a 404 naming %s", err, EnvZip)
	}
}

func TestDistFromEnv(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	zipPath := filepath.Join(t.TempDir(), "kc.zip")
	if err := os.WriteFile(zipPath, fakeDist(t, map[string]string{"keycloak-1.0/bin/kc.sh": "x"}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvHome, "")
	t.Setenv(EnvZip, zipPath)
	noNet := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("Dist went to the network although $" + EnvZip + " is set")
		return nil, nil
	})}
	home, err := Dist(context.Background(), noNet, "1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "kc.sh")); err != nil {
		t.Fatal(err)
	}

	t.Setenv(EnvHome, home)
	if got, err := Dist(context.Background(), noNet, "2.0"); err != nil || got != home {
		t.Fatalf("with $%s: %q, %v; want %q", EnvHome, got, err, home)
	}
	t.Setenv(EnvHome, t.TempDir())
	if _, err := Dist(context.Background(), noNet, ""); err == nil || !strings.Contains(err.Error(), EnvHome) {
		t.Fatalf("a $%s without bin/kc.sh: err = %v", EnvHome, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestStartFailsNamingJava(t *testing.T) {
	t.Setenv("JAVA_HOME", filepath.Join(t.TempDir(), "nojdk"))
	_, err := Start(context.Background(), Options{Realms: [][]byte{[]byte(`{"realm":"x"}`)}})
	if err == nil || !strings.Contains(err.Error(), "java not found") {
		t.Fatalf("err = %v, want one naming java", err)
	}
	t.Setenv("JAVA_HOME", "")
	t.Setenv("PATH", t.TempDir())
	_, err = Start(context.Background(), Options{Realms: [][]byte{[]byte(`{"realm":"x"}`)}})
	if err == nil || !strings.Contains(err.Error(), "java not found on $PATH") {
		t.Fatalf("err = %v, want one naming java on $PATH", err)
	}
}

func TestStartRejectsBadRealms(t *testing.T) {
	for _, realms := range [][][]byte{nil, {[]byte(`{}`)}, {[]byte(`not json`)}, {[]byte(`{"realm":"../x"}`)}} {
		if _, err := Start(context.Background(), Options{Realms: realms}); err == nil {
			t.Errorf("Start with realms %q: no error", realms)
		}
	}
}
