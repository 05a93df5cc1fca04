package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Registration refuses dangerous redirect URIs (invalid_redirect_uri) and oversized or unknown
// metadata (invalid_client_metadata).
func TestRegistrationValidation(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RegistrationRateLimit = -1 })
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("https://app.example.com/cb%d", i)
	}
	cases := []struct {
		name   string
		body   any
		status int
		err    string
	}{
		{"javascript", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, 400, "invalid_redirect_uri"},
		{"javascript upper", map[string]any{"redirect_uris": []string{"JavaScript:alert(1)"}}, 400, "invalid_redirect_uri"},
		{"data", map[string]any{"redirect_uris": []string{"data:text/html,<script>x</script>"}}, 400, "invalid_redirect_uri"},
		{"leading space", map[string]any{"redirect_uris": []string{" https://app.example.com/cb"}}, 400, "invalid_redirect_uri"},
		{"http non-loopback", map[string]any{"redirect_uris": []string{"http://app.example.com/cb"}}, 400, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://app.example.com/cb#frag"}}, 400, "invalid_redirect_uri"},
		{"wildcard", map[string]any{"redirect_uris": []string{"https://*.example.com/cb"}}, 400, "invalid_redirect_uri"},
		{"star", map[string]any{"redirect_uris": []string{"*"}}, 400, "invalid_redirect_uri"},
		{"userinfo", map[string]any{"redirect_uris": []string{"https://good@evil.example/cb"}}, 400, "invalid_redirect_uri"},
		{"missing", map[string]any{"client_name": "x"}, 400, "invalid_redirect_uri"},
		{"too many uris", map[string]any{"redirect_uris": many}, 400, "invalid_client_metadata"},
		{"unknown grant", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"authorization_code", "password"}}, 400, "invalid_client_metadata"},
		{"implicit", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "response_types": []string{"token"}}, 400, "invalid_client_metadata"},
		{"exchange grant", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"authorization_code", grantTokenExchange}}, 400, "invalid_client_metadata"},
		{"unknown auth method", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, 400, "invalid_client_metadata"},
		{"bad application_type", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "application_type": "browser"}, 400, "invalid_client_metadata"},
		{"body too large", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "client_name": strings.Repeat("x", 20000)}, 400, "invalid_client_metadata"},
		{"not json", "redirect_uris=x", 400, "invalid_client_metadata"},
		{"ok https", map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}}, 201, ""},
		{"ok loopback v4", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"}, 201, ""},
		{"ok loopback v6", map[string]any{"redirect_uris": []string{"http://[::1]:8080/cb"}, "token_endpoint_auth_method": "none"}, 201, ""},
		{"ok localhost", map[string]any{"redirect_uris": []string{"http://localhost:3000/callback"}, "token_endpoint_auth_method": "none"}, 201, ""},
		{"ok private-use", map[string]any{"redirect_uris": []string{"com.example.app:/oauth2redirect"}, "application_type": "native", "token_endpoint_auth_method": "none"}, 201, ""},
		{"ok unknown field ignored", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "resource": "https://mcp.example.com/mcp"}, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := e.postJSON("/register", tc.body, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tc.status, m)
			}
			if tc.err != "" && m["error"] != tc.err {
				t.Fatalf("error %v, want %s", m["error"], tc.err)
			}
			if tc.status == 201 {
				for _, f := range []string{"client_id", "redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "registration_access_token", "registration_client_uri", "client_id_issued_at"} {
					if _, ok := m[f]; !ok {
						t.Errorf("response lacks %s: %v", f, m)
					}
				}
				if m["token_endpoint_auth_method"] != "none" && m["client_secret"] == nil {
					t.Errorf("confidential client without a secret: %v", m)
				}
			}
		})
	}
}

