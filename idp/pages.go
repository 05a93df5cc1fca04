package idp

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"
)

// All pages are html/template output (contextual escaping) with headers that forbid framing,
// sniffing, referrers and caching.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

const layout = `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
.box{border:1px solid #ddd;border-radius:8px;padding:1.5rem}button,.btn{font-size:1rem;padding:.5rem 1rem;margin:.25rem 0}
.warn{background:#fff4e5;border:1px solid #f0b429;padding:.5rem;border-radius:4px}code{word-break:break-all}
label{display:block;margin:.75rem 0 .25rem}input[type=text],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}</style>
</head><body><div class="box">{{end}}
{{define "bottom"}}</div></body></html>{{end}}`

var pageTemplates = template.Must(template.New("pages").Parse(layout + `
{{define "error"}}{{template "top" .}}<h1>{{.Title}}</h1><p>{{.Message}}</p>{{template "bottom"}}{{end}}

{{define "login"}}{{template "top" .}}<h1>Sign in</h1>
{{if .Error}}<p class="warn">{{.Error}}</p>{{end}}
{{range .Upstreams}}<p><a class="btn" href="{{.URL}}">Sign in with {{.Name}}</a></p>{{end}}
{{if .GitHub}}<p><a class="btn" href="{{.GitHubURL}}">Sign in with GitHub</a></p>{{end}}
{{if .Dev}}<div class="warn">Development login: anyone can sign in here as any username. Do not use
this in production.</div>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="req" value="{{.ReqID}}">
<label for="username">Username</label><input type="text" id="username" name="username" required maxlength="39" pattern="[A-Za-z0-9_.\-]+">
<label for="pat">GitHub personal access token to link (optional)</label><input type="password" id="pat" name="github_token" autocomplete="off">
<p><button type="submit">Sign in</button></p></form>{{end}}
{{template "bottom"}}{{end}}

{{define "consent"}}{{template "top" .}}<h1>Authorize {{.ClientName}}?</h1>
<p>Signed in as <b>{{.User}}</b>.</p>
{{if .LinkGitHubURL}}<p class="warn">Your GitHub account is not linked: MCP tools that need GitHub will refuse to work.
<a href="{{.LinkGitHubURL}}">Link GitHub account</a> (you come back here afterwards).</p>{{end}}
<p><b>{{.ClientName}}</b>{{if .ClientIDShown}} (<code>{{.ClientID}}</code>){{end}} wants to access
<code>{{.Resource}}</code> on your behalf.</p>
<p>After you approve, you will be sent to <b>{{.RedirectHost}}</b>.</p>
<p>Requested scopes:</p><ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{else}}<li>(none)</li>{{end}}</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}"><input type="hidden" name="req" value="{{.ReqID}}">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button></form>
{{template "bottom"}}{{end}}

{{define "account"}}{{template "top" .}}<h1>Your account</h1>
{{if .Message}}<p class="warn">{{.Message}}</p>{{end}}
<p>Signed in as <b>{{.User}}</b> (<code>{{.Sub}}</code>).</p>
<p>GitHub: {{if .Linked}}linked{{if .GitHubLogin}} as <b>{{.GitHubLogin}}</b>{{end}}{{if .Expiry}}, token expires {{.Expiry}}{{end}}.{{else}}<b>not linked</b>: MCP tools that need GitHub will refuse to work until you link it.{{end}}</p>
{{if .GitHub}}<p><a class="btn" href="{{.LinkURL}}">{{if .Linked}}Re-link{{else}}Link{{end}} GitHub account</a></p>{{end}}
{{if .Dev}}<form method="post" action="{{.PATAction}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label for="pat">GitHub personal access token</label><input type="password" id="pat" name="github_token" autocomplete="off" required>
<p><button type="submit">Save token</button></p></form>{{end}}
{{if .Linked}}<form method="post" action="{{.UnlinkAction}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button type="submit">Unlink GitHub</button></form>{{end}}
<form method="post" action="{{.LogoutAction}}"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button type="submit">Sign out</button></form>
{{template "bottom"}}{{end}}
`))

func (s *Server) renderPage(w http.ResponseWriter, status int, name string, data map[string]any) {
	setPageHeaders(w)
	w.WriteHeader(status)
	if err := pageTemplates.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("render page", "page", name, "error", err)
	}
}

// renderError shows an error page; used when no trusted redirect URI is known.
func (s *Server) renderError(w http.ResponseWriter, status int, title, msg string) {
	s.renderPage(w, status, "error", map[string]any{"Title": title, "Message": msg})
}

// renderStorageError is the page for a request whose storage call failed: 503 with Retry-After
// for a fault (ErrStoreFault: the database unreachable), which passes; 500 otherwise. The cause is
// logged by the caller, never shown.
func (s *Server) renderStorageError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrStoreFault) {
		w.Header().Set("Retry-After", "5")
		s.renderError(w, http.StatusServiceUnavailable, "Temporarily unavailable",
			"This service cannot reach its storage right now. Nothing was lost: try again in a moment.")
		return
	}
	s.renderError(w, http.StatusInternalServerError, "Server error", "Please try again later.")
}

// renderBusy is the page for a request refused because the client metadata fetch budget is spent
// (errCIMDBusy): 503 with Retry-After; the user may simply try again.
func (s *Server) renderBusy(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	s.renderError(w, http.StatusServiceUnavailable, "Try again shortly",
		"This server is fetching too many application descriptions right now. Wait a moment, then start again from your application.")
}
