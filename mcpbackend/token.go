package mcpbackend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// This file decides which GitHub token a tool call uses. The rule, per HTTP request:
//
//  1. The token header (Options.TokenHeader, default X-GitHub-Token) if the request carries it.
//     Repeated or malformed, it is an error (a tool error; the call does not fall back).
//  2. Else Authorization: Bearer <token>, which is where the gateway puts the token when its
//     upstream_header is Authorization (Caddy's reverse_proxy redacts that header in its logs and
//     not the others). Only a single Authorization header with the Bearer scheme and a value that
//     passes checkToken counts; a JWT there is the client's credential for the gateway (forwarded
//     with mcp_auth's keep_authorization), never a GitHub token, and is ignored. An Authorization
//     header that does not count is treated as absent, and the missing-token error says why.
//  3. Else, only where explicitly allowed, the server's environment token.
//  4. Else a "no GitHub account is linked" tool error. Never another request's token.
//
// Both headers present with usable, different values: the request is refused with 400 (see
// checkCredentials). One of them then did not come from the gateway (mcp_auth deletes and sets
// only its own upstream_header and passes other headers on), so whichever the backend picked, a
// client could choose the GitHub identity its calls run as; refusing is the only choice that
// cannot be steered. The same value in both is accepted.

// tokenKey is the context key for the per-request credential; unexported so that no other package
// can set or read it.
type tokenKey struct{}

// requestCredential is what the HTTP layer found in the request's headers.
type requestCredential struct {
	token  string
	source string // "header" or "authorization"
	err    error  // token header present but unusable (repeated, malformed)
	// why says why an Authorization header was not used as the token, for the missing-token
	// error; "" if there was none. Never contains the header's value.
	why string
}

const maxTokenBytes = 4096

// errConflictingTokens is the 400 answer to a request whose two token headers disagree.
var errConflictingTokens = errors.New("the request carries two different GitHub tokens, in the token header " +
	"and in Authorization: Bearer; refusing to pick one")

// readCredential finds the request's GitHub token in h following the rule above. It returns
// errConflictingTokens if the token header and Authorization: Bearer both carry usable, different
// tokens; otherwise the credential, which is empty (token "", err nil) if neither header has one.
func readCredential(h http.Header, header string) (requestCredential, error) {
	bearer, why := bearerToken(h.Values("Authorization"))
	vals := h.Values(header)
	switch {
	case len(vals) == 0 && bearer != "":
		return requestCredential{token: bearer, source: "authorization"}, nil
	case len(vals) == 0:
		return requestCredential{why: why}, nil
	case len(vals) > 1:
		return requestCredential{
			err: fmt.Errorf("the request carries the %s header more than once; refusing to pick one", header)}, nil
	}
	tok := vals[0]
	if err := checkToken(tok); err != nil {
		return requestCredential{err: fmt.Errorf("the %s header is malformed: %w", header, err)}, nil
	}
	if bearer != "" && bearer != tok {
		return requestCredential{}, errConflictingTokens
	}
	return requestCredential{token: tok, source: "header"}, nil
}

// bearerToken returns the GitHub token in the request's Authorization header values, or "" and
// the reason (without the value) why they hold none. RFC 6750 §2.1: "Bearer" (case-insensitive),
// one or more spaces, the token.
func bearerToken(vals []string) (token, why string) {
	switch len(vals) {
	case 0:
		return "", ""
	case 1:
	default:
		return "", "the Authorization header appears more than once"
	}
	scheme, tok, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", "the Authorization header is not a Bearer credential"
	}
	tok = strings.TrimLeft(tok, " ")
	if err := checkToken(tok); err != nil {
		return "", "the Authorization Bearer value is malformed: " + err.Error()
	}
	if looksLikeJWT(tok) {
		return "", "the Authorization Bearer value is a JWT, the client's credential for the gateway, " +
			"not a GitHub token; it is never sent to GitHub"
	}
	return tok, ""
}

// looksLikeJWT reports whether tok is a JWS or JWE compact serialization: 3 or 5 dot-separated
// parts, the first a base64url JSON object with an "alg". GitHub tokens (ghp_, gho_, ghu_, ghs_,
// github_pat_, 40 hex digits) contain no dots, so none is mistaken for one.
func looksLikeJWT(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 && len(parts) != 5 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(raw, &hdr) == nil && hdr.Alg != ""
}

// httpContextFunc returns the server.HTTPContextFunc that moves the request's credential (see
// readCredential) into the context. Requests without one get none, so the env-token rule applies.
// Conflicting headers never get here: checkCredentials has answered 400.
func httpContextFunc(header string) func(ctx context.Context, r *http.Request) context.Context {
	return func(ctx context.Context, r *http.Request) context.Context {
		cred, err := readCredential(r.Header, header)
		if err != nil {
			cred = requestCredential{err: err}
		}
		if cred.token == "" && cred.err == nil && cred.why == "" {
			return ctx
		}
		return context.WithValue(ctx, tokenKey{}, cred)
	}
}

// checkToken accepts what can be sent as a header value token: 1..4096 visible ASCII characters.
// The error never contains the value.
func checkToken(tok string) error {
	if tok == "" {
		return errors.New("it is empty")
	}
	if len(tok) > maxTokenBytes {
		return fmt.Errorf("it is longer than %d bytes", maxTokenBytes)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return errors.New("it contains spaces or characters that are not visible ASCII")
		}
	}
	return nil
}

// tokenFor returns the GitHub token for this call, or an error whose text is the tool error.
// source is "header", "authorization" or "env", for the debug log.
func (b *backend) tokenFor(ctx context.Context) (token, source string, err error) {
	cred, _ := ctx.Value(tokenKey{}).(requestCredential)
	if cred.err != nil {
		return "", "", cred.err
	}
	if cred.token != "" {
		return cred.token, cred.source, nil
	}
	if b.opts.AllowEnvToken && b.opts.EnvToken != "" {
		return b.opts.EnvToken, "env", nil
	}
	if b.opts.AllowEnvToken {
		return "", "", errors.New("no GitHub account is linked: the server has no GitHub token " +
			"(set GITHUB_ACCESS_TOKEN in its environment)")
	}
	why := ""
	if cred.why != "" {
		why = " (" + cred.why + ")"
	}
	return "", "", fmt.Errorf("no GitHub account is linked to this request: it carries no %s header and "+
		"no Authorization: Bearer GitHub token%s. "+
		"Sign in through the mcpgate gateway and link your GitHub account at the identity provider, then retry",
		b.opts.TokenHeader, why)
}
