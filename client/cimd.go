package client

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/mcpgate/mcpgate/internal/loopback"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; preferred over
// dynamic registration by the MCP authorization specification since 2025-11-25).
//
// With Config.ClientMetadataURL the client_id is an https URL that serves a JSON document
// describing the client; the authorization server fetches it, so there is nothing to register
// and nothing to cache about the client. The client uses the URL as client_id for the
// authorization, token, refresh and revocation requests, as a public client (no secret), and
// only with an authorization server whose metadata says client_id_metadata_document_supported.
// It never falls back to dynamic registration: the user asked for that identity.
//
// The document (see NewClientMetadataDocument) lists the port-less loopback redirect URI
// http://127.0.0.1/callback; the client sends http://127.0.0.1:PORT/callback, which RFC 8252
// §7.3 obliges the authorization server to accept for any port (mcpgate's IdP does).

// MetadataDocumentRedirectURI is the redirect URI a client metadata document lists: the
// loopback callback without a port (RFC 8252 §7.3).
const MetadataDocumentRedirectURI = "http://127.0.0.1" + callbackPath

// ClientMetadataDocument is the JSON document to host at a client_id URL
// (draft-ietf-oauth-client-id-metadata-document §3): client_id, the URL the document is served
// at, followed by the metadata dynamic registration sends (client_name, redirect_uris
// [MetadataDocumentRedirectURI], grant_types ["authorization_code", "refresh_token"],
// response_types ["code"], token_endpoint_auth_method "none", application_type "native"),
// without a scope.
type ClientMetadataDocument struct {
	// ClientID is the URL the document is served at.
	ClientID string `json:"client_id"`
	registrationRequest
}

// NewClientMetadataDocument returns the document to host at metadataURL, which must pass the
// same checks as Config.ClientMetadataURL. name is the client_name; default "mcpgate-client".
func NewClientMetadataDocument(metadataURL, name string) (*ClientMetadataDocument, error) {
	if err := CheckClientMetadataURL(metadataURL); err != nil {
		return nil, err
	}
	if name == "" {
		name = defaultClientName
	}
	return &ClientMetadataDocument{
		ClientID:            metadataURL,
		registrationRequest: nativeClientMetadata(name, MetadataDocumentRedirectURI, ""),
	}, nil
}

// CheckClientMetadataURL reports why raw cannot be a client metadata document URL, or nil. The
// rules are the draft's (draft-ietf-oauth-client-id-metadata-document, "Client Identifier"):
// the URL MUST use https, MUST have a path component, MUST NOT contain single-dot or double-dot
// path segments (percent-encoded ones included), MUST NOT contain a fragment, MUST NOT contain
// a username or password, SHOULD NOT include a query and MAY contain a port. A query is
// therefore accepted (though mcpgate's IdP, like several other authorization servers, refuses
// one), and so is the path "/". The one exception to the draft: plain http is accepted for a
// loopback host (loopback.Host: localhost, 127.0.0.0/8, ::1), for tests; no real authorization
// server fetches such a document.
func CheckClientMetadataURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("the client metadata URL %q is not an absolute https URL", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback.Host(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("the client metadata URL %q must use https (plain http only for a loopback host, in tests)", raw)
	default:
		return fmt.Errorf("the client metadata URL %q is not an absolute https URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("the client metadata URL %q must not carry a username or password", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("the client metadata URL %q must not carry a fragment", raw)
	}
	if u.Path == "" {
		return fmt.Errorf("the client metadata URL %q needs a path naming the document, e.g. https://%s/mcpgate-client.json", raw, u.Host)
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("the client metadata URL %q must not contain . or .. path segments", raw)
		}
	}
	return nil
}

// checkCIMDSupport refuses an authorization server that does not advertise Client ID Metadata
// Document support when Config.ClientMetadataURL is set; nil otherwise.
func (c *Client) checkCIMDSupport(d *Discovery) error {
	if c.cfg.ClientMetadataURL == "" || d.AS.ClientIDMetadataDocumentSupported {
		return nil
	}
	return fmt.Errorf("the authorization server at %s does not support client metadata documents "+
		"(its metadata lacks client_id_metadata_document_supported: true), so it cannot use %s as client_id; "+
		"pass a pre-registered -client-id, or drop -client-metadata-url to register dynamically",
		d.Issuer, c.cfg.ClientMetadataURL)
}
