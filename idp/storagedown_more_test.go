package idp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// familiesDownStore is a Store whose reads of grant families fail while down is set: the
// database failing between two calls of one request.
type familiesDownStore struct {
	Store
	down atomic.Bool
}

func (f *familiesDownStore) Get(ctx context.Context, b, k string) ([]byte, error) {
	if b == bucketFamilies && f.down.Load() {
		return nil, errDown
	}
	return f.Store.Get(ctx, b, k)
}

// Introspecting a refresh token while the storage fails answers 503 temporarily_unavailable,
// as every other endpoint does; {"active": false} would tell the resource server that a valid
// token is dead (RFC 7662 §2.2).
func TestIntrospectRefreshTokenStorageDown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func() (Store, *atomic.Bool)
	}{
		{"storage down", func() (Store, *atomic.Bool) {
			d := &downStore{Store: NewMemoryStore()}
			return d, &d.down
		}},
		{"families unreadable", func() (Store, *atomic.Bool) {
			f := &familiesDownStore{Store: NewMemoryStore()}
			return f, &f.down
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, down := tc.store()
			e := newEnv(t, func(o *Options) { o.Store, o.EncryptionKey = store, make([]byte, 32) })
			c := e.register(nil)
			rt := e.login(c, "alice", "")["refresh_token"].(string)
			if m := e.introspect(rt); m["active"] != true {
				t.Fatalf("before: %v", m)
			}
			down.Store(true)
			resp, m := e.postForm("/introspect", url.Values{"token": {rt}}, "gateway", "gateway-secret-0123456789")
			down.Store(false)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || m["error"] != "temporarily_unavailable" {
				t.Fatalf("introspection of a refresh token while the storage fails: %d Retry-After %q %v; want 503 temporarily_unavailable",
					resp.StatusCode, resp.Header.Get("Retry-After"), m)
			}
		})
	}
}

// PostgreSQL restarted while the Server's pool holds idle connections: once it is back, at most
// one request fails (the one that finds the connections gone), not one per pooled connection.
// pgxpool pings a connection before use only when it has been idle for more than a second, so a
// restart quicker than that (about 0.3 s here) leaves every pooled connection dead and each
// fails one request with SQLSTATE 57P01. A slower restart makes this pass without a fix.
func TestPostgresQuickRestartFailsOnce(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	st := openPG(t, cluster.DSN()) // 8 connections, all open
	e := newEnv(t, func(o *Options) { o.Storage, o.EncryptionKey = st, make([]byte, 32) })
	c := e.register(nil)
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, e.url("/register/"+c.ID), nil)
		req.Header.Set("Authorization", "Bearer "+c.RAT)
		resp, m := doJSON(t, req)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("client configuration: %d %v", resp.StatusCode, m)
		}
		return resp.StatusCode
	}
	if get() != http.StatusOK {
		t.Fatal("client configuration before the restart failed")
	}
	cluster.Stop()
	cluster.Start()
	var failed []string
	for i := range 9 {
		if st := get(); st != http.StatusOK {
			failed = append(failed, fmt.Sprintf("#%d", i+1))
		}
	}
	if len(failed) > 1 {
		t.Fatalf("after a quick restart %d of 9 requests answered 503 (%s); want at most 1", len(failed), strings.Join(failed, " "))
	}
}

// A database that stops answering (a partition, a hung server: nothing refused, nothing
// answered) is a storage fault like one that is down: once pgx's connect timeout ends the
// attempt to open a connection, the request answers 503 with Retry-After, not 500. The pool is
// emptied first so that every request needs a new connection (a request on a connection that
// was open before the stall waits for as long as its context allows; see the report).
func TestPostgresStalledAnswers503(t *testing.T) {
	const connectTimeout = time.Second
	e, st, proxy, c, rt := stallableEnv(t, PostgresOptions{ConnectTimeout: connectTimeout})

	proxy.Stall()
	st.pool.Reset()
	post := func(v url.Values) (int, http.Header, string) {
		// A bound for the test only, far above the connect timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 30*connectTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url("/token"), strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, m := doJSON(t, req)
		return resp.StatusCode, resp.Header, mapString(m)
	}
	t0 := time.Now()
	st1, hdr, body := post(url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {rt}})
	t.Logf("refresh while the database is stalled: %d after %v (connect timeout %v)", st1, time.Since(t0).Round(time.Millisecond), connectTimeout)
	if st1 != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("refresh while the database is stalled: %d Retry-After %q %s; want 503 temporarily_unavailable", st1, hdr.Get("Retry-After"), body)
	}

	proxy.Resume()
	if resp, m := e.refresh(c, rt); resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh after the stall: %d %v", resp.StatusCode, m)
	}
}

// A database that stops answering on connections already open (a network partition) costs a
// request CallTimeout, then 503, not the minutes TCP takes to give up.
func TestPostgresStalledOpenConnectionsAnswer503(t *testing.T) {
	const callTimeout = time.Second
	e, _, proxy, c, rt := stallableEnv(t, PostgresOptions{CallTimeout: callTimeout})

	proxy.Stall()                                                            // the pool's open connections stop answering; nothing is reset
	ctx, cancel := context.WithTimeout(context.Background(), 30*callTimeout) // a bound for the test only
	defer cancel()
	v := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {rt}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url("/token"), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	t0 := time.Now()
	resp, m := doJSON(t, req)
	t.Logf("refresh on a stalled connection: %d after %v (call timeout %v)", resp.StatusCode, time.Since(t0).Round(time.Millisecond), callTimeout)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || m["error"] != "temporarily_unavailable" {
		t.Fatalf("refresh on a stalled connection: %d %v; want 503 temporarily_unavailable", resp.StatusCode, m)
	}
	proxy.Resume()
	if resp, m := e.refresh(c, rt); resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh after the stall: %d %v", resp.StatusCode, m)
	}
}

// stallableEnv is a Server on a private PostgreSQL reached through a proxy the test can stall,
// with a client and a signed-in user's refresh token.
func stallableEnv(t *testing.T, opts PostgresOptions) (*testEnv, *PostgresStorage, *pgtest.Proxy, testClient, string) {
	t.Helper()
	cluster := pgtest.StartCluster(t)
	proxy := pgtest.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", cluster.Port()))
	dsn, err := pgtest.WithAddress(cluster.DSN(), proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenPostgresStorage(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e := newEnv(t, func(o *Options) { o.Storage, o.EncryptionKey = st, make([]byte, 32) })
	c := e.register(nil)
	return e, st, proxy, c, e.login(c, "alice", "")["refresh_token"].(string)
}
