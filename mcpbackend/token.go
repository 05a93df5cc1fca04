package mcpbackend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// This file decides which GitHub token a tool call uses. The rule: the token the gateway put in the
// request's token header; else, only where explicitly allowed, the server's environment token;
// else a "no GitHub account is linked" tool error. Never another request's token, and never
// anything from the Authorization header (that is the client's credential for the gateway).

// tokenKey is the context key for the per-request credential; unexported so that no other package
// can set or read it.
type tokenKey struct{}

// requestCredential is what the HTTP layer found in the request's token header.
type requestCredential struct {
	token string
	err   error // header present but unusable (repeated, malformed)
}

const maxTokenBytes = 4096

// httpContextFunc returns the server.HTTPContextFunc that moves the token header's value into the
// context. Requests without the header get no credential, so the env-token rule applies.
func httpContextFunc(header string) func(ctx context.Context, r *http.Request) context.Context {
	return func(ctx context.Context, r *http.Request) context.Context {
		vals := r.Header.Values(header)
		switch {
		case len(vals) == 0:
			return ctx
		case len(vals) > 1:
			return context.WithValue(ctx, tokenKey{}, requestCredential{
				err: fmt.Errorf("the request carries the %s header more than once; refusing to pick one", header)})
		}
		tok := vals[0]
		if err := checkToken(tok); err != nil {
			return context.WithValue(ctx, tokenKey{}, requestCredential{
				err: fmt.Errorf("the %s header is malformed: %w", header, err)})
		}
		return context.WithValue(ctx, tokenKey{}, requestCredential{token: tok})
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
func (b *backend) tokenFor(ctx context.Context) (token, source string, err error) {
	if cred, ok := ctx.Value(tokenKey{}).(requestCredential); ok {
		if cred.err != nil {
			return "", "", cred.err
		}
		return cred.token, "header", nil
	}
	if b.opts.AllowEnvToken && b.opts.EnvToken != "" {
		return b.opts.EnvToken, "env", nil
	}
	if b.opts.AllowEnvToken {
		return "", "", errors.New("no GitHub account is linked: the server has no GitHub token " +
			"(set GITHUB_ACCESS_TOKEN in its environment)")
	}
	return "", "", fmt.Errorf("no GitHub account is linked to this request: it carries no %s header. "+
		"Sign in through the mcpgate gateway and link your GitHub account at the identity provider, then retry",
		b.opts.TokenHeader)
}
