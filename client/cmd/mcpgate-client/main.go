// Command mcpgate-client is mcpgate's MCP client: point it at a protected MCP URL and it
// discovers the authorization server, registers, logs you in through the browser and calls
// tools. See docs/client.md.
//
//	mcpgate-client [flags] URL [tools | call NAME [-arg k=v ...] [-json '{...}'] | login | logout | status]
//	mcpgate-client [flags] proxy [flags] URL
//	mcpgate-client client-metadata -url URL [-name NAME]
//	mcpgate-client id-jag -idp-token-url URL -idp-client-id ID -issuer URL -resource URL -client-id ID
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
