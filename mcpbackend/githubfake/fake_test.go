package githubfake

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func do(t *testing.T, srv *httptest.Server, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestFakeEndpoints(t *testing.T) {
	f := NewDemo()
	srv := httptest.NewServer(f)
	defer srv.Close()
	tests := []struct {
		name, path, token string
		wantStatus        int
		wantBody          string
		wantLink          string
	}{
		{"no token", "/user", "", 401, `"Bad credentials"`, ""},
		{"unknown token", "/user", "nope", 401, `"Bad credentials"`, ""},
		{"user alice", "/user", AliceToken, 200, `"login":"alice"`, ""},
		{"user bob", "/user", BobToken, 200, `"login":"bob"`, ""},
		{"repos page 1", "/user/repos?per_page=10", AliceToken, 200, `"full_name":"alice/hello-world"`, `rel="next"`},
		{"repos private only", "/user/repos?visibility=private", AliceToken, 200, `"secret-plans"`, ""},
		{"repos bad visibility", "/user/repos?visibility=x", AliceToken, 422, "Validation Failed", ""},
		{"repo", "/repos/alice/hello-world", AliceToken, 200, `"id":5001`, ""},
		{"private repo hidden from bob", "/repos/alice/secret-plans", BobToken, 404, "Not Found", ""},
		{"private repo visible to alice", "/repos/alice/secret-plans", AliceToken, 200, `"private":true`, ""},
		{"issues", "/repos/alice/hello-world/issues?labels=bug", AliceToken, 200, `"Found a bug"`, ""},
		{"contents file", "/repos/alice/hello-world/contents/README.md", AliceToken, 200, `"encoding":"base64"`, ""},
		{"contents escaped", "/repos/alice/hello-world/contents/docs/a%20file.txt", AliceToken, 200, `"name":"a file.txt"`, ""},
		{"contents dir", "/repos/alice/hello-world/contents/docs", AliceToken, 200, `"type":"dir"`, ""},
		{"contents bad ref", "/repos/alice/hello-world/contents/README.md?ref=dev", AliceToken, 404, "No commit found", ""},
		{"search", "/search/repositories?q=hello", BobToken, 200, `"total_count":2`, ""},
		{"search private only for owner", "/search/repositories?q=private", BobToken, 200, `"total_count":0`, ""},
		{"search empty", "/search/repositories?q=", AliceToken, 422, `"missing"`, ""},
		{"unknown endpoint", "/orgs/x", AliceToken, 404, "Not Found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, tt.path, tt.token)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) ||
				!strings.Contains(resp.Header.Get("Link"), tt.wantLink) {
				t.Errorf("status %d, Link %q, body %s", resp.StatusCode, resp.Header.Get("Link"), body)
			}
			if resp.Header.Get("X-RateLimit-Remaining") == "" {
				t.Error("no rate-limit headers")
			}
		})
	}
}

func TestFakeFileContentIsGitHubBase64(t *testing.T) {
	f := NewDemo()
	srv := httptest.NewServer(f)
	defer srv.Close()
	_, body := do(t, srv, "/repos/alice/hello-world/contents/main.go", AliceToken)
	var file struct{ Content string }
	if err := json.Unmarshal(body, &file); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(file.Content, "\n") {
		t.Error("content not wrapped like GitHub's")
	}
	data, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(file.Content, "\n", ""))
	if err != nil || !strings.HasPrefix(string(data), "package main") {
		t.Errorf("content %q: %v", data, err)
	}
}

func TestFakeRecordsAndFaults(t *testing.T) {
	f := NewDemo()
	srv := httptest.NewServer(f)
	defer srv.Close()
	f.FailNext(Fault{Status: 500, Body: "boom"}, Fault{Status: 200, Body: "{", Header: http.Header{"X-RateLimit-Remaining": {"0"}}})
	r1, b1 := do(t, srv, "/user", AliceToken)
	r2, b2 := do(t, srv, "/user", BobToken)
	r3, _ := do(t, srv, "/user", "")
	if r1.StatusCode != 500 || string(b1) != "boom" || r2.StatusCode != 200 || string(b2) != "{" ||
		r2.Header.Get("X-RateLimit-Remaining") != "0" || r3.StatusCode != 401 {
		t.Errorf("faults not applied in order: %d %q, %d %q, %d", r1.StatusCode, b1, r2.StatusCode, b2, r3.StatusCode)
	}
	if got := strings.Join(f.Tokens(), ","); got != AliceToken+","+BobToken+"," {
		t.Errorf("tokens %q", got)
	}
	f.Reset()
	if len(f.Requests()) != 0 {
		t.Error("Reset kept requests")
	}
	// A delayed fault gives up when the client does.
	f.FailNext(Fault{Delay: time.Minute})
	c := srv.Client()
	c.Timeout = 100 * time.Millisecond
	start := time.Now()
	if _, err := c.Get(srv.URL + "/user"); err == nil {
		t.Error("want a client timeout")
	}
	if time.Since(start) > 5*time.Second {
		t.Error("the delay did not end with the request")
	}
}

// TestFakeHold: a held response is written only after Hold is closed.
func TestFakeHold(t *testing.T) {
	f := NewDemo()
	srv := httptest.NewServer(f)
	defer srv.Close()
	hold := make(chan struct{})
	f.FailNext(Fault{Status: 201, Body: `{"held":true}`, Hold: hold})
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/user")
		if err != nil {
			done <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b)}
	}()
	for len(f.Requests()) == 0 {
		time.Sleep(time.Millisecond) // wait until the request is being held
	}
	select {
	case r := <-done:
		t.Fatalf("answered before Hold was closed: %+v", r)
	default:
	}
	close(hold)
	if r := <-done; r.status != 201 || r.body != `{"held":true}` {
		t.Errorf("after release: %+v", r)
	}
}
