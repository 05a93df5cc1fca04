package idp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EncryptionKeyEnv is the environment variable LoadOrCreateEncryptionKey reads: 32 bytes, base64.
const EncryptionKeyEnv = "MCPGATE_IDP_KEY"

// randomToken returns 32 bytes of crypto/rand entropy, base64url without padding (43 chars).
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("idp: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("idp: crypto/rand failed: " + err.Error())
	}
	return b
}

// hashSecret is the only form in which tokens, codes and secrets are stored: SHA-256, hex. The
// inputs are 256-bit random values, so a fast unsalted hash is sufficient.
func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// secretMatches compares a presented secret with a stored hash in constant time.
func secretMatches(presented, storedHash string) bool {
	h := hashSecret(presented)
	return subtle.ConstantTimeCompare([]byte(h), []byte(storedHash)) == 1
}

// constantTimeEqual compares two strings in constant time (for their common length).
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// deriveKey derives an independent 32-byte key for one purpose from the storage encryption key
// (HMAC-SHA256 with the purpose as message), so the two never share key material directly.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// sealer encrypts with AES-256-GCM; the associated data binds a ciphertext to its owner (user id
// or key id), so a ciphertext moved to another row fails to decrypt.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("idp: encryption key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plaintext []byte, ad string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("idp: crypto/rand failed: " + err.Error())
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(ad))
}

var errDecrypt = errors.New("idp: cannot decrypt sealed record")

func (s *sealer) open(ciphertext []byte, ad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(ciphertext) < n {
		return nil, errDecrypt
	}
	pt, err := s.aead.Open(nil, ciphertext[:n], ciphertext[n:], []byte(ad))
	if err != nil {
		return nil, errDecrypt
	}
	return pt, nil
}

// ParseEncryptionKey decodes a base64 (standard or URL alphabet, padding optional) 32-byte key.
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("idp: encryption key must decode to 32 bytes, got %d", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("idp: encryption key is not valid base64")
}

// LoadOrCreateEncryptionKey returns the storage encryption key: from the environment variable
// MCPGATE_IDP_KEY (base64, 32 bytes) if set, else from the file <dataDir>/idp.key. If neither
// exists and createIfMissing is true (development), a random key is generated into that file with
// mode 0600; otherwise it is an error. The key is never logged.
func LoadOrCreateEncryptionKey(dataDir string, createIfMissing bool) ([]byte, error) {
	if v := os.Getenv(EncryptionKeyEnv); v != "" {
		return ParseEncryptionKey(v)
	}
	path := filepath.Join(dataDir, "idp.key")
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseEncryptionKey(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("idp: read encryption key file: %w", err)
	}
	if !createIfMissing {
		return nil, fmt.Errorf("idp: no encryption key: set %s or create %s", EncryptionKeyEnv, path)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("idp: create data directory: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("idp: create encryption key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("idp: write encryption key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}
