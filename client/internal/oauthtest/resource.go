package oauthtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ResourceOptions shapes the fake protected MCP resource.
type ResourceOptions struct {
	// Path of the MCP endpoint; default "/mcp".
	Path string
	// NoHeaderMetadata leaves resource_metadata out of the 401 challenge.
	NoHeaderMetadata bool
	// NoPathPRM does not serve PRM at the path-suffixed well-known URL.
	NoPathPRM bool
	// NoRootPRM does not serve PRM at the root well-known URL.
	NoRootPRM bool
	// HeaderPRMPath serves PRM (and names it in the challenge) at this other path, e.g.
	// "/meta/prm"; default: the path-suffixed well-known URL.
	HeaderPRMPath string
	// ChallengeScope is the challenge's scope; default "mcp:read".
	ChallengeScope string
	// NoChallengeScope leaves scope out of the 401 challenge.
	NoChallengeScope bool
	// Open serves MCP without any authorization.
	Open bool
	// ScopesSupported of the PRM; default ["mcp:read", "mcp:admin"].
	ScopesSupported []string
	// PRMResource overrides the PRM resource (mismatch tests); default the MCP URL.
	PRMResource string
	// PRMResourceOrigin makes the PRM name the server's origin ("http://127.0.0.1:PORT") as
	// resource, as a PRM served for a whole host does; tokens are then issued for the origin and
	// the MCP endpoint accepts them.
	PRMResourceOrigin bool
	// ToolScopes maps a tool name to the scope calling it needs (403 insufficient_scope).
	ToolScopes map[string]string
	// RequiredScope is needed for every MCP request; default "mcp:read"; "-" for none.
	RequiredScope string
	// Refuse, when set, answers every MCP request that carries a valid token with this error
	// instead of serving it, as the gateway does for an unlinked upstream account (403) or when
	// a token source is down (503).
	Refuse *Refusal
}

// Refusal is an error answer of the resource after a valid token: Status with a JSON body
// {"error": Error, "error_description": Description} and, when set, Retry-After.
type Refusal struct {
	Status      int
	Error       string
	Description string
	RetryAfter  string
}

// The error_description of the resource's invalid_token answers: a token it does not know
// (expired, revoked, never issued), and a known token issued for another audience.
const (
	InvalidTokenDescription = "the access token is invalid"
	AudienceDescription     = "the access token's audience is not this resource"
)

// Resource is the fake protected MCP server.
type Resource struct {
	Server *httptest.Server
	// URL is the MCP endpoint.
	URL    string
	as     *AS
	o      ResourceOptions
	origin string
	mcp    http.Handler

	mu        sync.Mutex
	statuses  []int
	bearers   int
	prmHits   []string
	toolCalls []string
}

// NewResource starts a protected MCP server that accepts the access tokens of as.
func NewResource(t testing.TB, as *AS, o ResourceOptions) *Resource {
	t.Helper()
	if o.Path == "" {
		o.Path = "/mcp"
	}
	if o.ChallengeScope == "" {
		o.ChallengeScope = "mcp:read"
	}
	if o.ScopesSupported == nil {
		o.ScopesSupported = []string{"mcp:read", "mcp:admin"}
	}
	if o.RequiredScope == "" {
		o.RequiredScope = "mcp:read"
	}
	r := &Resource{as: as, o: o}
	s := server.NewMCPServer("fake", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("list_repositories", mcp.WithDescription("Lists the user's repositories.\nSecond line.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("octo/alpha\nocto/beta"), nil
		})
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Echoes its arguments as JSON."), mcp.WithString("text")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			b, _ := json.Marshal(req.GetArguments())
			return mcp.NewToolResultText(string(b)), nil
		})
	s.AddTool(mcp.NewTool("admin_tool", mcp.WithDescription("Needs mcp:admin.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("admin ok"), nil
		})
	s.AddTool(mcp.NewTool("fail", mcp.WithDescription("Always fails.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("it failed"), nil
		})
	r.mcp = server.NewStreamableHTTPServer(s, server.WithDisableLocalhostProtection(true))
	// Fields the handler reads are set before the server starts serving.
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.origin = "http://" + r.Server.Listener.Addr().String()
	r.URL = r.origin + o.Path
	r.Server.Start()
	t.Cleanup(r.Server.Close)
	return r
}

// PRMURL returns the URL the challenge names.
func (r *Resource) PRMURL() string {
	if r.o.HeaderPRMPath != "" {
		return r.origin + r.o.HeaderPRMPath
	}
	return r.origin + "/.well-known/oauth-protected-resource" + r.o.Path
}

// Statuses returns the HTTP statuses of the MCP endpoint's answers, in order.
func (r *Resource) Statuses() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.statuses)
}