// Per-address rate limit from RemoteAddr only, and a total cap.
func TestRegistrationRateLimitAndCap(t *testing.T) {
	t.Run("rate limit ignores forwarded headers", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.RegistrationRateLimit = 3 })
		body := map[string]any{"redirect_uris": []string{"https://a.example/cb"}}
		for i := 0; i < 3; i++ {
			// A different spoofed X-Forwarded-For each time must not reset the limit.
			resp, m := e.postJSON("/register", body, map[string]string{"X-Forwarded-For": fmt.Sprintf("10.0.0.%d", i), "X-Real-IP": fmt.Sprintf("10.1.0.%d", i)})
			if resp.StatusCode != 201 {
				t.Fatalf("registration %d: %d %v", i, resp.StatusCode, m)
			}
		}
		// Retry-After is the rest of the window (1 minute from the first attempt), not a guess.
		e.clock.Advance(20 * time.Second)
		resp, m := e.postJSON("/register", body, map[string]string{"X-Forwarded-For": "203.0.113.9"})
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "40" || m["error"] != "temporarily_unavailable" {
			t.Fatalf("4th registration: %d %v Retry-After %q, want 429 with Retry-After 40", resp.StatusCode, m, resp.Header.Get("Retry-After"))
		}
		// After the window the address may register again.
		e.clock.Advance(41 * time.Second)
		if resp, _ := e.postJSON("/register", body, nil); resp.StatusCode != 201 {
			t.Fatalf("after window: %d", resp.StatusCode)
		}
	})
	t.Run("total cap", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.MaxClients = 2; o.RegistrationRateLimit = -1 })
		body := map[string]any{"redirect_uris": []string{"https://a.example/cb"}}
		for i := 0; i < 2; i++ {
			if resp, m := e.postJSON("/register", body, nil); resp.StatusCode != 201 {
				t.Fatalf("registration %d: %d %v", i, resp.StatusCode, m)
			}
		}
		resp, m := e.postJSON("/register", body, nil)
		if resp.StatusCode != http.StatusForbidden || m["error"] != "access_denied" {
			t.Fatalf("over cap: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("initial access token", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.RegistrationInitialToken = "initial-token-0123456789" })
		body := map[string]any{"redirect_uris": []string{"https://a.example/cb"}}
		for _, tc := range []struct {
			hdr    map[string]string
			status int
		}{
			{nil, 401},
			{map[string]string{"Authorization": "Bearer wrong"}, 401},
			{map[string]string{"Authorization": "Bearer initial-token-0123456789"}, 201},
		} {
			if resp, m := e.postJSON("/register", body, tc.hdr); resp.StatusCode != tc.status {
				t.Errorf("%v: %d %v, want %d", tc.hdr, resp.StatusCode, m, tc.status)
			}
		}
	})
}

// RFC 7592 read, update and delete with the registration access token.
func TestClientConfigurationEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(map[string]any{"client_name": "Before"})
	regURI := e.url("/register/" + c.ID)
	do := func(method, tok, body string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(method, regURI, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		return doJSON(t, req)
	}
	if resp, _ := do(http.MethodGet, "", ""); resp.StatusCode != 401 {
		t.Errorf("read without token: %d", resp.StatusCode)
	}
	if resp, _ := do(http.MethodGet, "wrong", ""); resp.StatusCode != 401 {
		t.Errorf("read with wrong token: %d", resp.StatusCode)
	}
	other := e.register(nil)
	if resp, _ := do(http.MethodGet, other.RAT, ""); resp.StatusCode != 401 {
		t.Errorf("read with another client's token: %d", resp.StatusCode)
	}
	resp, m := do(http.MethodGet, c.RAT, "")
	if resp.StatusCode != 200 || m["client_name"] != "Before" || m["client_id"] != c.ID || m["registration_access_token"] != nil {
		t.Fatalf("read: %d %v", resp.StatusCode, m)
	}
	upd := fmt.Sprintf(`{"client_id":%q,"client_name":"After","redirect_uris":["https://new.example/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"]}`, c.ID)
	resp, m = do(http.MethodPut, c.RAT, upd)
	if resp.StatusCode != 200 || m["client_name"] != "After" {
		t.Fatalf("update: %d %v", resp.StatusCode, m)
	}
	bad := `{"client_id":"someone-else","redirect_uris":["https://new.example/cb"]}`
	if resp, m := do(http.MethodPut, c.RAT, bad); resp.StatusCode != 400 || m["error"] != "invalid_client_metadata" {
		t.Errorf("update with foreign client_id: %d %v", resp.StatusCode, m)
	}
	evil := fmt.Sprintf(`{"client_id":%q,"redirect_uris":["javascript:alert(1)"]}`, c.ID)
	if resp, m := do(http.MethodPut, c.RAT, evil); resp.StatusCode != 400 || m["error"] != "invalid_redirect_uri" {
		t.Errorf("update with bad redirect: %d %v", resp.StatusCode, m)
	}
	if resp, _ := do(http.MethodDelete, c.RAT, ""); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, _ := do(http.MethodGet, c.RAT, ""); resp.StatusCode != 401 {
		t.Errorf("read after delete: %d", resp.StatusCode)
	}
}

