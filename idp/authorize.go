package idp

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var pkceRe = regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)

// handleAuthorize validates an authorization request. Until the client and redirect URI are
// trusted, errors are shown as a page; after that they are redirected with state and iss.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(q[k]) > 1 {
			s.renderError(w, http.StatusBadRequest, "Invalid request", "The parameter "+k+" is repeated.")
			return
		}
	}
	c, err := s.lookupClient(ctx, q.Get("client_id"), remoteIP(r))
	if errors.Is(err, errCIMDBusy) {
		s.renderBusy(w, err)
		return
	}
	if err != nil {
		if errors.Is(err, errUnknownClient) || errors.Is(err, errCIMD) {
			s.renderError(w, http.StatusBadRequest, "Unknown client", "The application's client_id is not registered here, or its metadata document is invalid.")
			return
		}
		s.log.Error("client lookup", "error", err)
		s.renderStorageError(w, err)
		return
	}
	if c.exchange != nil {
		s.renderError(w, http.StatusBadRequest, "Invalid client", "This client cannot use the authorization endpoint.")
		return
	}
	redirect, given, ok := resolveRedirectURI(c.Meta.RedirectURIs, q.Get("redirect_uri"))
	if !ok {
		s.renderError(w, http.StatusBadRequest, "Invalid redirect URI", "The redirect_uri is missing or is not registered for this application. You were not redirected.")
		return
	}
	state := q.Get("state")
	fail := func(e *oauthError) { s.redirectError(w, r, redirect, state, e) }
	for k, v := range q {
		if len(v) > 1 && k != "resource" { // several resources are legal (RFC 8707), refused below
			fail(errInvalidRequest("parameter " + quoteShort(k) + " is repeated"))
			return
		}
	}
	if len(state) > 2048 {
		s.redirectError(w, r, redirect, "", errInvalidRequest("state is too long"))
		return
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		fail(errInvalidRequest("response_type is required"))
		return
	default:
		fail(errUnsupportedResponseType("only response_type=code is supported"))
		return
	}
	if q.Has("request") || q.Has("request_uri") {
		fail(newOAuthError(http.StatusBadRequest, "request_not_supported", "request objects are not supported"))
		return
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		fail(errInvalidRequest("only response_mode=query is supported"))
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge == "" {
		fail(errInvalidRequest("code_challenge is required (PKCE with S256)"))
		return
	}
	if method != "S256" {
		fail(errInvalidRequest("code_challenge_method must be S256"))
		return
	}
	if len(challenge) != 43 || !pkceRe.MatchString(challenge) {
		fail(errInvalidRequest("code_challenge must be a base64url SHA-256 (43 characters)"))
		return
	}
	scope, oerr := s.resolveScope(c, q.Get("scope"))
	if oerr != nil {
		fail(oerr)
		return
	}
	resource, oerr := s.resolveResource(q["resource"])
	if oerr != nil {
		fail(oerr)
		return
	}
	// OpenID Connect Core 3.1.2.1: none must not be combined with any other value.
	prompt, forceLogin, others := "", false, 0
	for _, pv := range strings.Fields(q.Get("prompt")) {
		switch pv {
		case "none":
			prompt = pv
		case "consent":
			if prompt != "none" {
				prompt = pv
			}
			others++
		case "login":
			forceLogin = true
			others++
		case "select_account":
			// Accepted; the current session is used.
			others++
		default:
			fail(errInvalidRequest("unsupported prompt value"))
			return
		}
	}
	if prompt == "none" && others > 0 {
		fail(errInvalidRequest("prompt=none cannot be combined with other values"))
		return
	}
	var maxAge *int64
	if q.Has("max_age") {
		n, err := strconv.ParseInt(q.Get("max_age"), 10, 64)
		if err != nil || n < 0 {
			fail(errInvalidRequest("max_age must be a non-negative number of seconds"))
			return
		}
		maxAge = &n
	}
	ar := authRequest{
		Prompt: prompt, ForceLogin: forceLogin, MaxAge: maxAge,
		ClientID: c.ID, RedirectURI: redirect, RedirectGiven: given, State: state,
		Challenge: challenge, Scope: scope, Resource: resource,
		Exp: s.opts.Now().Add(s.opts.LoginTTL).Unix(),
	}
	// Every pending request is a stored record until sign-in: bound how many one address starts.
	if ok, wait := s.authzLimiter.allow(remoteIP(r)); !ok {
		s.log.Info("authorization requests rate limited", "remote", remoteIP(r))
		ra := strconv.Itoa(retryAfterSecs(wait))
		w.Header().Set("Retry-After", ra)
		s.renderError(w, http.StatusTooManyRequests, "Too many sign-in requests",
			"Too many authorization requests came from your network address. Wait "+ra+" seconds, then start again from your application.")
		return
	}
	id := randomToken()
	if err := s.db.PutAuthRequest(ctx, id, ar); err != nil {
		s.log.Error("store authorization request", "error", err)
		fail(errStorage(err))
		return
	}
	http.Redirect(w, r, s.endpoint("/consent?req="+url.QueryEscape(id)), http.StatusFound)
}

