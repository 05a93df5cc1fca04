package idp

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every Storage implementation runs testStorage; a PostgreSQL one will too.
func TestStorageMemory(t *testing.T) {
	testStorage(t, func(t *testing.T) Storage { return NewKVStorage(NewMemoryStore()) })
}

func TestStorageBolt(t *testing.T) {
	testStorage(t, func(t *testing.T) Storage {
		b, err := OpenBoltStore(filepath.Join(t.TempDir(), "idp.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return NewKVStorage(b)
	})
}

// testStorage checks the guarantees Storage documents, above all the atomic ones.
func testStorage(t *testing.T, newStore func(t *testing.T) Storage) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s Storage)
	}{
		{"code redeemed exactly once by 8 concurrent redeemers", func(t *testing.T, ctx context.Context, s Storage) {
			rec := codeRecord{ClientID: "c1", Sub: "u1", FamilyID: "f1", Challenge: "ch", Scope: "mcp", Exp: now.Add(time.Minute).Unix()}
			if err := s.CreateCode(ctx, "h1", rec); err != nil {
				t.Fatal(err)
			}
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			recs := make([]codeRecord, n)
			for i := range n {
				wg.Go(func() { recs[i], errs[i] = s.RedeemCode(ctx, "h1", now.Add(time.Hour)) })
			}
			wg.Wait()
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
					if recs[i].Challenge != "ch" || recs[i].Scope != "mcp" {
						t.Errorf("winner got %+v, want the full record", recs[i])
					}
				case errors.Is(err, ErrAlreadyUsed):
					if recs[i].FamilyID != "f1" || recs[i].ClientID != "c1" {
						t.Errorf("loser got %+v, want client and family for replay handling", recs[i])
					}
				default:
					t.Errorf("redeem: %v", err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d redemptions won, want exactly 1", wins)
			}
			got, err := s.GetCode(ctx, "h1")
			if err != nil || !got.Used || got.Challenge != "" || got.PurgeAt != now.Add(time.Hour).Unix() {
				t.Fatalf("used code = %+v, %v; want used, reduced, purge_at set", got, err)
			}
			if _, err := s.RedeemCode(ctx, "nope", now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown code: %v, want ErrNotFound", err)
			}
		}},
		{"refresh rotation, grace window and reuse", func(t *testing.T, ctx context.Context, s Storage) {
			exp := now.Add(time.Hour).Unix()
			if err := s.CreateFamily(ctx, "f1", familyRecord{ClientID: "c1", Sub: "u1", Exp: exp}); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateRefresh(ctx, "r1", refreshRecord{FamilyID: "f1", ClientID: "c1", Sub: "u1", Scope: "mcp", Exp: exp}); err != nil {
				t.Fatal(err)
			}
			seal := func(fam string) ([]byte, error) { return []byte("sealed-for-" + fam), nil }
			grace := 10 * time.Second
			if _, _, err := s.RotateRefresh(ctx, "r1", "c2", now, grace, seal); !errors.Is(err, ErrWrongClient) {
				t.Fatalf("other client: %v, want ErrWrongClient", err)
			}
			if _, _, err := s.RotateRefresh(ctx, "r1", "c1", time.Unix(exp, 0), grace, seal); !errors.Is(err, ErrExpired) {
				t.Fatalf("at exp: %v, want ErrExpired", err)
			}
			if _, _, err := s.RotateRefresh(ctx, "missing", "c1", now, grace, seal); !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing: %v, want ErrNotFound", err)
			}
			rec, out, err := s.RotateRefresh(ctx, "r1", "c1", now, grace, seal)
			if err != nil || out != RefreshRotated || string(rec.Successor) != "sealed-for-f1" {
				t.Fatalf("first rotation = %v %+v %v", out, rec, err)
			}
			// Within the grace window: no change, the same sealed successor, seal not called.
			noSeal := func(string) ([]byte, error) { t.Error("seal called in the grace window"); return nil, nil }
			rec, out, err = s.RotateRefresh(ctx, "r1", "c1", now.Add(grace), grace, noSeal)
			if err != nil || out != RefreshGrace || string(rec.Successor) != "sealed-for-f1" {
				t.Fatalf("grace rotation = %v %+v %v", out, rec, err)
			}
			rec, _, err = s.RotateRefresh(ctx, "r1", "c1", now.Add(grace+time.Millisecond), grace, noSeal)
			if !errors.Is(err, ErrAlreadyUsed) || rec.FamilyID != "f1" {
				t.Fatalf("reuse after grace = %+v %v, want family and ErrAlreadyUsed", rec, err)
			}
			// Reuse detection revokes the family.
			if err := s.RevokeFamily(ctx, rec.FamilyID); err != nil {
				t.Fatal(err)
			}
			f, err := s.GetFamily(ctx, "f1")
			if err != nil || !f.Revoked || f.ClientID != "c1" || f.Exp != exp {
				t.Fatalf("family after revoke = %+v %v", f, err)
			}
			// CreateRefresh never resets an existing record's rotation state.
			if err := s.CreateRefresh(ctx, "r1", refreshRecord{FamilyID: "f1", ClientID: "c1", Exp: exp}); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.GetRefresh(ctx, "r1"); got.RotatedAt == 0 {
				t.Fatal("CreateRefresh reset a rotated token")
			}
		}},
		{"concurrent rotations rotate once", func(t *testing.T, ctx context.Context, s Storage) {
			if err := s.CreateRefresh(ctx, "r1", refreshRecord{FamilyID: "f1", ClientID: "c1", Exp: now.Add(time.Hour).Unix()}); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seals := 0
			var wg sync.WaitGroup
			outs := make([]RefreshOutcome, 8)
			for i := range outs {
				wg.Go(func() {
					_, outs[i], _ = s.RotateRefresh(ctx, "r1", "c1", now, time.Minute, func(string) ([]byte, error) {
						mu.Lock()
						seals++
						mu.Unlock()
						return []byte("s"), nil
					})
				})
			}
			wg.Wait()
			if seals != 1 || slices.Index(outs, RefreshRotated) < 0 || len(slices.DeleteFunc(slices.Clone(outs), func(o RefreshOutcome) bool { return o != RefreshRotated })) != 1 {
				t.Fatalf("seals=%d outcomes=%v, want exactly one rotation and the rest in grace", seals, outs)
			}
		}},
		{"revocation by user", func(t *testing.T, ctx context.Context, s Storage) {
			for _, f := range []struct{ id, client, sub string }{{"u1", "c1", "dev:alice"}, {"u2", "c2", "dev:alice"}, {"u3", "c1", "dev:bob"}} {
				if err := s.CreateFamily(ctx, f.id, familyRecord{ClientID: f.client, Sub: f.sub, Exp: now.Add(time.Hour).Unix()}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.RevokeUserFamilies(ctx, "dev:alice"); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]bool{"u1": true, "u2": true, "u3": false} {
				if f, err := s.GetFamily(ctx, id); err != nil || f.Revoked != want {
					t.Errorf("family %s revoked=%v (%v), want %v", id, f.Revoked, err, want)
				}
			}
		}},
		{"revocation", func(t *testing.T, ctx context.Context, s Storage) {
			for _, f := range []struct{ id, client string }{{"f1", "c1"}, {"f2", "c1"}, {"f3", "c2"}} {
				if err := s.CreateFamily(ctx, f.id, familyRecord{ClientID: f.client, Exp: now.Add(time.Hour).Unix()}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.RevokeClientFamilies(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]bool{"f1": true, "f2": true, "f3": false} {
				if f, err := s.GetFamily(ctx, id); err != nil || f.Revoked != want {
					t.Errorf("family %s revoked=%v (%v), want %v", id, f.Revoked, err, want)
				}
			}
			if err := s.RevokeFamily(ctx, "missing"); err != nil {
				t.Errorf("revoking a missing family: %v", err)
			}
			if _, err := s.GetFamily(ctx, "missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing family: %v", err)
			}
			if err := s.PutAccess(ctx, "j1", accessRecord{FamilyID: "f3", ClientID: "c2", Exp: now.Add(time.Hour).Unix()}); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeAccess(ctx, "j1"); err != nil {
				t.Fatal(err)
			}
			if a, err := s.GetAccess(ctx, "j1"); err != nil || !a.Revoked || a.FamilyID != "f3" {
				t.Errorf("access after revoke = %+v %v", a, err)
			}
			if err := s.RevokeAccess(ctx, "missing"); err != nil {
				t.Errorf("revoking a missing access token: %v", err)
			}
		}},
		{"key rotation", func(t *testing.T, ctx context.Context, s Storage) {
			k1 := keyRecord{Kid: "k1", Alg: "ES256", Sealed: []byte{1}, Created: now, ActivateAt: now}
			k2 := keyRecord{Kid: "k2", Alg: "ES256", Sealed: []byte{2}, Created: now, ActivateAt: now.Add(time.Hour)}
			if err := s.AddKey(ctx, k1, "k0"); !errors.Is(err, ErrChanged) {
				t.Fatalf("first key added over a newest key that is not there: %v, want ErrChanged", err)
			}
			if err := s.AddKey(ctx, k1, ""); err != nil {
				t.Fatal(err)
			}
			if err := s.AddKey(ctx, k2, ""); !errors.Is(err, ErrChanged) {
				t.Fatalf("a second first key: %v, want ErrChanged", err)
			}
			if err := s.AddKey(ctx, k2, "k1"); err != nil {
				t.Fatal(err)
			}
			// Newest is by ActivateAt before kid: k0 sorts first but activates last.
			k0 := keyRecord{Kid: "k0", Alg: "ES256", Sealed: []byte{0}, Created: now, ActivateAt: now.Add(2 * time.Hour)}
			if err := s.AddKey(ctx, k0, "k1"); !errors.Is(err, ErrChanged) {
				t.Fatalf("key added over a stale newest key: %v, want ErrChanged", err)
			}
			if err := s.AddKey(ctx, k0, "k2"); err != nil {
				t.Fatal(err)
			}
			if err := s.RetireKeys(ctx, []string{"k1", "missing"}); err != nil {
				t.Fatal(err)
			}
			keys, err := s.ListKeys(ctx)
			slices.SortFunc(keys, func(a, b keyRecord) int { return a.ActivateAt.Compare(b.ActivateAt) })
			if err != nil || len(keys) != 2 || keys[0].Kid != "k2" || !keys[0].ActivateAt.Equal(k2.ActivateAt) || string(keys[0].Sealed) != "\x02" || keys[1].Kid != "k0" {
				t.Fatalf("keys = %+v %v, want k2 and k0", keys, err)
			}
			// Retiring every key leaves none, and a first key may be added again.
			if err := s.RetireKeys(ctx, []string{"k2", "k0"}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddKey(ctx, k1, ""); err != nil {
				t.Fatalf("first key after all were retired: %v", err)
			}
		}},
		{"8 concurrent AddKey over one newest key: exactly one wins", func(t *testing.T, ctx context.Context, s Storage) {
			for round, newest := range []string{"", "w"} {
				act := now.Add(time.Duration(2*round) * time.Hour) // after w's in round 1
				var wg sync.WaitGroup
				errs := make([]error, 8)
				for i := range errs {
					wg.Go(func() {
						kid := newest + string(rune('a'+i))
						errs[i] = s.AddKey(ctx, keyRecord{Kid: kid, Alg: "ES256", Sealed: []byte(kid), Created: now, ActivateAt: act}, newest)
					})
				}
				wg.Wait()
				won := ""
				for i, err := range errs {
					switch {
					case err == nil:
						if won != "" {
							t.Fatalf("newest %q: both %s and %c won", newest, won, 'a'+i)
						}
						won = newest + string(rune('a'+i))
					case !errors.Is(err, ErrChanged):
						t.Fatalf("AddKey: %v", err)
					}
				}
				keys, err := s.ListKeys(ctx)
				if err != nil || won == "" || newestKeyKid(keys) != won {
					t.Fatalf("newest %q: winner %q, stored %+v %v", newest, won, keys, err)
				}
				// The next round builds on this winner, under the name the test expects.
				if newest == "" {
					if err := s.AddKey(ctx, keyRecord{Kid: "w", Alg: "ES256", Sealed: []byte("w"), Created: now, ActivateAt: now.Add(time.Hour)}, won); err != nil {
						t.Fatal(err)
					}
				}
			}
			keys, _ := s.ListKeys(ctx)
			if len(keys) != 3 {
				t.Fatalf("%d keys stored, want 3 (one winner per round and w)", len(keys))
			}
		}},
		{"expiry cleanup", func(t *testing.T, ctx context.Context, s Storage) {
			past, future := now.Add(-time.Minute).Unix(), now.Add(time.Minute).Unix()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.CreateCode(ctx, "old", codeRecord{Exp: past}))
			must(s.CreateCode(ctx, "new", codeRecord{Exp: future}))
			must(s.CreateCode(ctx, "used", codeRecord{Exp: past}))
			if _, err := s.RedeemCode(ctx, "used", now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			must(s.CreateRefresh(ctx, "r", refreshRecord{Exp: past}))
			must(s.CreateFamily(ctx, "f", familyRecord{Exp: past}))
			must(s.PutAccess(ctx, "j", accessRecord{Exp: past}))
			must(s.PutSession(ctx, "s", sessionRecord{Exp: past}))
			must(s.PutAuthRequest(ctx, "a", authRequest{Exp: past}))
			must(s.PutLoginState(ctx, "l", loginState{Exp: past}))
			must(s.UseJTI(ctx, "jti", time.Unix(past, 0), time.Unix(past-60, 0)))
			must(s.PutConsent(ctx, "u", "c", "r", consentRecord{At: past})) // consents do not expire
			n, err := s.DeleteExpired(ctx, now)
			if err != nil || n != 8 {
				t.Fatalf("DeleteExpired = %d, %v; want 8", n, err)
			}
			for _, h := range []string{"new", "used"} {
				if _, err := s.GetCode(ctx, h); err != nil {
					t.Errorf("code %s: %v, want kept", h, err)
				}
			}
			if _, err := s.GetCode(ctx, "old"); !errors.Is(err, ErrNotFound) {
				t.Errorf("expired code: %v, want deleted", err)
			}
			if _, err := s.GetConsent(ctx, "u", "c", "r"); err != nil {
				t.Errorf("consent: %v, want kept", err)
			}
			if err := s.UseJTI(ctx, "jti", now.Add(time.Minute), now); err != nil {
				t.Errorf("jti after cleanup: %v, want usable", err)
			}
		}},
		{"clients and the cap", func(t *testing.T, ctx context.Context, s Storage) {
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { errs[i] = s.CreateClient(ctx, clientRecord{ClientID: string(rune('a' + i))}, 3) })
			}
			wg.Wait()
			ok, capped := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrLimitReached):
					capped++
				default:
					t.Fatal(err)
				}
			}
			if ok != 3 || capped != 5 {
				t.Fatalf("%d created, %d capped; want 3 and 5", ok, capped)
			}
			var id string
			for i := range errs {
				if errs[i] == nil {
					id = string(rune('a' + i))
				}
			}
			got, err := s.UpdateClient(ctx, id, func(c *clientRecord) error { c.SecretHash = "h"; return nil })
			if err != nil || got.SecretHash != "h" {
				t.Fatalf("update = %+v %v", got, err)
			}
			if existed, err := s.DeleteClient(ctx, id); err != nil || !existed {
				t.Fatalf("delete = %v %v", existed, err)
			}
			if _, err := s.UpdateClient(ctx, id, func(*clientRecord) error { return nil }); !errors.Is(err, ErrNotFound) {
				t.Fatalf("update of a deleted client: %v, want ErrNotFound", err)
			}
			if _, err := s.GetClient(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted client: %v", err)
			}
			if err := s.CreateClient(ctx, clientRecord{ClientID: "z"}, 3); err != nil {
				t.Fatalf("create after a delete freed a slot: %v", err)
			}
			if err := s.CreateClient(ctx, clientRecord{ClientID: "y"}, 3); !errors.Is(err, ErrLimitReached) {
				t.Fatalf("create over the cap: %v", err)
			}
		}},
		{"single-use states, requests and jtis", func(t *testing.T, ctx context.Context, s Storage) {
			if err := s.PutLoginState(ctx, "st", loginState{Purpose: "login", Exp: now.Unix()}); err != nil {
				t.Fatal(err)
			}
			if err := s.PutAuthRequest(ctx, "ar", authRequest{ClientID: "c1", Exp: now.Unix()}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			states, reqs := 0, 0
			for range 8 {
				wg.Go(func() {
					_, e1 := s.TakeLoginState(ctx, "st")
					_, e2 := s.TakeAuthRequest(ctx, "ar")
					mu.Lock()
					defer mu.Unlock()
					if e1 == nil {
						states++
					}
					if e2 == nil {
						reqs++
					}
				})
			}
			wg.Wait()
			if states != 1 || reqs != 1 {
				t.Fatalf("state taken %d times, request %d times; want once each", states, reqs)
			}
			if err := s.UseJTI(ctx, "j", now.Add(time.Minute), now); err != nil {
				t.Fatal(err)
			}
			if err := s.UseJTI(ctx, "j", now.Add(time.Minute), now); !errors.Is(err, ErrAlreadyUsed) {
				t.Fatalf("replayed jti: %v, want ErrAlreadyUsed", err)
			}
			if err := s.UseJTI(ctx, "j", now.Add(3*time.Minute), now.Add(2*time.Minute)); err != nil {
				t.Fatalf("jti after its record expired: %v", err)
			}
		}},
		{"any string in a record; keys no record has", func(t *testing.T, ctx context.Context, s Storage) {
			// A client's state parameter is stored as sent, NUL included.
			ar := authRequest{ClientID: "c1", State: "a\x00b", Exp: now.Unix()}
			if err := s.PutAuthRequest(ctx, "ar", ar); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetAuthRequest(ctx, "ar"); err != nil || got.State != ar.State {
				t.Fatalf("request = %+v %v, want state %q", got, err, ar.State)
			}
			// A request may name a record by anything (client_id=%00): nothing is found.
			for _, key := range []string{"\x00", "c\x00", "\xff\xfe"} {
				checks := map[string]error{}
				_, checks["GetClient"] = s.GetClient(ctx, key)
				_, checks["GetAuthRequest"] = s.GetAuthRequest(ctx, key)
				_, checks["TakeAuthRequest"] = s.TakeAuthRequest(ctx, key)
				_, checks["GetUser"] = s.GetUser(ctx, key)
				_, checks["GetConsent"] = s.GetConsent(ctx, "u", key, "r")
				_, checks["GetCode"] = s.GetCode(ctx, key)
				_, checks["GetFamily"] = s.GetFamily(ctx, key)
				_, checks["GetAccess"] = s.GetAccess(ctx, key)
				_, checks["GetSealed"] = s.GetSealed(ctx, SealedGitHub, key)
				for op, err := range checks {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("%s(%q): %v, want ErrNotFound", op, key, err)
					}
				}
				if _, err := s.UpdateClient(ctx, key, func(*clientRecord) error { return nil }); !errors.Is(err, ErrNotFound) {
					t.Errorf("UpdateClient(%q): %v, want ErrNotFound", key, err)
				}
				if existed, err := s.DeleteClient(ctx, key); existed || err != nil {
					t.Errorf("DeleteClient(%q) = %v, %v", key, existed, err)
				}
				// Revoking or deleting what does not exist is not an error, whatever its name.
				missingOK := map[string]error{
					"RevokeFamily":         s.RevokeFamily(ctx, key),
					"RevokeClientFamilies": s.RevokeClientFamilies(ctx, key),
					"RevokeUserFamilies":   s.RevokeUserFamilies(ctx, key),
					"RevokeAccess":         s.RevokeAccess(ctx, key),
					"DeleteSession":        s.DeleteSession(ctx, key),
					"DeleteSealed":         s.DeleteSealed(ctx, SealedGitHub, key),
				}
				for op, err := range missingOK {
					if err != nil {
						t.Errorf("%s(%q): %v, want nil", op, key, err)
					}
				}
			}
		}},
		{"consent for a long client id and resource", func(t *testing.T, ctx context.Context, s Storage) {
			// A client id may be a 2048-character metadata document URL, and a resource is the
			// client's to choose (up to maxResourceLen): together more than an index entry holds.
			cid := "https://client.example/" + strings.Repeat("c", 2048-23)
			res := "https://mcp.example/" + strings.Repeat("r", maxResourceLen-20)
			rec := consentRecord{Scope: "mcp", Resource: res, At: now.Unix()}
			if err := s.PutConsent(ctx, "u1", cid, res, rec); err != nil {
				t.Fatalf("PutConsent: %v", err)
			}
			if got, err := s.GetConsent(ctx, "u1", cid, res); err != nil || got.Scope != "mcp" {
				t.Fatalf("GetConsent = %+v, %v", got, err)
			}
			if _, err := s.GetConsent(ctx, "u1", cid, res+"x"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("consent for another resource: %v, want ErrNotFound", err)
			}
		}},
		{"users and sealed tokens", func(t *testing.T, ctx context.Context, s Storage) {
			if err := s.UpsertUser(ctx, userRecord{Sub: "u1", Login: "a"}, now); err != nil {
				t.Fatal(err)
			}
			if err := s.UpsertUser(ctx, userRecord{Sub: "u1", Login: "b"}, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if u, err := s.GetUser(ctx, "u1"); err != nil || u.Login != "b" || u.CreatedAt != now.Unix() {
				t.Fatalf("user = %+v %v; want login b, first created_at", u, err)
			}
			if created, err := s.CreateUser(ctx, userRecord{Sub: "u1", Login: "c"}); err != nil || created {
				t.Fatalf("CreateUser over an existing user = %v %v", created, err)
			}
			for _, kind := range []SealedKind{SealedGitHub, SealedUpstream} {
				if err := s.PutSealed(ctx, kind, "u1", []byte("v1-"+kind)); err != nil {
					t.Fatal(err)
				}
				if err := s.ReplaceSealed(ctx, kind, "u1", []byte("other"), []byte("v2")); !errors.Is(err, ErrChanged) {
					t.Fatalf("%s CAS with a stale value: %v, want ErrChanged", kind, err)
				}
				if err := s.ReplaceSealed(ctx, kind, "u1", []byte("v1-"+kind), []byte("v2-"+kind)); err != nil {
					t.Fatal(err)
				}
				if b, err := s.GetSealed(ctx, kind, "u1"); err != nil || string(b) != "v2-"+string(kind) {
					t.Fatalf("%s sealed = %q %v", kind, b, err)
				}
				if err := s.DeleteSealed(ctx, kind, "u1"); err != nil {
					t.Fatal(err)
				}
				if _, err := s.GetSealed(ctx, kind, "u1"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s after delete: %v", kind, err)
				}
				if err := s.ReplaceSealed(ctx, kind, "u1", []byte("v2-"+kind), []byte("v3")); !errors.Is(err, ErrChanged) {
					t.Fatalf("%s CAS after unlink: %v, want ErrChanged (no resurrection)", kind, err)
				}
				// Compare and delete: a nil next deletes only the value it names.
				if err := s.PutSealed(ctx, kind, "u1", []byte("v4")); err != nil {
					t.Fatal(err)
				}
				if err := s.ReplaceSealed(ctx, kind, "u1", []byte("v3"), nil); !errors.Is(err, ErrChanged) {
					t.Fatalf("%s compare-and-delete with a stale value: %v, want ErrChanged", kind, err)
				}
				if err := s.ReplaceSealed(ctx, kind, "u1", []byte("v4"), nil); err != nil {
					t.Fatalf("%s compare-and-delete: %v", kind, err)
				}
				if _, err := s.GetSealed(ctx, kind, "u1"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s after compare-and-delete: %v, want ErrNotFound", kind, err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, context.Background(), newStore(t))
		})
	}
}

// TestStorageReadsExistingBoltDir opens a data directory laid out as the server wrote it before
// Storage existed (records JSON-encoded by hand here, in the old buckets) and reads it through
// the new layer.
func TestStorageReadsExistingBoltDir(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "idp.db")
	old, err := OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	fixture := []struct{ bucket, key, value string }{
		{"clients", "cid", `{"client_id":"cid","reg_token_hash":"rh","issued_at":1700000000,"metadata":{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"],"response_types":["code"]}}`},
		{"meta", "client_count", `1`},
		{"users", "github:1", `{"sub":"github:1","login":"octo","created_at":1700000000}`},
		{"github", "github:1", "sealed-bytes"},
		{"consents", "github:1\x00cid\x00https://mcp.example/", `{"scope":"mcp","resource":"https://mcp.example/","at":1700000000}`},
		{"codes", "codehash", `{"client_id":"cid","redirect_uri":"http://127.0.0.1/cb","redirect_given":true,"challenge":"ch","resource":"https://mcp.example/","scope":"mcp","sub":"github:1","exp":1900000000,"used":false,"family_id":"fam"}`},
		{"families", "fam", `{"client_id":"cid","sub":"github:1","revoked":false,"exp":1900000000}`},
		{"refresh", "rthash", `{"family_id":"fam","client_id":"cid","sub":"github:1","scope":"mcp","resource":"https://mcp.example/","exp":1900000000}`},
		{"access", "jti1", `{"family_id":"fam","client_id":"cid","sub":"github:1","exp":1900000000}`},
		{"keys", "kid1", `{"kid":"kid1","alg":"ES256","sealed":"AQI=","created":"2026-01-01T00:00:00Z","activate_at":"2026-01-01T00:00:00Z"}`},
		{"jti", "jtihash", `{"exp":1900000000}`},
	}
	for _, f := range fixture {
		if err := old.Put(ctx, f.bucket, f.key, []byte(f.value)); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	b, err := OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := NewKVStorage(b)
	if c, err := s.GetClient(ctx, "cid"); err != nil || c.RegTokenHash != "rh" || c.Metadata.RedirectURIs[0] != "http://127.0.0.1/cb" {
		t.Errorf("client = %+v %v", c, err)
	}
	if err := s.CreateClient(ctx, clientRecord{ClientID: "c2"}, 1); !errors.Is(err, ErrLimitReached) {
		t.Errorf("the stored client counter was not honoured: %v", err)
	}
	if u, err := s.GetUser(ctx, "github:1"); err != nil || u.Login != "octo" {
		t.Errorf("user = %+v %v", u, err)
	}
	if v, err := s.GetSealed(ctx, SealedGitHub, "github:1"); err != nil || string(v) != "sealed-bytes" {
		t.Errorf("github token = %q %v", v, err)
	}
	if c, err := s.GetConsent(ctx, "github:1", "cid", "https://mcp.example/"); err != nil || c.Scope != "mcp" {
		t.Errorf("consent = %+v %v", c, err)
	}
	if c, err := s.RedeemCode(ctx, "codehash", time.Unix(1900000100, 0)); err != nil || c.Challenge != "ch" || c.FamilyID != "fam" {
		t.Errorf("redeem = %+v %v", c, err)
	}
	rec, out, err := s.RotateRefresh(ctx, "rthash", "cid", time.Unix(1800000000, 0), time.Second, func(string) ([]byte, error) { return []byte("s"), nil })
	if err != nil || out != RefreshRotated || rec.Scope != "mcp" {
		t.Errorf("rotate = %v %+v %v", out, rec, err)
	}
	if a, err := s.GetAccess(ctx, "jti1"); err != nil || a.FamilyID != "fam" {
		t.Errorf("access = %+v %v", a, err)
	}
	if keys, err := s.ListKeys(ctx); err != nil || len(keys) != 1 || keys[0].Kid != "kid1" || string(keys[0].Sealed) != "\x01\x02" {
		t.Errorf("keys = %+v %v", keys, err)
	}
	if err := s.UseJTI(ctx, "jtihash", time.Unix(1900000000, 0), time.Unix(1800000000, 0)); !errors.Is(err, ErrAlreadyUsed) {
		t.Errorf("stored jti not recognised: %v", err)
	}
	// A data directory from before AddKey has no head record: the stored keys decide.
	if err := s.AddKey(ctx, keyRecord{Kid: "kid2", ActivateAt: time.Unix(1800000000, 0)}, ""); !errors.Is(err, ErrChanged) {
		t.Errorf("first key added over an existing one: %v", err)
	}
	if err := s.AddKey(ctx, keyRecord{Kid: "kid2", ActivateAt: time.Unix(1800000000, 0)}, "kid1"); err != nil {
		t.Errorf("successor of the stored key: %v", err)
	}
}

// A crash between AddKey's two writes (the head moved, the key not stored) is repaired by the
// next AddKey, which finds the head and stores its key before reporting ErrChanged.
func TestKVStorageAddKeyRepairsHead(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryStore()
	s := NewKVStorage(mem)
	if err := mem.Put(ctx, bucketMeta, metaKeyHead, []byte(`{"kid":"k1","alg":"ES256","sealed":"AQ==","created":"2026-01-01T00:00:00Z","activate_at":"2026-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddKey(ctx, keyRecord{Kid: "k2"}, ""); !errors.Is(err, ErrChanged) {
		t.Fatalf("AddKey over a head: %v, want ErrChanged", err)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Kid != "k1" || string(keys[0].Sealed) != "\x01" {
		t.Fatalf("keys = %+v %v, want the head's key stored", keys, err)
	}
}

// A fault is ErrStoreFault, never ErrNotFound: a closed store or a record that does not decode
// must not pass for a missing (or unused) one.
func TestKVStorageFaults(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryStore()
	s := NewKVStorage(mem)
	if err := mem.Put(ctx, bucketCodes, "bad", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if err := mem.Put(ctx, bucketMeta, metaClientCount, []byte("x")); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"undecodable get", func() error { _, err := s.GetCode(ctx, "bad"); return err }()},
		{"undecodable redeem", func() error { _, err := s.RedeemCode(ctx, "bad", time.Now()); return err }()},
		{"corrupt client counter", s.CreateClient(ctx, clientRecord{ClientID: "c"}, 10)},
	}
	mem.Close()
	checks = append(checks,
		struct {
			name string
			err  error
		}{"closed store", func() error { _, err := s.GetClient(ctx, "c"); return err }()},
		struct {
			name string
			err  error
		}{"closed store update", s.RevokeFamily(ctx, "f")},
	)
	for _, c := range checks {
		if !errors.Is(c.err, ErrStoreFault) || errors.Is(c.err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrStoreFault", c.name, c.err)
		}
	}
}

// countingStorage records which atomic operations the server asked of the Storage it was given.
type countingStorage struct {
	Storage
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingStorage) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
}

func (c *countingStorage) CreateClient(ctx context.Context, rec clientRecord, max int) error {
	c.count("CreateClient")
	return c.Storage.CreateClient(ctx, rec, max)
}

func (c *countingStorage) RedeemCode(ctx context.Context, hash string, purgeAt time.Time) (codeRecord, error) {
	c.count("RedeemCode")
	return c.Storage.RedeemCode(ctx, hash, purgeAt)
}

func (c *countingStorage) RotateRefresh(ctx context.Context, hash, clientID string, now time.Time, grace time.Duration,
	seal func(string) ([]byte, error)) (refreshRecord, RefreshOutcome, error) {
	c.count("RotateRefresh")
	return c.Storage.RotateRefresh(ctx, hash, clientID, now, grace, seal)
}

// Options.Storage replaces the key-value Store: the whole flow runs on the Storage given, as a
// PostgreSQL backend will.
func TestOptionsStorage(t *testing.T) {
	cs := &countingStorage{Storage: NewKVStorage(NewMemoryStore()), calls: map[string]int{}}
	e := newEnv(t, func(o *Options) {
		o.Storage = cs
		o.EncryptionKey = make([]byte, 32)
	})
	if e.srv.store != nil {
		t.Fatal("a key-value Store was created although a Storage was given")
	}
	c := e.register(nil)
	tok := e.login(c, "alice", "")
	rt, _ := tok["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("no refresh token: %v", tok)
	}
	resp, m := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}, "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %v", resp.StatusCode, m)
	}
	for _, op := range []string{"CreateClient", "RedeemCode", "RotateRefresh"} {
		if cs.calls[op] != 1 {
			t.Errorf("%s called %d times, want 1", op, cs.calls[op])
		}
	}
	if _, err := New(Options{Issuer: "https://idp.example", Storage: cs}); err == nil {
		t.Error("New accepted a Storage without an EncryptionKey")
	}
}
