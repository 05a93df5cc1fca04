package keycloaktest

import (
	"archive/zip"
	"context"
	"crypto/sha1" // Maven Central publishes SHA-1 checksums; this checks integrity, not authenticity
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultVersion is the Keycloak release Start runs when Options.Version is empty.
const DefaultVersion = "26.5.6"

// Environment variables that replace the download (see the package documentation).
const (
	// EnvHome names an unpacked Keycloak distribution (the directory holding bin/kc.sh) to use
	// instead of the cached one. Its version is whatever it is; Options.Version is ignored.
	EnvHome = "MCPGATE_KEYCLOAK_HOME"
	// EnvZip names a keycloak-quarkus-dist zip file to unpack instead of downloading one.
	EnvZip = "MCPGATE_KEYCLOAK_ZIP"
)

// MavenCentral is the repository the distribution is downloaded from.
const MavenCentral = "https://repo.maven.apache.org/maven2"

// DistURL returns the Maven Central URL of org.keycloak:keycloak-quarkus-dist:version:zip.
func DistURL(version string) string {
	return fmt.Sprintf("%s/org/keycloak/keycloak-quarkus-dist/%s/keycloak-quarkus-dist-%s.zip", MavenCentral, version, version)
}

// CacheDir returns the directory that holds downloaded zips and unpacked distributions:
// $XDG_CACHE_HOME/mcpgate/keycloak, or ~/.cache/mcpgate/keycloak when XDG_CACHE_HOME is unset
// (os.UserCacheDir's rule on Linux).
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("keycloaktest: no cache directory (set XDG_CACHE_HOME or HOME, or %s): %w", EnvHome, err)
	}
	return filepath.Join(base, "mcpgate", "keycloak"), nil
}

// Dist returns the directory of an unpacked Keycloak distribution of the given version (default
// DefaultVersion), downloading and unpacking it into CacheDir on first use. $MCPGATE_KEYCLOAK_HOME
// and $MCPGATE_KEYCLOAK_ZIP take precedence. The returned tree is shared: callers copy it before
// running it (Start does). Concurrent callers, also in other processes, are safe: every file
// appears under its final name only once complete.
func Dist(ctx context.Context, client *http.Client, version string) (string, error) {
	if home := os.Getenv(EnvHome); home != "" {
		if _, err := os.Stat(filepath.Join(home, "bin", "kc.sh")); err != nil {
			return "", fmt.Errorf("keycloaktest: $%s is not a Keycloak distribution: %w", EnvHome, err)
		}
		return home, nil
	}
	if version == "" {
		version = DefaultVersion
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	home := filepath.Join(cache, "keycloak-"+version)
	if _, err := os.Stat(filepath.Join(home, "bin", "kc.sh")); err == nil {
		return home, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("keycloaktest: %w", err)
	}
	zipPath := os.Getenv(EnvZip)
	if zipPath == "" {
		zipPath = filepath.Join(cache, fmt.Sprintf("keycloak-quarkus-dist-%s.zip", version))
		if _, err := os.Stat(zipPath); err != nil {
			if err := download(ctx, client, DistURL(version), zipPath); err != nil {
				return "", err
			}
		}
	}
	tmp, err := os.MkdirTemp(cache, ".unpack-")
	if err != nil {
		return "", fmt.Errorf("keycloaktest: %w", err)
	}
	defer os.RemoveAll(tmp)
	top, err := unzip(zipPath, tmp)
	if err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, top), home); err != nil {
		if _, statErr := os.Stat(filepath.Join(home, "bin", "kc.sh")); statErr == nil {
			return home, nil // another process unpacked it first
		}
		return "", fmt.Errorf("keycloaktest: %w", err)
	}
	return home, nil
}

// download fetches url into dst, checking it against the repository's .sha1 file.
func download(ctx context.Context, client *http.Client, url, dst string) error {
	if client == nil {
		client = http.DefaultClient
	}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return resp, nil
	}
	sumResp, err := get(url + ".sha1")
	if err != nil {
		return fmt.Errorf("keycloaktest: download of the Keycloak distribution failed (set $%s or $%s to use a local copy): %w", EnvZip, EnvHome, err)
	}
	sumBody, err := io.ReadAll(io.LimitReader(sumResp.Body, 1024))
	sumResp.Body.Close()
	if err != nil {
		return fmt.Errorf("keycloaktest: %w", err)
	}
	want := strings.ToLower(strings.TrimSpace(strings.Fields(string(sumBody) + " ")[0]))
	resp, err := get(url)
	if err != nil {
		return fmt.Errorf("keycloaktest: download of the Keycloak distribution failed (set $%s or $%s to use a local copy): %w", EnvZip, EnvHome, err)
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp(filepath.Dir(dst), ".download-")
	if err != nil {
		return fmt.Errorf("keycloaktest: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha1.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("keycloaktest: download of %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keycloaktest: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("keycloaktest: %s: SHA-1 %s, repository says %q", url, got, want)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("keycloaktest: %w", err)
	}
	return nil
}

// unzip extracts the zip archive into dir and returns the name of its single top-level directory.
func unzip(src, dir string) (string, error) {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return "", fmt.Errorf("keycloaktest: %s: %w", src, err)
	}
	defer zr.Close()
	top := ""
	for _, zf := range zr.File {
		name := filepath.FromSlash(zf.Name)
		if !filepath.IsLocal(name) {
			return "", fmt.Errorf("keycloaktest: %s: entry %q leaves the target directory", src, zf.Name)
		}
		first, _, _ := strings.Cut(zf.Name, "/")
		if top == "" {
			top = first
		} else if first != top {
			return "", fmt.Errorf("keycloaktest: %s: more than one top-level entry (%q, %q)", src, top, first)
		}
		target := filepath.Join(dir, name)
		if zf.FileInfo().IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", fmt.Errorf("keycloaktest: %w", err)
			}
			continue
		}
		if !zf.Mode().IsRegular() {
			return "", fmt.Errorf("keycloaktest: %s: entry %q is not a regular file", src, zf.Name)
		}
		if err := extractFile(zf, target); err != nil {
			return "", err
		}
	}
	if top == "" {
		return "", errors.New("keycloaktest: " + src + " is empty")
	}
	return top, nil
}

func extractFile(zf *zip.File, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("keycloaktest: %w", err)
	}
	rc, err := zf.Open()
	if err != nil {
		return fmt.Errorf("keycloaktest: %s: %w", zf.Name, err)
	}
	defer rc.Close()
	mode := zf.Mode().Perm() | 0o600
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("keycloaktest: %w", err)
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return fmt.Errorf("keycloaktest: %s: %w", zf.Name, err)
	}
	return out.Close()
}

// copyTree copies the regular files and directories under src to dst (which must not exist),
// keeping permission bits. Each server runs in a copy because start-dev rewrites lib/quarkus and
// data/ of the tree it runs in.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if rel == "data" { // a previous run's database and imports stay behind
				return filepath.SkipDir
			}
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm()|0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		default:
			return nil // sockets, symlinks: a distribution has none
		}
	})
}
