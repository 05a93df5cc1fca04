package mcpauth

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestStaticToken(t *testing.T) {
	t.Setenv("MCPGATE_TEST_STATIC", "gho_static")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	s := &StaticToken{Token: "{env.MCPGATE_TEST_STATIC}"}
	if err := s.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	tok, err := s.UpstreamToken(context.Background(), nil, "subject")
	if err != nil || tok.Value != "gho_static" || !tok.Expiry.IsZero() {
		t.Errorf("got %v %v", tok.Value, err)
	}
	// Token's String never shows the value.
	if strings.Contains(tok.String(), "gho_") || strings.Contains(tok.GoString(), "gho_") {
		t.Error("Token.String reveals the token")
	}

	empty := &StaticToken{Token: "{env.MCPGATE_TEST_UNSET}"}
	_ = empty.Provision(ctx)
	if err := empty.Validate(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token: err = %v", err)
	}
}