// resolveScope applies the default (the client's registered scope, else every scope offered)
// and checks requested scopes against those offered. A registered scope does not bound later
// requests: every client here registered itself (DCR or a metadata document), so it could widen
// its registration at will and the bound would protect nothing, while MCP step-up needs it
// gone: MCP clients (the TypeScript SDK among them) register with the scope of the first
// challenge and, when a tool needs more (403 insufficient_scope), authorize again with the wider
// scope the challenge names. What stops a wider grant is the user's consent, which shows every
// requested scope and is asked again for scopes not yet approved.
func (s *Server) resolveScope(c *client, requested string) (string, *oauthError) {
	if strings.TrimSpace(requested) == "" {
		if c.Meta.Scope != "" {
			return c.Meta.Scope, nil
		}
		return strings.Join(s.opts.Scopes, " "), nil
	}
	var out []string
	for _, sc := range strings.Fields(requested) {
		if !slices.Contains(s.opts.Scopes, sc) {
			return "", errInvalidScope("scope " + quoteShort(sc) + " is not available to this client")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}

// resolveResource applies RFC 8707: at most one resource, an absolute URI without fragment,
// canonicalized (lower-case scheme and host, one trailing slash removed); the default resource if
// absent; restricted to AllowedResources when configured.
func (s *Server) resolveResource(values []string) (string, *oauthError) {
	if len(values) > 1 {
		return "", errInvalidTarget("only one resource is supported per request")
	}
	def, _ := canonicalResource(s.opts.DefaultResource)
	if len(values) == 0 || values[0] == "" {
		return def, nil
	}
	res, err := canonicalResource(values[0])
	if err != nil {
		return "", errInvalidTarget("resource must be an absolute URI without a fragment, at most 2048 characters")
	}
	if len(s.opts.AllowedResources) > 0 && res != def {
		ok := false
		for _, a := range s.opts.AllowedResources {
			if ca, err := canonicalResource(a); err == nil && ca == res {
				ok = true
				break
			}
		}
		if !ok {
			return "", errInvalidTarget("this resource is not served by this authorization server")
		}
	}
	return res, nil
}

// maxResourceLen bounds a resource indicator (an MCP server URL): longer ones are refused as
// invalid_target, so that no stored record (a consent is keyed by its resource) grows with what a
// client sends.
const maxResourceLen = 2048

func canonicalResource(s string) (string, error) {
	if len(s) > maxResourceLen {
		return "", errors.New("longer than 2048 characters")
	}
	if strings.Contains(s, "#") {
		return "", errors.New("fragment")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http" && !strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http")) || u.Host == "" || u.User != nil {
		return "", errors.New("not an absolute http(s) URI")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u.String(), nil
}

// redirectError sends an authorization error to the client's (already validated) redirect URI,
// with state and iss (RFC 9207).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirect, state string, e *oauthError) {
	v := url.Values{}
	v.Set("error", e.Code)
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	s.redirectWith(w, r, redirect, state, v)
}

func (s *Server) redirectWith(w http.ResponseWriter, r *http.Request, redirect, state string, v url.Values) {
	if state != "" {
		v.Set("state", state)
	}
	v.Set("iss", s.opts.Issuer)
	u, err := url.Parse(redirect)
	if err != nil {
		s.renderError(w, http.StatusBadRequest, "Invalid redirect URI", "The redirect URI cannot be used.")
		return
	}
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}
