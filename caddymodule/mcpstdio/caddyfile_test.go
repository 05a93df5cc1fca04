package mcpstdio

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Handler
		err      string
	}{
		{name: "inline command", in: `mcp_stdio node server.js stdio`,
			want: Handler{Command: "node", Args: []string{"server.js", "stdio"}}},
		{name: "every option", in: `mcp_stdio {
			command /usr/bin/srv --flag
			dir /srv
			env TOKEN {http.request.header.X-GitHub-Token}
			env MODE "read only"
			pass_env PATH HOME
			user_key {http.auth.user.client_id}
			max_processes 10
			max_processes_per_user 3
			max_concurrent_calls 7
			idle_timeout 5m
			session_timeout 2h
			call_timeout 30s
			start_timeout 1m
			stop_timeout 3s
			ping_timeout 4s
			write_timeout 6s
			max_message_bytes 1024
			stderr_bytes_per_minute 2048
			retry_after 9s
		}`, want: Handler{
			Command: "/usr/bin/srv", Args: []string{"--flag"}, Dir: "/srv",
			Env:     map[string]string{"TOKEN": "{http.request.header.X-GitHub-Token}", "MODE": "read only"},
			PassEnv: []string{"PATH", "HOME"}, UserKey: "{http.auth.user.client_id}",
			MaxProcesses: 10, MaxProcessesPerUser: 3, MaxConcurrentCalls: 7,
			IdleTimeout: caddy.Duration(5 * time.Minute), SessionTimeout: caddy.Duration(2 * time.Hour),
			CallTimeout: caddy.Duration(30 * time.Second), StartTimeout: caddy.Duration(time.Minute),
			StopTimeout: caddy.Duration(3 * time.Second), PingTimeout: caddy.Duration(4 * time.Second),
			WriteTimeout: caddy.Duration(6 * time.Second), MaxMessageBytes: 1024, StderrBytesPerMinute: 2048,
			RetryAfter: caddy.Duration(9 * time.Second),
		}},
		{name: "no command", in: "mcp_stdio {\ndir /srv\n}", err: "needs a command"},
		{name: "unknown option", in: "mcp_stdio node {\ncolour blue\n}", err: `unknown mcp_stdio option "colour"`},
		{name: "env twice", in: "mcp_stdio node {\nenv A 1\nenv A 2\n}", err: "env A set twice"},
		{name: "env without value", in: "mcp_stdio node {\nenv A\n}", err: "wrong argument count"},
		{name: "bad number", in: "mcp_stdio node {\nmax_processes many\n}", err: `max_processes: "many" is not a positive integer`},
		{name: "zero number", in: "mcp_stdio node {\nmax_processes 0\n}", err: "not a positive integer"},
		{name: "bad duration", in: "mcp_stdio node {\nidle_timeout soon\n}", err: `idle_timeout: "soon" is not a positive duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, tc.want) {
				t.Errorf("got %+v\nwant %+v", h, tc.want)
			}
		})
	}
}

// max_processes 1 alone is a valid configuration: the per-user default follows it.
func TestProvisionPerUserDefaultFollowsTotal(t *testing.T) {
	b := newBridge(t, func(h *Handler) { h.MaxProcesses = 1 })
	if b.h.MaxProcessesPerUser != 1 {
		t.Errorf("max_processes_per_user %d", b.h.MaxProcessesPerUser)
	}
}

func TestValidate(t *testing.T) {
	valid := func() Handler {
		return Handler{Command: "node", UserKey: DefaultUserKey, MaxProcesses: 4, MaxProcessesPerUser: 2, MaxConcurrentCalls: 8}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Handler)
		err    string
	}{
		{"valid", func(*Handler) {}, ""},
		{"no command", func(h *Handler) { h.Command = "" }, "command is required"},
		{"placeholder in args", func(h *Handler) { h.Args = []string{"--token", "{http.request.header.X-GitHub-Token}"} },
			"placeholders are expanded only in env"},
		{"placeholder in command", func(h *Handler) { h.Command = "{http.request.uri}" }, "only in env"},
		{"bad env name", func(h *Handler) { h.Env = map[string]string{"A=B": "x"} }, "not a valid variable name"},
		{"bad pass_env", func(h *Handler) { h.PassEnv = []string{""} }, "not a valid variable name"},
		{"per user over total", func(h *Handler) { h.MaxProcessesPerUser = 5 }, "cannot exceed"},
		{"constant user key", func(h *Handler) { h.UserKey = "everyone" }, "every user would share one process"},
	} {
		h := valid()
		tc.mutate(&h)
		err := h.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
		// Validation errors never repeat an env value (it may be a token).
		if err != nil && strings.Contains(err.Error(), "x\"") {
			t.Errorf("%s: error repeats an env value", tc.name)
		}
	}
}
