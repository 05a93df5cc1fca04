package caddymodule

import (
	// Each import registers its Caddy modules and Caddyfile directives.
	_ "github.com/mcpgate/mcpgate/caddymodule/mcpauth"
	_ "github.com/mcpgate/mcpgate/caddymodule/mcpidp"
	_ "github.com/mcpgate/mcpgate/caddymodule/mcpstdio"
)
