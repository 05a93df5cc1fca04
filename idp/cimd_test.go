package idp

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

type cimdServer struct {
	ts   *httptest.Server
	hits atomic.Int64
	docs map[string]func(self string) any
}

func newCIMDServer(t *testing.T) *cimdServer {
	s := &cimdServer{docs: map[string]func(string) any{}}
	s.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		f, ok := s.docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		v := f(s.ts.URL + r.URL.Path)
		if b, ok := v.([]byte); ok {
			w.Write(b)
			return
		}
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(s.ts.Close)
	return s
}

func (s *cimdServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ts.Certificate())
	return p
}

func TestClientIDMetadataDocuments(t *testing.T) {
	cs := newCIMDServer(t)
	good := func(self string) any {
		return map[string]any{"client_id": self, "client_name": "CIMD App", "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	cs.docs["/good.json"] = good
	cs.docs["/mismatch.json"] = func(string) any {
		return map[string]any{"client_id": "https://other.example/client.json", "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	cs.docs["/badredirect.json"] = func(self string) any {
		return map[string]any{"client_id": self, "redirect_uris": []string{"javascript:alert(1)"}}
	}
	cs.docs["/secret.json"] = func(self string) any {
		return map[string]any{"client_id": self, "client_secret": "x", "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	cs.docs["/huge.json"] = func(self string) any {
		return []byte(`{"client_id":"` + self + `","client_name":"` + strings.Repeat("x", 70<<10) + `"}`)
	}
	e := newEnv(t, func(o *Options) { o.AllowPrivateCIMD = true; o.CIMDRootCAs = cs.pool() })

	t.Run("flow", func(t *testing.T) {
		c := testClient{ID: cs.ts.URL + "/good.json", RedirectURI: "http://127.0.0.1:5555/cb"}
		before := cs.hits.Load()
		p := newPKCE()
		b := e.browser()
		q := e.getCode(b, c, p, "cimduser", "", nil)
		resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("redeem: %d %v", resp.StatusCode, m)
		}
		claims, _ := verifyWithJWKS(t, e, m["access_token"].(string))
		if claims["client_id"] != c.ID {
			t.Errorf("client_id claim %v", claims["client_id"])
		}
		// Cached: the whole flow fetched the document once.
		if n := cs.hits.Load() - before; n != 1 {
			t.Errorf("document fetched %d times, want 1 (cache)", n)
		}
	})
	for _, path := range []string{"/mismatch.json", "/badredirect.json", "/secret.json", "/huge.json", "/missing.json"} {
		t.Run(path, func(t *testing.T) {
			c := testClient{ID: cs.ts.URL + path, RedirectURI: "http://127.0.0.1:5555/cb"}
			pg := e.browser().get(authorizeURL(e, c, newPKCE(), nil))
			if pg.status != http.StatusBadRequest || pg.location != "" {
				t.Fatalf("got %d %q, want 400 error page", pg.status, pg.location)
			}
		})
	}
	t.Run("bad client_id URLs", func(t *testing.T) {
		for _, id := range []string{cs.ts.URL + "/", cs.ts.URL + "/a/../good.json", cs.ts.URL + "/good.json#x", cs.ts.URL + "/good.json?x=1"} {
			if validCIMDURL(id) {
				t.Errorf("%s accepted", id)
			}
		}
	})
}

// SSRF: without AllowPrivateCIMD, loopback and private targets are refused at dial time.
func TestCIMDRefusesPrivateAddresses(t *testing.T) {
	cs := newCIMDServer(t)
	cs.docs["/good.json"] = func(self string) any {
		return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/cb"}}
	}
	e := newEnv(t, func(o *Options) { o.CIMDRootCAs = cs.pool() })
	c := testClient{ID: cs.ts.URL + "/good.json", RedirectURI: "http://127.0.0.1/cb"}
	pg := e.browser().get(authorizeURL(e, c, newPKCE(), nil))
	if pg.status != http.StatusBadRequest || cs.hits.Load() != 0 {
		t.Fatalf("got %d, %d requests reached the private server", pg.status, cs.hits.Load())
	}
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"127.0.0.1", false}, {"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"100.64.0.1", false}, {"0.0.0.0", false}, {"::1", false},
		{"fe80::1", false}, {"fc00::1", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false},
		{"8.8.8.8", true}, {"2606:4700:4700::1111", true},
	} {
		if got := publicAddr(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("publicAddr(%s) = %v", tc.ip, got)
		}
	}
}