// RFC 7592 delete: the client's access and refresh tokens stop working everywhere, and nobody
// else's do.
func TestDeletedClientTokensStopWorking(t *testing.T) {
	e := newEnv(t, nil)
	gone := e.register(nil)
	kept := e.register(nil)
	tokGone := e.login(gone, "dora", "ghp_abcdefghijkl")
	tokKept := e.login(kept, "dora", "ghp_abcdefghijkl")
	req, _ := http.NewRequest(http.MethodDelete, e.url("/register/"+gone.ID), nil)
	req.Header.Set("Authorization", "Bearer "+gone.RAT)
	if resp, _ := doJSON(t, req); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	// A client whose record vanished without its families being revoked (a grant created while
	// the deletion ran) must be dead too.
	raced := e.register(nil)
	tokRaced := e.login(raced, "dora", "")
	if err := e.srv.store.Delete(context.Background(), bucketClients, raced.ID); err != nil {
		t.Fatal(err)
	}
	exchange := func(at string) int {
		v := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {at}, "subject_token_type": {tokenTypeAccessToken}}
		resp, _ := e.postForm("/token", v, "gateway", "gateway-secret-0123456789")
		return resp.StatusCode
	}
	tests := []struct {
		name       string
		tok        map[string]any
		wantActive bool
		wantXchg   int
	}{
		{"deleted client", tokGone, false, 400},
		{"record vanished during deletion", tokRaced, false, 400},
		{"other client unaffected", tokKept, true, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.tok["access_token"].(string)
			if got := e.introspect(at)["active"]; got != tc.wantActive {
				t.Errorf("access token introspection active=%v, want %v", got, tc.wantActive)
			}
			if got := exchange(at); got != tc.wantXchg {
				t.Errorf("token exchange status %d, want %d", got, tc.wantXchg)
			}
			_, err := e.srv.verifyAccessToken(context.Background(), at)
			if (err == nil) != tc.wantActive {
				t.Errorf("verifyAccessToken error %v, want valid=%v", err, tc.wantActive)
			}
			if rt, ok := tc.tok["refresh_token"].(string); ok && tc.name == "deleted client" {
				if got := e.introspect(rt)["active"]; got != false {
					t.Errorf("refresh token introspection active=%v", got)
				}
				if resp, m := e.refresh(gone, rt); resp.StatusCode != 401 || m["error"] != "invalid_client" {
					t.Errorf("refresh by deleted client: %d %v", resp.StatusCode, m)
				}
			}
		})
	}
}

