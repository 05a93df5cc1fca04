package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func storeImpls(t *testing.T) map[string]func() Store {
	return map[string]func() Store{
		"memory": func() Store { return NewMemoryStore() },
		"bolt": func() Store {
			s, err := OpenBoltStore(filepath.Join(t.TempDir(), "idp.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

// Both stores behave the same, and Update is atomic.
func TestStoreConformance(t *testing.T) {
	ctx := context.Background()
	for name, open := range storeImpls(t) {
		t.Run(name, func(t *testing.T) {
			s := open()
			defer s.Close()
			if _, err := s.Get(ctx, "b", "k"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get missing: %v", err)
			}
			if err := s.Put(ctx, "b", "k", []byte("v1")); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Get(ctx, "b", "k"); err != nil || string(v) != "v1" {
				t.Fatalf("Get: %q %v", v, err)
			}
			boom := errors.New("boom")
			if err := s.Update(ctx, "b", "k", func(old []byte) ([]byte, error) { return []byte("x"), boom }); !errors.Is(err, boom) {
				t.Fatalf("Update error: %v", err)
			}
			if v, _ := s.Get(ctx, "b", "k"); string(v) != "v1" {
				t.Fatalf("failed Update changed the value: %q", v)
			}
			// 100 concurrent increments.
			_ = s.Put(ctx, "b", "n", []byte("0"))
			var wg sync.WaitGroup
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = s.Update(ctx, "b", "n", func(old []byte) ([]byte, error) {
						var n int
						fmt.Sscan(string(old), &n)
						return []byte(fmt.Sprint(n + 1)), nil
					})
				}()
			}
			wg.Wait()
			if v, _ := s.Get(ctx, "b", "n"); string(v) != "100" {
				t.Fatalf("concurrent Update lost writes: %s", v)
			}
			for i := 0; i < 5; i++ {
				_ = s.Put(ctx, "c", fmt.Sprint(i), []byte{byte(i)})
			}
			if n, _ := s.Count(ctx, "c"); n != 5 {
				t.Fatalf("Count %d", n)
			}
			n, err := s.DeleteIf(ctx, "c", func(_ string, v []byte) bool { return v[0]%2 == 0 })
			if err != nil || n != 3 {
				t.Fatalf("DeleteIf %d %v", n, err)
			}
			var keys []string
			_ = s.ForEach(ctx, "c", func(k string, _ []byte) error { keys = append(keys, k); return nil })
			if strings.Join(keys, ",") != "1,3" {
				t.Fatalf("ForEach keys %v", keys)
			}
			if err := s.Update(ctx, "c", "1", func([]byte) ([]byte, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "c", "1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Update nil did not delete")
			}
			_ = s.Delete(ctx, "c", "missing")
		})
	}
}

// Hashes only; GitHub tokens and private keys sealed with the owner as AAD.
func TestStoredSecretsAreHashedOrSealed(t *testing.T) {
	mem := NewMemoryStore()
	e := newEnv(t, func(o *Options) { o.Store = mem; o.EncryptionKey = bytes.Repeat([]byte{7}, 32) })
	t.Cleanup(func() { mem.Close() })
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	c := e.register(nil)
	pat := "ghp_secret_pat_value_123"
	tok := e.login(c, "mallory", pat)
	// Also leave an unredeemed code in the store.
	p := newPKCE()
	q := e.getCode(e.browser(), c, p, "mallory2", "", nil)

	secrets := map[string]string{
		"client secret":      conf.Secret,
		"registration tok":   conf.RAT,
		"access token":       tok["access_token"].(string),
		"refresh token":      tok["refresh_token"].(string),
		"GitHub PAT":         pat,
		"authorization code": q.Get("code"),
	}
	ctx := context.Background()
	var dump bytes.Buffer
	for _, b := range allBuckets {
		_ = mem.ForEach(ctx, b, func(k string, v []byte) error {
			dump.WriteString(k)
			dump.Write(v)
			return nil
		})
	}
	for name, s := range secrets {
		if bytes.Contains(dump.Bytes(), []byte(s)) {
			t.Errorf("%s stored in the clear", name)
		}
	}
	if _, err := mem.Get(ctx, bucketRefresh, hashSecret(tok["refresh_token"].(string))); err != nil {
		t.Errorf("refresh token not stored under its hash: %v", err)
	}
	if _, err := mem.Get(ctx, bucketCodes, hashSecret(q.Get("code"))); err != nil {
		t.Errorf("code not stored under its hash: %v", err)
	}
	// Private keys: no PKCS#8 / PEM material, and the sealed key does not open under another kid.
	_ = mem.ForEach(ctx, bucketKeys, func(kid string, v []byte) error {
		var rec keyRecord
		_ = json.Unmarshal(v, &rec)
		if _, err := e.srv.sealer.open(rec.Sealed, kid); err != nil {
			t.Errorf("key %s does not open with its own kid: %v", kid, err)
		}
		if _, err := e.srv.sealer.open(rec.Sealed, kid+"x"); err == nil {
			t.Errorf("key opens with a different kid as AAD")
		}
		return nil
	})
	// A GitHub token ciphertext moved to another user's row fails to decrypt.
	e.login(c, "victim", "")
	sealed, err := mem.Get(ctx, bucketGitHub, "dev:mallory")
	if err != nil {
		t.Fatal(err)
	}
	_ = mem.Put(ctx, bucketGitHub, "dev:victim", sealed)
	if _, err := e.srv.loadGitHubToken(ctx, "dev:victim"); !errors.Is(err, errDecrypt) {
		t.Fatalf("moved ciphertext: err %v, want decrypt failure", err)
	}
	if got, err := e.srv.loadGitHubToken(ctx, "dev:mallory"); err != nil || got.AccessToken != pat {
		t.Fatalf("own token: %v", err)
	}
}

// Data files 0600; bbolt commits are atomic (see BoltStore's comment). The crash
// part is exercised by killing a child process in the middle of a write loop and reopening.
func TestBoltFilesAndCrashSafety(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "idp.db")
	s, err := OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	key, err := LoadOrCreateEncryptionKey(filepath.Join(dir, "sub"), true)
	if err != nil || len(key) != 32 {
		t.Fatalf("key: %v", err)
	}
	key2, err := LoadOrCreateEncryptionKey(filepath.Join(dir, "sub"), true)
	if err != nil || !bytes.Equal(key, key2) {
		t.Fatalf("key not stable across loads")
	}
	for _, f := range []string{path, filepath.Join(dir, "sub", "idp.key")} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o, want 600", f, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "sub")); fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %o, want 700", fi.Mode().Perm())
	}
	if _, err := LoadOrCreateEncryptionKey(t.TempDir(), false); err == nil {
		t.Errorf("missing key without create: no error")
	}
	t.Setenv(EncryptionKeyEnv, "not base64!")
	if _, err := LoadOrCreateEncryptionKey(dir, true); err == nil {
		t.Errorf("bad env key accepted")
	}
}

