package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mcpgate/mcpgate/client"
)

// idjagCommand is "mcpgate-client id-jag": enterprise-managed authorization for scripts and
// tests. It exchanges the user's ID token at the enterprise IdP for an ID-JAG (RFC 8693), presents
// it at the MCP server's authorization server (RFC 7523 jwt-bearer) and prints the access token
// response as JSON on stdout. Secrets and the ID token come from the environment or a file, never
// from flag values (visible in ps).
func idjagCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("mcpgate-client id-jag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var idpTokenURL, idpClientID, idTokenFile, issuer, resource, clientID string
	var scopes stringList
	fs.StringVar(&idpTokenURL, "idp-token-url", "", "token endpoint `URL` of the enterprise IdP (required)")
	fs.StringVar(&idpClientID, "idp-client-id", "", "this client's ID at the enterprise IdP (required; secret from env MCPGATE_IDP_CLIENT_SECRET)")
	fs.StringVar(&idTokenFile, "id-token-file", "", "`FILE` holding the user's ID token from the IdP (default: env MCPGATE_ID_TOKEN)")
	fs.StringVar(&issuer, "issuer", "", "issuer `URL` of the MCP server's authorization server (required; the ID-JAG's audience)")
	fs.StringVar(&resource, "resource", "", "the MCP server `URL` (required; the ID-JAG's resource)")
	fs.StringVar(&clientID, "client-id", "", "this client's ID at the authorization server (required; secret from env MCPGATE_CLIENT_SECRET, none: public client)")
	fs.Var(&scopes, "scope", "scope to request, repeatable or space-separated (default: what the IdP grants)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mcpgate-client id-jag -idp-token-url URL -idp-client-id ID -issuer URL -resource URL -client-id ID [-id-token-file FILE] [-scope S]")
		fmt.Fprintln(stderr, "\nEnterprise-managed authorization: trades the user's ID token for an ID-JAG at the IdP, then for an")
		fmt.Fprintln(stderr, "access token at the authorization server, and prints the token response as JSON.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mcpgate-client: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	idToken := getenv("MCPGATE_ID_TOKEN")
	if idTokenFile != "" {
		b, err := os.ReadFile(idTokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "mcpgate-client: -id-token-file: %v\n", err)
			return 2
		}
		idToken = strings.TrimSpace(string(b))
	}
	var missing []string
	for _, m := range []struct{ name, v string }{
		{"-idp-token-url", idpTokenURL}, {"-idp-client-id", idpClientID}, {"-issuer", issuer},
		{"-resource", resource}, {"-client-id", clientID}, {"an ID token (-id-token-file or MCPGATE_ID_TOKEN)", idToken},
	} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "mcpgate-client: id-jag needs %s\n", strings.Join(missing, ", "))
		return 2
	}
	var sc []string
	for _, s := range scopes {
		sc = append(sc, strings.Fields(s)...)
	}
	tokenURL, err := client.IDJAGTokenEndpoint(ctx, nil, issuer)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate-client: %v\n", err)
		return 1
	}
	jag, err := client.RequestIDJAG(ctx, client.IDJAGRequest{
		TokenURL: idpTokenURL, ClientID: idpClientID, ClientSecret: getenv("MCPGATE_IDP_CLIENT_SECRET"),
		IDToken: idToken, Audience: issuer, Resource: resource, Scopes: sc,
	})
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate-client: ID-JAG request: %v\n", err)
		return 1
	}
	tok, err := client.RedeemIDJAG(ctx, client.IDJAGGrant{
		TokenURL: tokenURL, ClientID: clientID, ClientSecret: getenv("MCPGATE_CLIENT_SECRET"),
		Assertion: jag.Assertion, Scopes: sc,
	})
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate-client: jwt-bearer grant: %v\n", err)
		return 1
	}
	if err := writeJSON(stdout, tok); err != nil {
		fmt.Fprintf(stderr, "mcpgate-client: %v\n", err)
		return 1
	}
	return 0
}
