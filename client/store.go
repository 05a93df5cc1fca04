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
//	clients/<sha256(issuer)>.json                         one registration per authorization server
//	tokens/<sha256(issuer "\n" resource "\n" mcp URL)>.json one token set per MCP URL, issuer and resource
//
// A token set belongs to the MCP URL (canonical form, see canonicalMCPURL) whose discovery
// chose its issuer and resource, and is reused for that URL only: a resource naming a whole
// origin must not carry a token to another path of it (another tenant, perhaps with another
// authorization server). Keying by the MCP URL keeps the reuse free of network requests.
// Files of the earlier layout (tokens/<sha256(issuer "\n" resource)>.json) are read when
// their mcp_url is the URL asked for, and removed when that token set is saved or deleted.
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

func (s *store) tokenPath(rec *tokenRecord) string {
	return filepath.Join(s.dir, "tokens", hashName(rec.Issuer, rec.Resource, canonicalMCPURL(rec.MCPURL)))
}

// legacyTokenPath is where the earlier layout kept rec.
func (s *store) legacyTokenPath(rec *tokenRecord) string {
	return filepath.Join(s.dir, "tokens", hashName(rec.Issuer, rec.Resource))
}

// canonicalMCPURL lowercases scheme and host, drops a default port and one trailing slash;
// the path and query stay as they are. An unparsable URL is returned unchanged.
func canonicalMCPURL(raw string) string {
	u, err := canonicalResource(raw)
	if err != nil {
		return raw
	}
	return u.String()
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

// findToken returns the most recently obtained token record obtained for mcpURL (compared in
// canonical form), or nil.
func (s *store) findToken(mcpURL string) (*tokenRecord, error) {
	want := canonicalMCPURL(mcpURL)
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
		if rec.MCPURL == "" || canonicalMCPURL(rec.MCPURL) != want {
			continue
		}
		if e.Name() != filepath.Base(s.tokenPath(&rec)) && e.Name() != filepath.Base(s.legacyTokenPath(&rec)) {
			continue // copied or renamed: not where this record belongs
		}
		if best == nil || rec.ObtainedAt.After(best.ObtainedAt) {
			r := rec
			best = &r
		}
	}
	return best, nil
}

// saveToken writes rec under its MCP URL, issuer and resource, then tries to remove the same
// token set's file of the earlier layout, if any.
func (s *store) saveToken(rec *tokenRecord) error {
	if rec.MCPURL == "" {
		return errors.New("internal error: a token record without its MCP URL")
	}
	if err := writeJSONFile(s.tokenPath(rec), rec); err != nil {
		return err
	}
	_ = s.removeLegacy(rec) // best effort: the newer record wins in findToken anyway
	return nil
}

// deleteToken removes rec's file, and the earlier layout's file of the same token set.
func (s *store) deleteToken(rec *tokenRecord) error {
	err := os.Remove(s.tokenPath(rec))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.removeLegacy(rec)
}

// removeLegacy removes the earlier layout's file for rec's issuer and resource when it holds
// the token set of rec's MCP URL (another URL's file of that layout is left alone).
func (s *store) removeLegacy(rec *tokenRecord) error {
	p := s.legacyTokenPath(rec)
	var old tokenRecord
	ok, err := readJSONFile(p, &old)
	if err != nil || !ok || canonicalMCPURL(old.MCPURL) != canonicalMCPURL(rec.MCPURL) {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
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