// crashWriterEnv makes the test binary act as a writer that is killed mid-write.
const crashWriterEnv = "IDP_TEST_CRASH_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashWriterEnv); path != "" {
		s, err := OpenBoltStore(path)
		if err != nil {
			os.Exit(3)
		}
		big := bytes.Repeat([]byte("r"), 64<<10)
		for i := 0; ; i++ {
			// Each record is self-describing: key i, value = i repeated, so a torn record shows.
			v := append([]byte(fmt.Sprintf("%08d:", i)), big...)
			_ = s.Put(context.Background(), "crash", fmt.Sprintf("%08d", i), v)
			if i == 5 {
				os.WriteFile(path+".ready", nil, 0o600)
			}
		}
	}
	os.Exit(m.Run())
}

func TestBoltSurvivesKillMidWrite(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	for round := 0; round < 3; round++ {
		cmd := execCommand(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(path + ".ready"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("writer never became ready")
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(50+round*37) * time.Millisecond)
		_ = cmd.Process.Kill() // SIGKILL in the middle of the write loop
		_ = cmd.Wait()
		os.Remove(path + ".ready")

		s, err := OpenBoltStore(path)
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		n := 0
		err = s.ForEach(context.Background(), "crash", func(k string, v []byte) error {
			n++
			if !bytes.HasPrefix(v, []byte(k+":")) || len(v) != len(k)+1+64<<10 {
				return fmt.Errorf("torn record %s (len %d)", k, len(v))
			}
			return nil
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n < 6 {
			t.Fatalf("only %d records survived", n)
		}
	}
}

// Restart: close the server and the bolt store, reopen: the old refresh token works and old
// access tokens still verify against the new JWKS.
func TestRestartWithBoltStore(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{9}, 32)
	open := func() *BoltStore {
		s, err := OpenBoltStore(filepath.Join(dir, "idp.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	st := open()
	e1 := newEnv(t, func(o *Options) { o.Store = st; o.EncryptionKey = key })
	c := e1.register(nil)
	tok := e1.login(c, "rita", "ghp_rita_token_1")
	e1.ts.Close()
	e1.srv.Close()
	st.Close()

	st2 := open()
	t.Cleanup(func() { st2.Close() })
	// Same issuer is needed: reuse the address string via options.
	e2 := newEnv(t, func(o *Options) { o.Store = st2; o.EncryptionKey = key; o.Issuer = e1.issuer })
	e2.issuer = e1.issuer // tokens carry the old issuer; JWKS is fetched from the new listener
	e2.clock = e1.clock
	keys := fetchJWKSFrom(t, e2.ts.URL)
	raw := tok["access_token"].(string)
	if _, ok := keys[kidOf(t, raw)]; !ok {
		t.Fatalf("old access token's kid missing from the JWKS after restart")
	}
	if _, err := e2.srv.verifyAccessToken(context.Background(), raw); err != nil {
		t.Fatalf("old access token does not verify after restart: %v", err)
	}
	e2.issuer = e2.ts.URL
	resp, m := e2.refresh(c, tok["refresh_token"].(string))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("old refresh token after restart: %d %v", resp.StatusCode, m)
	}
	if gt, err := e2.srv.loadGitHubToken(context.Background(), "dev:rita"); err != nil || gt.AccessToken != "ghp_rita_token_1" {
		t.Fatalf("GitHub token after restart: %v", err)
	}
	// A wrong encryption key is detected at startup.
	if _, err := New(Options{Issuer: e1.issuer, Store: st2, EncryptionKey: bytes.Repeat([]byte{1}, 32), DevLogin: true}); err == nil {
		t.Fatalf("New with the wrong encryption key succeeded")
	}
}

// Exactly one of parallel redemptions wins with the bbolt store as well.
func TestParallelRedemptionBolt(t *testing.T) {
	st, err := OpenBoltStore(filepath.Join(t.TempDir(), "idp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnv(t, func(o *Options) { o.Store = st; o.EncryptionKey = bytes.Repeat([]byte{3}, 32) })
	c := e.register(nil)
	for round := 0; round < 3; round++ {
		p := newPKCE()
		q := e.getCode(e.browser(), c, p, "par", "", nil)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := e.redeem(c, q.Get("code"), p.verifier, nil)
				if resp.StatusCode == 200 {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("round %d: %d winners", round, ok)
		}
	}
}
