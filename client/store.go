package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The cache layout under Config.CacheDir:
//
//	clients/<sha256(issuer)>.json            one registration per authorization server
//	tokens/<sha256(issuer "\n" resource)>.json one token set per issuer and resource
//
// Directories are 0700, files 0600, written to a temporary file in the same directory and
// renamed over the old one, so a crash never leaves a torn file.
type store struct {
	dir string
}

// registration is a cached dynamic (or remembered) client registration.
type registration struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret,omitempty"`
	AuthMethod   string    `json:"token_endpoint_auth_method,omitempty"`
	RedirectURI  string    `json:"redirect_uri"`
	Scope        string    `json:"scope,omitempty"`
	RegisteredAt time.Time `json:"registered_at"`
	// SecretExpiresAt is client_secret_expires_at (Unix seconds, 0 = never).
	SecretExpiresAt int64 `json:"client_secret_expires_at,omitempty"`
}

// tokenRecord is a cached token set for one issuer and resource.
type tokenRecord struct {
	Issuer       string    `json:"issuer"`
	Resource     string    `json:"resource"`
	MCPURL       string    `json:"mcp_url"`
	ClientID     string    `json:"client_id"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scopes       []string  `json:"scopes,omitempty"`
	ObtainedAt   time.Time `json:"obtained_at"`
}

func hashName(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:16]) + ".json"
}

func (s *store) registrationPath(issuer string) string {
	return filepath.Join(s.dir, "clients", hashName(issuer))
}

func (s *store) tokenPath(issuer, resource string) string {
	return filepath.Join(s.dir, "tokens", hashName(issuer, resource))
}

func (s *store) loadRegistration(issuer string) (*registration, error) {
	var r registration
	ok, err := readJSONFile(s.registrationPath(issuer), &r)
	if err != nil || !ok || r.Issuer != issuer || r.ClientID == "" {
		return nil, err
	}
	return &r, nil
}

func (s *store) saveRegistration(r *registration) error {
	return writeJSONFile(s.registrationPath(r.Issuer), r)
}

func (s *store) deleteRegistration(issuer string) error {
	err := os.Remove(s.registrationPath(issuer))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// findToken returns the most recently obtained token record whose resource covers mcpURL.
func (s *store) findToken(mcpURL string) (*tokenRecord, error) {
	dir := filepath.Join(s.dir, "tokens")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the token cache: %w", err)
	}
	var best *tokenRecord
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var rec tokenRecord
		ok, err := readJSONFile(filepath.Join(dir, e.Name()), &rec)
		if err != nil || !ok || rec.AccessToken == "" {
			continue // a foreign or damaged file is not ours to fail on
		}
		if e.Name() != hashName(rec.Issuer, rec.Resource) || !resourceMatches(rec.Resource, mcpURL) {
			continue
		}
		if best == nil || rec.ObtainedAt.After(best.ObtainedAt) {
			r := rec
			best = &r
		}
	}
	return best, nil
}

func (s *store) saveToken(rec *tokenRecord) error {
	return writeJSONFile(s.tokenPath(rec.Issuer, rec.Resource), rec)
}

func (s *store) deleteToken(rec *tokenRecord) error {
	err := os.Remove(s.tokenPath(rec.Issuer, rec.Resource))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func readJSONFile(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, nil // damaged: treated as absent and overwritten on the next save
	}
	return true, nil
}

// writeJSONFile writes v atomically with mode 0600, creating missing directories with mode 0700
// (existing directories are left as they are: -cache-dir may name a shared one).
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the cache directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write the cache: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the cache: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the cache: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write the cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write the cache: %w", err)
	}
	return nil
}
