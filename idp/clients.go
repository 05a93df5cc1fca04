package idp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// client is a resolved client: registered (store), from a Client ID Metadata Document, or an
// exchange client from configuration.
type client struct {
	ID         string
	Meta       clientMetadata
	SecretHash string          // registered confidential clients
	exchange   *ExchangeClient // configured token-exchange clients
	cimd       bool
}

func (c *client) public() bool { return c.exchange == nil && c.SecretHash == "" }

func (c *client) displayName() string {
	if c.Meta.ClientName != "" {
		return c.Meta.ClientName
	}
	return c.ID
}

var errUnknownClient = errors.New("idp: unknown client")

// lookupClient resolves client_id for a request from remote (see remoteIP; it pays for a metadata
// document fetch). Errors other than errUnknownClient are faults: storage, a metadata document that
// cannot be fetched or is invalid (errCIMD), or the fetch budget spent (errCIMDBusy).
func (s *Server) lookupClient(ctx context.Context, id, remote string) (*client, error) {
	if id == "" || len(id) > 2048 {
		return nil, errUnknownClient
	}
	for i := range s.opts.ExchangeClients {
		ec := &s.opts.ExchangeClients[i]
		if ec.ID == id {
			return &client{ID: id, exchange: ec, Meta: clientMetadata{ClientName: id, TokenEndpointAuthMethod: "client_secret_basic"}}, nil
		}
	}
	if strings.HasPrefix(id, "https://") {
		return s.cimd.fetch(ctx, id, remote)
	}
	rec, err := s.db.GetClient(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, errUnknownClient
		}
		return nil, err
	}
	return &client{ID: rec.ClientID, Meta: rec.Metadata, SecretHash: rec.SecretHash}, nil
}

// authenticateClient authenticates the client at the token, revocation and introspection
// endpoints: client_secret_basic, client_secret_post, or none (public clients send client_id).
func (s *Server) authenticateClient(r *http.Request) (*client, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			e := errInvalidClient("malformed client credentials")
			e.basicAuth = true
			return nil, e
		}
		if r.PostForm.Has("client_secret") {
			return nil, errInvalidRequest("use only one client authentication method")
		}
		if fid := r.PostForm.Get("client_id"); fid != "" && fid != id {
			return nil, errInvalidRequest("client_id does not match the authenticated client")
		}
	} else {
		id = r.PostForm.Get("client_id")
		secret = r.PostForm.Get("client_secret")
	}
	fail := func(desc string) *oauthError {
		e := errInvalidClient(desc)
		e.basicAuth = basic
		return e
	}
	if id == "" {
		return nil, fail("client authentication required")
	}
	c, err := s.lookupClient(r.Context(), id, remoteIP(r))
	if errors.Is(err, errCIMDBusy) {
		e := errTemporarilyUnavailable("too many client metadata documents are being fetched; try again later")
		e.retryAfter = retryAfterSeconds(err)
		return nil, e
	}
	if err != nil {
		if !errors.Is(err, errUnknownClient) && !errors.Is(err, errCIMD) {
			s.log.Error("client lookup failed", "error", err)
			return nil, errStorage(err)
		}
		// Burn comparable time for unknown clients.
		secretMatches(secret, hashSecret("unknown-client"))
		return nil, fail("client authentication failed")
	}
	switch {
	case c.exchange != nil:
		if secret == "" || !constantTimeEqual(secret, c.exchange.Secret) {
			return nil, fail("client authentication failed")
		}
	case c.SecretHash != "":
		if secret == "" || !secretMatches(secret, c.SecretHash) {
			return nil, fail("client authentication failed")
		}
	default:
		if secret != "" {
			return nil, fail("public client must not send a secret")
		}
	}
	return c, nil
}