// PRMHits returns the well-known paths requested, in order.
func (r *Resource) PRMHits() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.prmHits)
}

// ToolCalls returns the names of tools called successfully past the authorization check.
func (r *Resource) ToolCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.toolCalls)
}

func (r *Resource) prm() map[string]any {
	res := r.URL
	if r.o.PRMResource != "" {
		res = r.o.PRMResource
	}
	if r.o.PRMResourceOrigin {
		res = r.origin
	}
	return map[string]any{
		"resource":                 res,
		"authorization_servers":    []string{r.as.Issuer},
		"scopes_supported":         r.o.ScopesSupported,
		"bearer_methods_supported": []string{"header"},
	}
}

func (r *Resource) serve(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	if strings.HasPrefix(p, "/.well-known/") || (r.o.HeaderPRMPath != "" && p == r.o.HeaderPRMPath) {
		r.mu.Lock()
		r.prmHits = append(r.prmHits, p)
		r.mu.Unlock()
		ok := (p == r.o.HeaderPRMPath && p != "") ||
			(p == "/.well-known/oauth-protected-resource"+r.o.Path && !r.o.NoPathPRM && r.o.HeaderPRMPath == "") ||
			(p == "/.well-known/oauth-protected-resource" && !r.o.NoRootPRM)
		if !ok {
			// An SPA answering 200 HTML at unknown paths, as real deployments do.
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<!doctype html><title>app</title>")
			return
		}
		writeJSON(w, http.StatusOK, r.prm())
		return
	}
	if p != r.o.Path {
		http.NotFound(w, req)
		return
	}
	var status int
	if r.o.Open {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r.mcp.ServeHTTP(rec, req)
		status = rec.status
	} else {
		status = r.check(w, req)
	}
	r.mu.Lock()
	r.statuses = append(r.statuses, status)
	r.mu.Unlock()
}

func (r *Resource) challenge(extra string) string {
	parts := []string{}
	if extra != "" {
		parts = append(parts, extra)
	}
	if !r.o.NoHeaderMetadata {
		parts = append(parts, fmt.Sprintf(`resource_metadata="%s"`, r.PRMURL()))
	}
	if !r.o.NoChallengeScope {
		parts = append(parts, fmt.Sprintf(`scope="%s"`, r.o.ChallengeScope))
	}
	return "Bearer " + strings.Join(parts, ", ")
}

// check authorizes the request and serves it; it returns the status it answered.
func (r *Resource) check(w http.ResponseWriter, req *http.Request) int {
	auth := req.Header.Get("Authorization")
	tok, isBearer := strings.CutPrefix(auth, "Bearer ")
	if !isBearer || tok == "" {
		w.Header().Add("WWW-Authenticate", `Basic realm="other"`)
		w.Header().Add("WWW-Authenticate", r.challenge(""))
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return http.StatusUnauthorized
	}
	g, ok := r.as.Validate(tok)
	want := r.URL
	if r.o.PRMResourceOrigin {
		want = r.origin
	}
	if !ok || g.Resource != want {
		// As mcpgate's gateway answers: invalid_token, its description also in the challenge,
		// naming the audience when that is what failed.
		desc := InvalidTokenDescription
		if ok {
			desc = AudienceDescription
		}
		w.Header().Set("WWW-Authenticate", r.challenge(`error="invalid_token", error_description="`+desc+`"`))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
		return http.StatusUnauthorized
	}
	r.mu.Lock()
	r.bearers++
	r.mu.Unlock()
	if f := r.o.Refuse; f != nil {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		writeJSON(w, f.Status, map[string]string{"error": f.Error, "error_description": f.Description})
		return f.Status
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	need := []string{}
	if r.o.RequiredScope != "-" {
		need = append(need, r.o.RequiredScope)
	}
	var msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &msg)
	if msg.Method == "tools/call" {
		if s := r.o.ToolScopes[msg.Params.Name]; s != "" {
			need = append(need, s)
		}
	}
	for _, s := range need {
		if !slices.Contains(g.Scopes, s) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope="%s", resource_metadata="%s"`, strings.Join(need, " "), r.PRMURL()))
			http.Error(w, "forbidden", http.StatusForbidden)
			return http.StatusForbidden
		}
	}
	if msg.Method == "tools/call" {
		r.mu.Lock()
		r.toolCalls = append(r.toolCalls, msg.Params.Name)
		r.mu.Unlock()
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	r.mcp.ServeHTTP(rec, req)
	return rec.status
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
