package idp

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

func fetchJWKSFrom(t *testing.T, base string) map[string]crypto.PublicKey {
	t.Helper()
	return fetchJWKS(t, &testEnv{t: t, issuer: base})
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	_ = json.Unmarshal(b, &h)
	kid, _ := h["kid"].(string)
	return kid
}