// Initial access token guesses count against the per-address limit: the limiter runs before the
// token is compared, so brute force from one address is cut off.
func TestInitialAccessTokenGuessesAreRateLimited(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.RegistrationInitialToken = "initial-token-0123456789"
		o.RegistrationRateLimit = 3
	})
	post := func(addr, tok string) int {
		body := strings.NewReader(`{"redirect_uris":["https://a.example/cb"]}`)
		req := httptest.NewRequest(http.MethodPost, e.url("/register"), body)
		req.RemoteAddr = addr
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec.Code
	}
	const attacker, other = "198.51.100.7:40000", "198.51.100.8:40000"
	tests := []struct {
		name, addr, tok string
		want            int
	}{
		{"guess 1", attacker, "guess-1", 401},
		{"guess 2", attacker, "guess-2", 401},
		{"guess 3", attacker, "guess-3", 401},
		{"guess 4 is limited", attacker, "guess-4", 429},
		{"even the right token from the limited address", attacker, "initial-token-0123456789", 429},
		{"another address is unaffected", other, "initial-token-0123456789", 201},
	}
	for _, tc := range tests {
		if got := post(tc.addr, tc.tok); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

// hookStore wraps a MemoryStore to widen race windows: Put of a client sleeps, and afterGet runs
// after every Get.
type hookStore struct {
	*MemoryStore
	putDelay time.Duration
	afterGet func(bucket, key string)
}

func (h *hookStore) Put(ctx context.Context, bucket, key string, v []byte) error {
	if bucket == bucketClients {
		time.Sleep(h.putDelay)
	}
	return h.MemoryStore.Put(ctx, bucket, key, v)
}

func (h *hookStore) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	v, err := h.MemoryStore.Get(ctx, bucket, key)
	if h.afterGet != nil {
		h.afterGet(bucket, key)
	}
	return v, err
}

// The client cap holds under concurrent registrations and deletions give slots back; an RFC 7592
// PUT racing a DELETE cannot bring the client back.
func TestClientCapAndUpdateAreAtomic(t *testing.T) {
	hs := &hookStore{MemoryStore: NewMemoryStore(), putDelay: 20 * time.Millisecond}
	e := newEnv(t, func(o *Options) {
		o.Store, o.EncryptionKey = hs, make([]byte, 32)
		o.MaxClients, o.RegistrationRateLimit = 3, -1
	})
	body := map[string]any{"redirect_uris": []string{"https://a.example/cb"}}
	registerN := func(n int) (ok int, ids []string) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				b, _ := json.Marshal(body)
				resp, err := http.Post(e.url("/register"), "application/json", bytes.NewReader(b))
				if err != nil {
					return
				}
				defer resp.Body.Close()
				var m map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&m)
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode == 201 {
					ok++
					ids = append(ids, m["client_id"].(string)+" "+m["registration_access_token"].(string))
				}
			})
		}
		wg.Wait()
		return ok, ids
	}
	del := func(idTok string) int {
		id, tok, _ := strings.Cut(idTok, " ")
		req, _ := http.NewRequest(http.MethodDelete, e.url("/register/"+id), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, _ := doJSON(t, req)
		return resp.StatusCode
	}
	ok, ids := registerN(10)
	steps := []struct {
		name string
		run  func() int
		want int
	}{
		{"10 concurrent registrations under a cap of 3", func() int { return ok }, 3},
		{"an 11th", func() int { n, _ := registerN(1); return n }, 0},
		{"delete one", func() int { return del(ids[0]) }, 204},
		{"deleting it again gives nothing back", func() int { return del(ids[0]) }, 401},
		{"then 5 concurrent registrations", func() int { n, _ := registerN(5); return n }, 1},
		{"clients stored", func() int { n, _ := hs.Count(context.Background(), bucketClients); return n }, 3},
	}
	for _, st := range steps {
		if got := st.run(); got != st.want {
			t.Fatalf("%s: got %d, want %d", st.name, got, st.want)
		}
	}

	t.Run("PUT racing DELETE", func(t *testing.T) {
		id, tok, _ := strings.Cut(ids[1], " ")
		var once sync.Once
		hs.afterGet = func(bucket, key string) {
			if bucket == bucketClients && key == id {
				once.Do(func() { _ = hs.MemoryStore.Delete(context.Background(), bucketClients, id) })
			}
		}
		defer func() { hs.afterGet = nil }()
		upd := fmt.Sprintf(`{"client_id":%q,"redirect_uris":["https://new.example/cb"]}`, id)
		req, _ := http.NewRequest(http.MethodPut, e.url("/register/"+id), strings.NewReader(upd))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, m := doJSON(t, req)
		if resp.StatusCode != 401 {
			t.Errorf("PUT of a client deleted meanwhile: %d %v, want 401", resp.StatusCode, m)
		}
		if _, err := hs.MemoryStore.Get(context.Background(), bucketClients, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted client resurrected by PUT (err %v)", err)
		}
	})
}
